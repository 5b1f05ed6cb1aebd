"""Matrix products for the kernels: BLAS GEMM, and the recurrent step's GEMM.

``gemm`` goes through the BLAS that numba itself links (SciPy's OpenBLAS).

``np.dot`` inside @njit allocates its result and wants contiguous operands.
The recurrent kernels need more: accumulate into an existing array
(beta = 1), and read or write row-strided views such as one direction's half
of a bidirectional output. This calls numba's ``numba_xxgemm`` helper, the
symbol behind its own ``np.dot``, so the kernels stay cacheable.
"""
import numpy as np
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def _xxgemm(dtype):
    ptr = types.CPointer(dtype)
    sig = types.intc(types.char, types.char, types.char,
                     types.intp, types.intp, types.intp,
                     ptr, ptr, types.intp, ptr, types.intp,
                     ptr, ptr, types.intp)
    return types.ExternalFunction("numba_xxgemm", sig)


def gemm(trans_a, trans_b, alpha, a, b, beta, c):
    """c = alpha op(a) op(b) + beta c on 2-D arrays with unit inner stride.

    op(a) is (m, k), op(b) is (k, n), c is (m, n); op transposes when the
    flag is set. Rows may be strided (views into wider arrays).
    """
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    c *= beta
    c += alpha * (a @ b)


@overload(gemm)
def _gemm(trans_a, trans_b, alpha, a, b, beta, c):
    if not (isinstance(c, types.Array) and c.ndim == 2
            and isinstance(c.dtype, types.Float)):
        return None
    fn = _xxgemm(c.dtype)
    kind = ord("s" if c.dtype.bitwidth == 32 else "d")
    dtype = np.float32 if c.dtype.bitwidth == 32 else np.float64
    no, yes = ord("n"), ord("t")

    def impl(trans_a, trans_b, alpha, a, b, beta, c):
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        if (a.shape[1] if trans_a else a.shape[0]) != m or \
                (b.shape[0] if trans_b else b.shape[1]) != n or \
                (b.shape[1] if trans_b else b.shape[0]) != k:
            raise ValueError("gemm: shapes do not align")
        size = c.itemsize
        if (a.shape[1] > 1 and a.strides[1] != size) or \
                (b.shape[1] > 1 and b.strides[1] != size) or \
                (c.shape[1] > 1 and c.strides[1] != size):
            raise ValueError("gemm: rows must be contiguous")
        if m == 0 or n == 0:
            return
        scal = np.empty(2, dtype)
        scal[0] = alpha
        scal[1] = beta
        # Leading dimensions: the row stride, at least the row length.
        lda = max(a.strides[0] // size, a.shape[1], 1)
        ldb = max(b.strides[0] // size, b.shape[1], 1)
        ldc = max(c.strides[0] // size, c.shape[1], 1)
        # Row-major c = op(a) op(b) is column-major c' = op(b)' op(a)'.
        r = fn(kind, yes if trans_b else no, yes if trans_a else no,
               n, m, k, scal[0:].ctypes, b.ctypes, ldb, a.ctypes, lda,
               scal[1:].ctypes, c.ctypes, ldc)
        if r != 0:
            raise RuntimeError("gemm: BLAS is unavailable (is SciPy installed?)")

    return impl


# ----- the recurrent step's GEMM, on weights packed once per sequence --------
# Each step multiplies a few batch rows by the same weights. OpenBLAS repacks
# those weights on every call, which costs as much as the arithmetic at these
# shapes, so the step GEMM packs them once per forward (or backward) and runs
# a register-tiled kernel: MR rows x NR columns of the product accumulate in
# registers over the whole inner dimension. A panel row is PANEL_BYTES, two
# 512-bit vectors (NR = 32 float32, 16 float64), so a tile is 16 vector
# accumulators in either dtype: enough independent FMAs to cover their
# latency on two FMA ports, with registers left for the operands. Measured
# on a Xeon (AVX-512): 4 x 32 float32 (8 accumulators) reached 0.8 of the
# 8 x 32 tile; 8 x 32 float64 (32 accumulators) spilled, at 0.6 of 8 x 16.
# Blocking the inner dimension for L1 did not pay at H <= 2048.
MR = 8
PANEL_BYTES = 128


def _panel_width(dtype):
    return PANEL_BYTES // (dtype.bitwidth // 8)


@intrinsic
def stack_array(typingctx, size, like):
    """Pointer to `size` elements of like's dtype on the stack (size a literal).

    Unlike a heap array, stack memory is known not to alias the operands, so
    LLVM keeps the accumulator tile in registers.
    """
    if not isinstance(size, types.IntegerLiteral):
        return None
    n, dtype = size.literal_value, like.dtype

    def codegen(context, builder, sig, args):
        return cgutils.alloca_once(builder, context.get_value_type(dtype), size=n)

    return types.CPointer(dtype)(size, like), codegen


def packed(w):
    """w (N, K) packed as panels wp (ceil(N/NR), K, NR): wp[p, k, l] = w[p*NR + l, k].

    Rows past N are zero. wp is the operand of ``gemm_packed``.
    """
    NR = PANEL_BYTES // w.itemsize
    wp = np.zeros(((w.shape[0] + NR - 1) // NR, w.shape[1], NR), w.dtype)
    for p in range(wp.shape[0]):
        part = w[p * NR:(p + 1) * NR]
        wp[p, :, :part.shape[0]] = part.T
    return wp


@overload(packed, jit_options=dict(error_model="numpy"))
def _packed(w):
    if not (isinstance(w, types.Array) and w.ndim == 2 and isinstance(w.dtype, types.Float)):
        return None
    NR = _panel_width(w.dtype)

    def impl(w):
        N, K = w.shape
        wp = np.empty(((N + NR - 1) // NR, K, NR), w.dtype)
        for p in range(wp.shape[0]):
            for k in range(K):
                for l in range(NR):
                    g = p * NR + l
                    wp[p, k, l] = w[g, k] if g < N else 0
        return wp

    return impl


def gemm_packed(a, wp, n, c, accumulate, r0, r1):
    """c[r, :n] (+)= a[r] @ w.T for rows r0 <= r < r1, where wp = packed(w), w (n, K).

    a (B, K), c (B, >= n); rows of both may be strided. accumulate: add to c
    instead of overwriting it.
    """
    w = wp.transpose(0, 2, 1).reshape(-1, wp.shape[1])[:n]
    out = a[r0:r1] @ w.T
    if accumulate:
        c[r0:r1, :n] += out
    else:
        c[r0:r1, :n] = out


# fastmath here only lets a*b+c contract to one fused multiply-add, as every
# BLAS kernel does; no reordering of sums.
@overload(gemm_packed, jit_options=dict(error_model="numpy", fastmath={"contract"}))
def _gemm_packed(a, wp, n, c, accumulate, r0, r1):
    if not (isinstance(c, types.Array) and isinstance(c.dtype, types.Float)):
        return None
    NR = _panel_width(c.dtype)
    TILE = MR * NR

    def impl(a, wp, n, c, accumulate, r0, r1):
        K = a.shape[1]
        last = r1 - 1
        for p in range(wp.shape[0]):
            width = min(NR, n - p * NR)
            for b in range(r0, r1, MR):
                # Rows past r1 repeat the last row; their results are not stored.
                a0, a1 = a[b], a[min(b + 1, last)]
                a2, a3 = a[min(b + 2, last)], a[min(b + 3, last)]
                a4, a5 = a[min(b + 4, last)], a[min(b + 5, last)]
                a6, a7 = a[min(b + 6, last)], a[min(b + 7, last)]
                acc = carray(stack_array(TILE, a), (MR, NR))
                for r in range(MR):
                    for l in range(NR):
                        acc[r, l] = 0
                for k in range(K):
                    w = wp[p, k]
                    v0, v1, v2, v3 = a0[k], a1[k], a2[k], a3[k]
                    v4, v5, v6, v7 = a4[k], a5[k], a6[k], a7[k]
                    for l in range(NR):
                        wl = w[l]
                        acc[0, l] += v0 * wl
                        acc[1, l] += v1 * wl
                        acc[2, l] += v2 * wl
                        acc[3, l] += v3 * wl
                        acc[4, l] += v4 * wl
                        acc[5, l] += v5 * wl
                        acc[6, l] += v6 * wl
                        acc[7, l] += v7 * wl
                for r in range(min(MR, r1 - b)):
                    out = c[b + r, p * NR:p * NR + width]
                    if accumulate:
                        for l in range(width):
                            out[l] += acc[r, l]
                    else:
                        for l in range(width):
                            out[l] = acc[r, l]

    return impl
