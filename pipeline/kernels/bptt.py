"""Pieces of backpropagation through time that every cell shares.

The input projection of all steps, and after a cell's backward loop, dx and
the weight gradients: plain GEMMs over all T*B rows at once, as in cuDNN.
With nthreads > 1 each GEMM is cut into nthreads slices that run in parallel,
each on single-threaded BLAS (one thread pool only: Numba's).
"""
import numpy as np
from numba import njit, prange

from .blas import MR, gemm, pack, packed_shape

JIT = dict(cache=True, error_model="numpy")


@njit(**JIT)
def span(i, parts, n, align):
    """Bounds of slice i when range(n) is cut into `parts` slices of a multiple of align."""
    size = (n + parts - 1) // parts
    size = (size + align - 1) // align * align
    return min(n, i * size), min(n, (i + 1) * size)


@njit(**JIT)
def step_slices(B, nthreads):
    """How many batch-row slices a step is cut into (each a multiple of MR rows)."""
    size = (B + nthreads - 1) // nthreads
    size = (size + MR - 1) // MR * MR
    return (B + size - 1) // size


@njit(**JIT)
def packed(w):
    """pack(w) into a new array: the recurrent step's operand."""
    wp = np.empty(packed_shape(w.shape[0], w.shape[1]), w.dtype)
    pack(w, wp)
    return wp


@njit(**JIT)
def _project_slice(x2, w_ih, out2, r0, r1):
    gemm(False, True, 1.0, x2[r0:r1], w_ih, 0.0, out2[r0:r1])


@njit(parallel=True, **JIT)
def _project_parallel(x2, w_ih, out2, nthreads):
    for i in prange(nthreads):
        r0, r1 = span(i, nthreads, x2.shape[0], 1)
        _project_slice(x2, w_ih, out2, r0, r1)


@njit(**JIT)
def project(x, w_ih, out, nthreads):
    """out (T*B, G) = x (T, B, D) W_ih': the input projection of every step."""
    T, B, D = x.shape
    x2 = x.reshape(T * B, D)
    if nthreads > 1:
        _project_parallel(x2, w_ih, out, nthreads)
    else:
        _project_slice(x2, w_ih, out, 0, T * B)


@njit(**JIT)
def row_sum(a, out, j0, j1):
    """out[j] = sum of a[:, j] for j0 <= j < j1; summing along rows vectorises."""
    for j in range(j0, j1):
        out[j] = 0
    for r in range(a.shape[0]):
        row = a[r]
        for j in range(j0, j1):
            out[j] += row[j]


@njit(**JIT)
def _grads_slice(i, parts, a_ih, a_hh, shared, x2, w_ih, h, h0, da_hh_first, n, reverse,
                 dx2, dx_beta, dw_ih, dw_hh, db_ih, db_hh):
    """Slice i of weight_grads: rows i of dx, gate rows i of the weight gradients."""
    TB, G = a_ih.shape
    B = h0.shape[0]
    r0, r1 = span(i, parts, TB, 1)
    gemm(False, False, 1.0, a_ih[r0:r1], w_ih, dx_beta, dx2[r0:r1])
    g0, g1 = span(i, parts, G, 1)
    gemm(True, False, 1.0, a_ih[:, g0:g1], x2, 0.0, dw_ih[g0:g1])
    gemm(True, False, 1.0, da_hh_first[:, g0:g1], h0, 0.0, dw_hh[g0:g1])
    if n > 0:
        if reverse:
            gemm(True, False, 1.0, a_hh[:n, g0:g1], h[B:], 1.0, dw_hh[g0:g1])
        else:
            gemm(True, False, 1.0, a_hh[B:, g0:g1], h[:n], 1.0, dw_hh[g0:g1])
    row_sum(a_ih, db_ih, g0, g1)
    if shared:
        db_hh[g0:g1] = db_ih[g0:g1]
    else:
        row_sum(a_hh, db_hh, g0, g1)


@njit(parallel=True, **JIT)
def _grads_parallel(nthreads, a_ih, a_hh, shared, x2, w_ih, h, h0, da_hh_first, n, reverse,
                    dx2, dx_beta, dw_ih, dw_hh, db_ih, db_hh):
    for i in prange(nthreads):
        _grads_slice(i, nthreads, a_ih, a_hh, shared, x2, w_ih, h, h0, da_hh_first, n,
                     reverse, dx2, dx_beta, dw_ih, dw_hh, db_ih, db_hh)


@njit(**JIT)
def weight_grads(da_ih, da_hh, shared, x, w_ih, y, col, h0, reverse, nthreads,
                 dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh):
    """Gradients of one direction of one layer from its gate gradients.

    da_ih (T, B, G): dL/d(x_t W_ih' + b_ih); da_hh (T, B, G): dL/d(h W_hh' + b_hh)
    shared: da_hh is da_ih (rnn, lstm), so db_hh is db_ih
    x (T, B, D); w_ih (G, D); h0 (B, H)
    y (T, B, W): the layer's output; this direction's h_t is y[t, :, col:col+H]
    reverse: the direction walked t = T-1 .. 0, so step t read h_{t+1}
    dx (T, B, D) <- da_ih W_ih + dx_beta * dx (the other direction's share)
    dw_ih (G, D), dw_hh (G, H), db_ih, db_hh (G,) <- the gradients
    """
    T, B, D = x.shape
    G = da_ih.shape[2]
    H = h0.shape[1]
    W = y.shape[2]
    a_ih = da_ih.reshape(T * B, G)
    a_hh = da_hh.reshape(T * B, G)
    x2 = x.reshape(T * B, D)
    dx2 = dx.reshape(T * B, D)
    h = y.reshape(T * B, W)[:, col:col + H]
    n = (T - 1) * B
    first = da_hh[T - 1 if reverse else 0]
    if nthreads > 1:
        _grads_parallel(nthreads, a_ih, a_hh, shared, x2, w_ih, h, h0, first, n, reverse,
                        dx2, dx_beta, dw_ih, dw_hh, db_ih, db_hh)
    else:
        _grads_slice(0, 1, a_ih, a_hh, shared, x2, w_ih, h, h0, first, n, reverse,
                     dx2, dx_beta, dw_ih, dw_hh, db_ih, db_hh)


@njit(**JIT)
def total(v):
    """Sum of v."""
    s = v[0] * 0
    for i in range(v.shape[0]):
        s += v[i]
    return s


@njit(**JIT)
def sum_squares(v):
    """Sum of v's squares (the caller takes the root)."""
    s = v[0] * 0
    for i in range(v.shape[0]):
        s += v[i] * v[i]
    return s
