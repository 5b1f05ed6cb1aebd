"""Vectorisable sigmoid and tanh for the cell kernels, in float32 and float64.

llvmlite here has no SVML, so ``math.exp`` and ``math.tanh`` stay scalar calls
and block SIMD in the gate loops. These helpers are branch-free polynomials
that LLVM inlines and vectorises. Each has a float32 and a float64 form,
chosen at compile time from the argument's type, and all arithmetic stays in
that type (a Python float literal would promote float32 work to float64).

exp(x): x = n ln2 + r, |r| <= ln2/2 (Cody-Waite), exp(r) by its Taylor
polynomial (degree 13 for float64, 7 for float32: truncation below half an
ulp), times 2**n built from the exponent bits.
tanh(x): Cephes' odd polynomial / rational form for |x| < 0.625, where
1 - 2/(exp(2x) + 1) would lose relative accuracy; that formula elsewhere.
sigmoid(x) = 1 / (1 + exp(-x)).
Relative error is about 1e-16 (float64) and 1e-7 (float32).

The polynomials step with ``fma``: LLVM's fused multiply-add, rounded once.
It is not fastmath (nothing is reordered or assumed; the result is the same
on every run and never less accurate), and it halves the instructions of
Horner's rule, which with the divisions is what the gate loops spend.
"""
import math

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

# Largest |x| with exp(x) and 2**round(x/ln2) finite and normal.
EXP_MAX = {32: 88.0, 64: 709.0}
EXP_MIN = {32: -87.0, 64: -708.0}
# ln 2 split so that n * LN2_HI is exact (Cephes).
LN2_HI = {32: 0.693359375, 64: 6.93145751953125e-1}
LN2_LO = {32: -2.12194440e-4, 64: 1.42860682030941723212e-6}
EXP_DEGREE = {32: 7, 64: 13}
# Exponent-field layout of IEEE 754 binary32 / binary64.
MANTISSA_BITS = {32: 23, 64: 52}
EXPONENT_BIAS = {32: 127, 64: 1023}

TANH_SMALL = 0.625
# Cephes tanh.c, |x| < 0.625: tanh x = x + x z P(z) / Q(z), z = x^2.
TANH_P64 = (-9.64399179425052238628e-1, -9.92877231001918586564e1,
            -1.61468768441708447952e3)
TANH_Q64 = (1.12811678491632931402e2, 2.23548839060100448583e3,
            4.84406305325125486048e3)
# Cephes tanhf.c, |x| < 0.625: tanh x = x + x z P(z).
TANH_P32 = (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
            1.33314422036e-1, -3.33332819422e-1)


def _float_type(ty):
    """The numpy scalar type of a numba float type, or None."""
    if isinstance(ty, types.Float):
        return np.float32 if ty.bitwidth == 32 else np.float64
    return None


def fma(a, b, c):
    """a * b + c rounded once, for float32/float64 scalars inside @njit code."""
    return a * b + c


@intrinsic
def _fma(typingctx, a, b, c):
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return a(a, a, a), codegen


@overload(fma)
def _fma_overload(a, b, c):
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    return lambda a, b, c: _fma(a, b, c)


@intrinsic
def _pow2(typingctx, n):
    """2.0**n for an integral-valued float n in the normal exponent range."""
    if not isinstance(n, types.Float):
        return None
    bits = n.bitwidth

    def codegen(context, builder, sig, args):
        ity = context.get_value_type(types.int32 if bits == 32 else types.int64)
        i = builder.fptosi(args[0], ity)
        i = builder.add(i, ity(EXPONENT_BIAS[bits]))
        i = builder.shl(i, ity(MANTISSA_BITS[bits]))
        return builder.bitcast(i, context.get_value_type(n))

    return n(n), codegen


def fexp(x):
    """exp(x) for a float32/float64 scalar inside @njit code."""
    return math.exp(x)


def sigmoid(x):
    """1 / (1 + exp(-x)) for a float32/float64 scalar inside @njit code."""
    return 1.0 / (1.0 + math.exp(-x))


def tanh(x):
    """tanh(x) for a float32/float64 scalar inside @njit code."""
    return math.tanh(x)


@overload(fexp)
def _fexp(x):
    ft = _float_type(x)
    if ft is None:
        return None
    bits = x.bitwidth
    lo, hi = ft(EXP_MIN[bits]), ft(EXP_MAX[bits])
    log2e, half = ft(1.0 / math.log(2.0)), ft(0.5)
    ln2_hi, ln2_lo = ft(LN2_HI[bits]), ft(LN2_LO[bits])
    # Taylor coefficients 1/k!, highest degree first, for Horner's rule.
    coeffs = tuple(ft(1.0 / math.factorial(k)) for k in range(EXP_DEGREE[bits], -1, -1))

    def impl(x):
        x = min(max(x, lo), hi)
        n = np.floor(fma(x, log2e, half))
        r = fma(-n, ln2_lo, fma(-n, ln2_hi, x))
        p = coeffs[0]
        for c in coeffs[1:]:
            p = fma(p, r, c)
        return p * _pow2(n)

    return impl


@overload(sigmoid)
def _sigmoid(x):
    ft = _float_type(x)
    if ft is None:
        return None
    one = ft(1.0)

    def impl(x):
        return one / (one + fexp(-x))

    return impl


@overload(tanh)
def _tanh(x):
    ft = _float_type(x)
    if ft is None:
        return None
    one, two, small = ft(1.0), ft(2.0), ft(TANH_SMALL)

    if x.bitwidth == 64:
        p, q = tuple(ft(c) for c in TANH_P64), tuple(ft(c) for c in TANH_Q64)

        def impl(x):
            # tanh|x| is q0 + n / d in both forms; select n and d first so
            # that one division serves both (division is the slow part).
            a = abs(x)
            z = a * a
            near = a < small
            far = fexp(a + a) + one
            num = fma(fma(p[0], z, p[1]), z, p[2]) * (a * z)
            den = fma(fma(z + q[0], z, q[1]), z, q[2])
            t = (num if near else -two) / (den if near else far) + (a if near else one)
            return t if x >= 0 else -t
    else:
        p = tuple(ft(c) for c in TANH_P32)

        def impl(x):
            a = abs(x)
            z = x * x
            s = fma(fma(fma(fma(p[0], z, p[1]), z, p[2]), z, p[3]), z, p[4])
            t = one - two / (fexp(a + a) + one)
            t = t if x >= 0 else -t
            return fma(x * z, s, x) if a < small else t

    return impl


def scalar_like(a, v):
    """v as a scalar of array a's dtype, so float32 arithmetic stays float32."""
    return a.dtype.type(v)


@overload(scalar_like)
def _scalar_like(a, v):
    ft = _float_type(getattr(a, "dtype", None))
    if ft is None:
        return None

    def impl(a, v):
        return ft(v)

    return impl
