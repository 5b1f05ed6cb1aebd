"""GEMM on row-major arrays through the BLAS that numba itself links (SciPy's).

``np.dot`` inside @njit allocates its result and wants contiguous operands.
The recurrent kernels need more: accumulate into an existing array
(beta = 1), and read or write row-strided views such as one direction's half
of a bidirectional output. This calls numba's ``numba_xxgemm`` helper, the
symbol behind its own ``np.dot``, so the kernels stay cacheable.
"""
import numpy as np
from numba import types
from numba.extending import overload


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
