"""Pieces of backpropagation through time that every cell shares.

The step layout (which rows a step holds, where its previous state is), the
input projection of all steps, and after the backward loop dx and the weight
gradients: plain GEMMs over all rows at once, as in cuDNN. ``nthreads`` None
runs each on one thread and compiles nothing parallel (Numba prunes the other
branch at compile time); an int cuts each GEMM into that many slices that run
in parallel, each on single-threaded BLAS (one thread pool only: Numba's).

Rows are PyTorch's packed-sequence layout (see ``driver``): step t holds rows
offsets[t] .. offsets[t] + batch_sizes[t], the sequences still running.
"""
import numpy as np
from numba import carray, njit, prange

from .blas import MR, gemm, stack_array

JIT = dict(cache=True, error_model="numpy")


@njit(**JIT)
def span(i, parts, n, align):
    """Bounds of slice i when range(n) is cut into `parts` slices of a multiple of align."""
    size = (n + parts - 1) // parts
    size = (size + align - 1) // align * align
    return min(n, i * size), min(n, (i + 1) * size)


@njit(**JIT)
def step_slices(B, nthreads):
    """How many batch-row slices a step of B rows is cut into (each a multiple of MR rows)."""
    size = (B + nthreads - 1) // nthreads
    size = (size + MR - 1) // MR * MR
    return (B + size - 1) // size


@njit(**JIT)
def step_offsets(batch_sizes):
    """offsets (T + 1,): step t's rows are offsets[t] .. offsets[t + 1]."""
    offsets = np.empty(batch_sizes.shape[0] + 1, np.int64)
    offsets[0] = 0
    for t in range(batch_sizes.shape[0]):
        offsets[t + 1] = offsets[t] + batch_sizes[t]
    return offsets


@njit(**JIT)
def neighbour(batch_sizes, offsets, t, reverse):
    """Where step t's previous state is: (o, m).

    The step before t in the walk is t - 1 (t + 1 in reverse). Rows b < m of
    step t continue from that step's row o + b; rows m <= b < batch_sizes[t]
    start here, from h0[b] (every row at t = 0; in reverse, the sequences
    whose last valid step is t).
    """
    p = t + 1 if reverse else t - 1
    if p < 0 or p >= batch_sizes.shape[0]:
        return 0, 0
    return offsets[p], min(batch_sizes[t], batch_sizes[p])


@njit(**JIT)
def _project_slice(x, w_ih, out, r0, r1):
    gemm(False, True, 1.0, x[r0:r1], w_ih, 0.0, out[r0:r1])


@njit(parallel=True, **JIT)
def _project_parallel(x, w_ih, out, nthreads):
    for i in prange(nthreads):
        r0, r1 = span(i, nthreads, x.shape[0], 1)
        _project_slice(x, w_ih, out, r0, r1)


@njit(**JIT)
def project(x, w_ih, out, nthreads):
    """out (N, G) = x (N, D) W_ih': the input projection of every row."""
    if nthreads is None:
        _project_slice(x, w_ih, out, 0, x.shape[0])
    else:
        _project_parallel(x, w_ih, out, nthreads)


@njit(**JIT)
def prev_rows(h, h0, batch_sizes, reverse, out):
    """out (N, H) <- the state every row's step started from: a row of h (N, H) or of h0."""
    offsets = step_offsets(batch_sizes)
    for t in range(batch_sizes.shape[0]):
        o_p, m = neighbour(batch_sizes, offsets, t, reverse)
        o = offsets[t]
        for b in range(m):
            out[o + b] = h[o_p + b]
        for b in range(m, batch_sizes[t]):
            out[o + b] = h0[b]


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
def _grads_slice(i, parts, da_ih, da_hh, x, w_ih, da1, h1, da2, h2,
                 dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh):
    """Slice i of weight_grads when da_hh differs (gru): rows i of dx, gate rows i of
    the weight gradients, one GEMM each."""
    N, G = da_ih.shape
    r0, r1 = span(i, parts, N, 1)
    gemm(False, False, 1.0, da_ih[r0:r1], w_ih, dx_beta, dx[r0:r1])
    g0, g1 = span(i, parts, G, 1)
    gemm(True, False, 1.0, da_ih[:, g0:g1], x, 0.0, dw_ih[g0:g1])
    gemm(True, False, 1.0, da1[:, g0:g1], h1, 0.0, dw_hh[g0:g1])
    if da2.shape[0] > 0:
        gemm(True, False, 1.0, da2[:, g0:g1], h2, 1.0, dw_hh[g0:g1])
    row_sum(da_ih, db_ih, g0, g1)
    row_sum(da_hh, db_hh, g0, g1)


# The transposed copy out of the fused product goes in blocks of this many
# gate columns, so that the rows it writes stay in L1 while it walks them.
COPY_BLOCK = 16


@njit(**JIT)
def _fused_grads_slice(i, parts, da, xh, w_ih, dx, dx_beta, dw_t, dw_ih, dw_hh, db):
    """Slice i of weight_grads when da_hh is da_ih (rnn, lstm): rows i of dx, then
    dw_t[:, gate columns i] = [x | h_prev | 1]' da in one GEMM, copied out transposed:
    dW_ih, dW_hh and the bias gradient (the column of ones sums da's rows)."""
    N, G = da.shape
    D, H = dw_ih.shape[1], dw_hh.shape[1]
    r0, r1 = span(i, parts, N, 1)
    gemm(False, False, 1.0, da[r0:r1], w_ih, dx_beta, dx[r0:r1])
    g0, g1 = span(i, parts, G, 1)
    gemm(True, False, 1.0, xh, da[:, g0:g1], 0.0, dw_t[:, g0:g1])
    for gb in range(g0, g1, COPY_BLOCK):
        ge = min(gb + COPY_BLOCK, g1)
        for k in range(D):
            src = dw_t[k]
            for g in range(gb, ge):
                dw_ih[g, k] = src[g]
        for k in range(H):
            src = dw_t[D + k]
            for g in range(gb, ge):
                dw_hh[g, k] = src[g]
        src = dw_t[D + H]
        for g in range(gb, ge):
            db[g] = src[g]


@njit(parallel=True, **JIT)
def _grads_parallel(nthreads, da_ih, da_hh, x, w_ih, da1, h1, da2, h2,
                    dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh):
    for i in prange(nthreads):
        _grads_slice(i, nthreads, da_ih, da_hh, x, w_ih, da1, h1, da2, h2,
                     dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh)


@njit(parallel=True, **JIT)
def _fused_grads_parallel(nthreads, da, xh, w_ih, dx, dx_beta, dw_t, dw_ih, dw_hh, db):
    for i in prange(nthreads):
        _fused_grads_slice(i, nthreads, da, xh, w_ih, dx, dx_beta, dw_t, dw_ih, dw_hh, db)


@njit(**JIT)
def weight_grads(da_ih, da_hh, x, w_ih, y, col, h0, batch_sizes, reverse, nthreads,
                 dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh):
    """dx and the weight gradients of one direction of one layer from its gate gradients.

    da_ih (N, G): dL/d(x_t W_ih' + b_ih) of every row; da_hh (N, G):
    dL/d(h W_hh' + b_hh), the same array for rnn and lstm (then db_hh = db_ih)
    x (N, D); w_ih (G, D); h0 (B, H)
    y (N, W): the layer's output; this direction's h_t is y[:, col:col+H]
    batch_sizes, reverse: the steps, as the driver walked them
    dx (N, D) <- da_ih W_ih + dx_beta * dx (the other direction's share)
    dw_ih (G, D), dw_hh (G, H), db_ih, db_hh (G,) <- the gradients
    When da_hh is da_ih, dW_ih, dW_hh and db are one GEMM, [x | h_prev | 1]' da
    (N x (D + H + 1) gathered first): one pass over da instead of three, and
    a shape BLAS runs near its peak (0.94 against 0.79 and 0.85 for the two
    products apart at c2, float32; 0.88 against 0.60 and 0.67 float64).
    Otherwise (gru) dW_hh sums da_hh' h_prev over rows: when every step holds
    every sequence, h_prev is y one step away but on the first step (h0), two
    GEMMs on views; else h_prev is gathered row by row first.
    """
    T = batch_sizes.shape[0]
    B = batch_sizes[0]
    N, G = da_ih.shape
    D = x.shape[1]
    H = h0.shape[1]
    h = y[:, col:col + H]
    if da_hh.ctypes.data == da_ih.ctypes.data:
        xh = np.empty((N, D + H + 1), x.dtype)
        xh[:, :D] = x
        prev_rows(h, h0, batch_sizes, reverse, xh[:, D:D + H])
        xh[:, D + H] = 1
        dw_t = np.empty((D + H + 1, G), x.dtype)
        if nthreads is None:
            _fused_grads_slice(0, 1, da_ih, xh, w_ih, dx, dx_beta, dw_t, dw_ih, dw_hh, db_ih)
        else:
            _fused_grads_parallel(nthreads, da_ih, xh, w_ih, dx, dx_beta, dw_t, dw_ih, dw_hh,
                                  db_ih)
        db_hh[:] = db_ih
        return
    if batch_sizes[T - 1] == B:
        n = (T - 1) * B
        first = n if reverse else 0
        da1, h1 = da_hh[first:first + B], h0
        da2, h2 = (da_hh[:n], h[B:]) if reverse else (da_hh[B:], h[:n])
    else:
        hp = np.empty((N, H), h0.dtype)
        prev_rows(h, h0, batch_sizes, reverse, hp)
        da1, h1 = da_hh, hp
        da2, h2 = da_hh[:0], h[:0]
    if nthreads is None:
        _grads_slice(0, 1, da_ih, da_hh, x, w_ih, da1, h1, da2, h2,
                     dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh)
    else:
        _grads_parallel(nthreads, da_ih, da_hh, x, w_ih, da1, h1, da2, h2,
                        dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh)


@njit(**JIT)
def total(v):
    """Sum of v."""
    s = v[0] * 0
    for i in range(v.shape[0]):
        s += v[i]
    return s


@njit(**JIT)
def add_into(dh, dh_out):
    """dh += dh_out, making dh a row's total dL/dh_t; returns its squared norm."""
    for j in range(dh.shape[0]):
        dh[j] += dh_out[j]
    return sum_squares(dh)


# Partial sums of sum_squares: a fixed summation order that vectorises (one
# running sum is a chain of dependent adds, 4 cycles an element: it made the
# rnn's backward rows 2x slower than their gate math).
LANES = 16


@njit(**JIT)
def sum_squares(v):
    """Sum of v's squares (the caller takes the root), in LANES interleaved partial sums."""
    part = carray(stack_array(LANES, v), LANES)
    for lane in range(LANES):
        part[lane] = 0
    n = v.shape[0]
    m = n - n % LANES
    for i in range(0, m, LANES):
        for lane in range(LANES):
            part[lane] += v[i + lane] * v[i + lane]
    s = v[0] * 0
    for i in range(m, n):
        s += v[i] * v[i]
    for lane in range(LANES):
        s += part[lane]
    return s
