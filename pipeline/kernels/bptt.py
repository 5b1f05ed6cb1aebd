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
from numba import carray, njit, prange, types
from numba.extending import overload

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
def gather(x, y, col, h0, batch_sizes, reverse, xh, gru):
    """xh <- [x | h_prev | 1] (N, D + H + 1), or [x | 1 | h_prev | 1] (N, D + H + 2) for gru.

    h_prev is the state each row's step started from: a row of h =
    y[:, col:col+H] one step away, or of h0 where the sequence starts. Loops, not slice
    assignments: those compile to shape checks and error formatting, seconds
    of a cold start.
    """
    D, H = x.shape[1], h0.shape[1]
    one = x[0, 0] * 0 + 1
    c = D + 1 if gru else D
    offsets = step_offsets(batch_sizes)
    for t in range(batch_sizes.shape[0]):
        o_p, m = neighbour(batch_sizes, offsets, t, reverse)
        o = offsets[t]
        for b in range(batch_sizes[t]):
            out, src = xh[o + b], x[o + b]
            prev, p0 = (y[o_p + b], col) if b < m else (h0[b], 0)
            for k in range(D):
                out[k] = src[k]
            out[D] = one
            for k in range(H):
                out[c + k] = prev[p0 + k]
            out[c + H] = one


def either(a, b):
    """b, or a where b is None (decided when the caller compiles)."""
    return a if b is None else b


@overload(either)
def _either(a, b):
    if isinstance(b, types.NoneType):
        return lambda a, b: a
    return lambda a, b: b


# The transposed copy out of a product goes in blocks of this many gate
# columns, so that the rows it writes stay in L1 while it walks them.
COPY_BLOCK = 16


@njit(**JIT)
def _copy_out(dw_t, g0, g1, dwa, dwb, db):
    """Gate columns g0..g1 of dw_t (Da + Db + 1, G) into dwa (G, Da), dwb (G, Db), db (G,)."""
    Da, Db = dwa.shape[1], dwb.shape[1]
    for gb in range(g0, g1, COPY_BLOCK):
        ge = min(gb + COPY_BLOCK, g1)
        for k in range(Da):
            src = dw_t[k]
            for g in range(gb, ge):
                dwa[g, k] = src[g]
        for k in range(Db):
            src = dw_t[Da + k]
            for g in range(gb, ge):
                dwb[g, k] = src[g]
        src = dw_t[Da + Db]
        for g in range(gb, ge):
            db[g] = src[g]


@njit(**JIT)
def _grads_slice(i, parts, da_ih, da_hh, w_ih, dx, dx_beta, xh, dw_t, dw_ih, dw_hh,
                 db_ih, db_hh):
    """Slice i of the weight gradients: rows i of dx, gate columns i of the products."""
    N, G = da_ih.shape
    D, H = dw_ih.shape[1], dw_hh.shape[1]
    r0, r1 = span(i, parts, N, 1)
    gemm(False, False, 1.0, da_ih[r0:r1], w_ih, dx_beta, dx[r0:r1])
    g0, g1 = span(i, parts, G, 1)
    if da_hh is not None:  # gru; decided when this compiles (da_hh's type)
        a, b = dw_t[:D + 1], dw_t[D + 1:]
        gemm(True, False, 1.0, xh[:, :D + 1], da_ih[:, g0:g1], 0.0, a[:, g0:g1])
        _copy_out(a, g0, g1, dw_ih[:, :D], dw_ih[:, :0], db_ih)
        gemm(True, False, 1.0, xh[:, D + 1:], da_hh[:, g0:g1], 0.0, b[:, g0:g1])
        _copy_out(b, g0, g1, dw_hh[:, :H], dw_hh[:, :0], db_hh)
    else:
        gemm(True, False, 1.0, xh, da_ih[:, g0:g1], 0.0, dw_t[:, g0:g1])
        _copy_out(dw_t, g0, g1, dw_ih[:, :D], dw_hh[:, :H], db_ih)
        for g in range(g0, g1):
            db_hh[g] = db_ih[g]


@njit(parallel=True, **JIT)
def _grads_parallel(nthreads, da_ih, da_hh, w_ih, dx, dx_beta, xh, dw_t, dw_ih, dw_hh,
                    db_ih, db_hh):
    for i in prange(nthreads):
        _grads_slice(i, nthreads, da_ih, da_hh, w_ih, dx, dx_beta, xh, dw_t, dw_ih, dw_hh,
                     db_ih, db_hh)


@njit(**JIT)
def weight_grads(da_ih, da_hh, x, w_ih, y, col, h0, batch_sizes, reverse, nthreads,
                 dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh):
    """dx and the weight gradients of one direction of one layer from its gate gradients.

    da_ih (N, G): dL/d(x_t W_ih' + b_ih) of every row; da_hh (N, G):
    dL/d(h W_hh' + b_hh) where it differs (gru), None where it is da_ih (rnn,
    lstm; then db_hh = db_ih): each compiles only its own path
    x (N, D); w_ih (G, D); h0 (B, H)
    y (N, W): the layer's output; this direction's h_t is y[:, col:col+H]
    batch_sizes, reverse: the steps, as the driver walked them
    dx (N, D) <- da_ih W_ih + dx_beta * dx (the other direction's share)
    dw_ih (G, D), dw_hh (G, H), db_ih, db_hh (G,) <- the gradients
    The weight and bias gradients are products with [x | h_prev | 1]
    (``gather``): for rnn and lstm one GEMM, [x | h_prev | 1]' da, so one
    pass over da instead of four (dW_ih, dW_hh, two bias sums) at a shape
    BLAS runs near its peak: 0.94 of the 2048-square GEMM against 0.79 and
    0.85 for the two products apart at c2 float32, 0.88 against 0.60 and 0.67
    float64. gru: [x | 1]' da_ih and [h_prev | 1]' da_hh.
    """
    N, G = da_ih.shape
    D = x.shape[1]
    H = h0.shape[1]
    gru = da_hh is not None
    extra = 2 if gru else 1
    xh = np.empty((N, D + H + extra), x.dtype)
    gather(x, y, col, h0, batch_sizes, reverse, xh, gru)
    dw_t = np.empty((D + H + extra, G), x.dtype)
    if nthreads is None:
        _grads_slice(0, 1, da_ih, da_hh, w_ih, dx, dx_beta, xh, dw_t, dw_ih, dw_hh,
                     db_ih, db_hh)
    else:
        _grads_parallel(nthreads, da_ih, da_hh, w_ih, dx, dx_beta, xh, dw_t, dw_ih, dw_hh,
                        db_ih, db_hh)


@njit(**JIT)
def total(v):
    """Sum of v."""
    s = v[0] * 0
    for i in range(v.shape[0]):
        s += v[i]
    return s


# add_into sums squares in LANES interleaved partial sums: a fixed summation
# order that vectorises (one running sum is a chain of dependent adds, 4
# cycles an element: it made the rnn's backward rows 2x slower).
LANES = 16


@njit(**JIT)
def add_into(dh, dh_out):
    """dh += dh_out, making dh a row's total dL/dh_t; returns its squared norm."""
    part = carray(stack_array(LANES, dh), LANES)
    for lane in range(LANES):
        part[lane] = 0
    n = dh.shape[0]
    m = n - n % LANES
    for i in range(0, m, LANES):
        for lane in range(LANES):
            v = dh[i + lane] + dh_out[i + lane]
            dh[i + lane] = v
            part[lane] += v * v
    s = dh[0] * 0
    for i in range(m, n):
        dh[i] += dh_out[i]
        s += dh[i] * dh[i]
    for lane in range(LANES):
        s += part[lane]
    return s
