"""The time loop every cell shares: one direction of one layer, forward and backward.

Work is shaped as in cuDNN:
    forward   gates = x W_ih' over all rows (one GEMM); then per step, in order:
              hw = h_prev W_hh' (W_hh packed once), then the cell's rows
    backward  per step, newest first: the cell's row gradients, then
              dh += da_hh W_hh; then dx, dW_ih, dW_hh and the biases from the
              gate gradients of all steps, one GEMM each (``bptt.weight_grads``)

Rows are PyTorch's packed-sequence layout: sequences sorted by length, longest
first; step t holds the batch_sizes[t] sequences still running, in rows
offsets[t] .. offsets[t] + batch_sizes[t] of every (N, .) array, so the work is
proportional to the valid steps. Equal lengths make it the (T*B, .) layout of
(T, B, .) arrays. A sequence starts from h0 (and c0) on its first step: t = 0
forward, its last valid step in reverse (``bptt.neighbour``).

Every cell implements two row functions in one argument order (rnn.py,
lstm.py, gru.py). ``cell`` is a ``cells.Cell``, whose Numba type names the
cell, and ``nthreads`` is None for one thread or an int: both are decided when
a function compiles, so each (cell, threading, dtype) compiles only its own
code, nothing parallel for one thread, and is cached as its own entry.
"""
import numpy as np
from numba import carray, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .blas import MR, gemm_packed, packed
from .bptt import (JIT, either, neighbour, project, span, step_offsets, step_slices, total,
                   weight_grads)
from .cells import backward_row, forward_row


# ----- one step: its batch rows, in slices on threads ----------------------------
@intrinsic
def _row_pointer(typingctx, a, r):
    """Pointer to a[r, 0] of a 2-D array."""
    if not (isinstance(a, types.Array) and a.ndim == 2 and isinstance(r, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        aryty, _ = sig.args
        ary = context.make_array(aryty)(context, builder, args[0])
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        return cgutils.get_item_pointer(context, builder, aryty, ary, [index, context.get_constant(types.intp, 0)])

    return types.CPointer(a.dtype)(a, r), codegen


def row(a, r):
    """a[r] of a C-contiguous 2-D array, as a view that is not reference counted."""
    return a[r]


@overload(row)
def _row(a, r):
    # A slice needs an atomic increment and decrement of its parent's count;
    # a step makes ten per batch row, which cost 5-10 % at c2. The parent
    # outlives every use here, so the row is a bare pointer and a length.
    if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
        return None

    def impl(a, r):
        return carray(_row_pointer(a, r), a.shape[1])

    return impl


@njit(**JIT)
def _forward_slice(cell, wp, b_ih, b_hh, h0, c0, y, col, gates, c, hw, o, o_p, m, r0, r1):
    """Rows r0..r1 of the step in rows o.. : hw = h_prev W_hh', then the cell's rows.

    Row b continues from row o_p + b of y and c if b < m, else from h0[b], c0[b].
    """
    H = h0.shape[1]
    G = hw.shape[1]
    gemm_packed(y[o_p:o_p + m, col:col + H], wp, G, hw, False, r0, min(r1, m))
    gemm_packed(h0[:, :H], wp, G, hw, False, max(r0, m), r1)  # one layout: one compile
    for b in range(r0, r1):
        h_prev, c_prev = (row(y, o_p + b)[col:col + H], row(c, o_p + b)) if b < m else \
            (row(h0, b), row(c0, b))
        forward_row(cell, row(gates, o + b), row(hw, b), b_ih, b_hh, h_prev, c_prev,
                    row(y, o + b)[col:col + H], row(c, o + b))


@njit(parallel=True, **JIT)
def _forward_parallel(cell, nthreads, n, wp, b_ih, b_hh, h0, c0, y, col, gates, c, hw, o, o_p, m):
    parts = step_slices(n, nthreads)
    for i in prange(parts):
        r0, r1 = span(i, parts, n, MR)
        _forward_slice(cell, wp, b_ih, b_hh, h0, c0, y, col, gates, c, hw, o, o_p, m, r0, r1)


@njit(**JIT)
def _backward_slice(cell, wp_t, h0, c0, y, col, gates, c, dy, dh, dc, da_ih, da_hh, sq,
                    o, o_p, m, r0, r1):
    """Rows r0..r1 of the backward step in rows o.. : the cell's rows, then dh += da_hh W_hh."""
    H = h0.shape[1]
    for b in range(r0, r1):
        h_prev, c_prev = (row(y, o_p + b)[col:col + H], row(c, o_p + b)) if b < m else \
            (row(h0, b), row(c0, b))
        sq[b] = backward_row(cell, row(gates, o + b), h_prev, c_prev, row(y, o + b)[col:col + H],
                             row(c, o + b), row(dy, o + b)[col:col + H], row(dh, b), row(dc, b),
                             row(da_ih, o + b), row(da_hh, o + b))
    gemm_packed(da_hh[o:o + r1, :da_hh.shape[1]], wp_t, H, dh, True, r0, r1)  # forward's layout


@njit(parallel=True, **JIT)
def _backward_parallel(cell, nthreads, n, wp_t, h0, c0, y, col, gates, c, dy, dh, dc, da_ih,
                       da_hh, sq, o, o_p, m):
    parts = step_slices(n, nthreads)
    for i in prange(parts):
        r0, r1 = span(i, parts, n, MR)
        _backward_slice(cell, wp_t, h0, c0, y, col, gates, c, dy, dh, dc, da_ih, da_hh, sq,
                        o, o_p, m, r0, r1)


# ----- one direction of one layer -------------------------------------------------
@njit(**JIT)
def forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, batch_sizes, reverse, nthreads,
            y, col, gates, c):
    """Run one direction of one layer over all steps.

    cell: a Cell; x (N, D): the packed input; w_ih (G, D); w_hh (G, H);
    b_ih, b_hh (G,); h0, c0 (B, H) in the rows' order (c0: lstm's; any (B, H)
    array for the others); batch_sizes (T,): rows per step, non-increasing, >= 1;
    reverse: walk t = T-1 .. 0; nthreads: None (one thread) or the thread count
    Writes h_t into y[:, col:col+H] (y is (N, W)), the activated gates into
    gates (N, G), and into c (N, H) lstm's c_t or gru's h W_hn' + b_hn.
    """
    T = batch_sizes.shape[0]
    G = w_hh.shape[0]
    offsets = step_offsets(batch_sizes)
    project(x, w_ih, gates, nthreads)
    wp = packed(w_hh)
    hw = np.empty((batch_sizes[0], G), x.dtype)
    for s in range(T):
        t = T - 1 - s if reverse else s
        o, n = offsets[t], batch_sizes[t]
        o_p, m = neighbour(batch_sizes, offsets, t, reverse)
        if nthreads is None or step_slices(n, nthreads) == 1:
            _forward_slice(cell, wp, b_ih, b_hh, h0, c0, y, col, gates, c, hw, o, o_p, m, 0, n)
        else:
            _forward_parallel(cell, nthreads, n, wp, b_ih, b_hh, h0, c0, y, col, gates, c, hw,
                              o, o_p, m)


@njit(**JIT)
def backward(cell, x, w_ih, w_hh, h0, c0, batch_sizes, reverse, nthreads, y, col, gates, c,
             dy, dh, dc, dx, dw_ih, dw_hh, db_ih, db_hh, dx_beta, da_ih, da_hh, dh_norm):
    """Backpropagate through all steps of the last ``forward``.

    cell ... c: as given to and filled by forward (no biases)
    dy (N, W): dL/dy, this direction's share in columns col:col+H
    dh, dc (B, H): dL/d(h_n, c_n) on entry, dL/d(h0, c0) on return (dc: lstm's;
    any (B, H) scratch for the others)
    dx (N, D) <- dL/dx + dx_beta * dx; dw_ih (G, D), dw_hh (G, H),
    db_ih, db_hh (G,) <- the parameter gradients
    da_ih (N, G) <- gate gradients (workspace); da_hh (N, G) <- gru's recurrent
    gate gradients (workspace), None for the cells whose are da_ih
    dh_norm (T,) <- the norm of the total dL/dh_t over the sequences running at t
    """
    T = batch_sizes.shape[0]
    offsets = step_offsets(batch_sizes)
    sq = np.empty(batch_sizes[0], x.dtype)
    wp_t = packed(w_hh.T)
    da_rec = either(da_ih, da_hh)
    for s in range(T):
        t = s if reverse else T - 1 - s
        o, n = offsets[t], batch_sizes[t]
        o_p, m = neighbour(batch_sizes, offsets, t, reverse)
        if nthreads is None or step_slices(n, nthreads) == 1:
            _backward_slice(cell, wp_t, h0, c0, y, col, gates, c, dy, dh, dc, da_ih, da_rec, sq,
                            o, o_p, m, 0, n)
        else:
            _backward_parallel(cell, nthreads, n, wp_t, h0, c0, y, col, gates, c, dy, dh, dc,
                               da_ih, da_rec, sq, o, o_p, m)
        dh_norm[t] = np.sqrt(total(sq[:n]))
    weight_grads(da_ih, da_hh, x, w_ih, y, col, h0, batch_sizes, reverse, nthreads,
                 dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh)
