"""GRU, one direction of one layer, forward and backward through time.

PyTorch's reset-after form, gates in the order r, z, n; G = 3H rows:
    r = sigmoid(x W_ir' + b_ir + h W_hr' + b_hr)
    z = sigmoid(x W_iz' + b_iz + h W_hz' + b_hz)
    n = tanh(x W_in' + b_in + r * (h W_hn' + b_hn))
    h' = (1 - z) * n + z * h

The input projection of all steps is one GEMM and each step one recurrent
GEMM on W_hh packed once per sequence, as for the LSTM; with nthreads > 1 a
step's batch rows are cut into slices that run in parallel. Because r multiplies only the recurrent part of n, the
gate gradients differ for the two weight matrices in the n rows, so backward
keeps two buffers: da_ih for W_ih and b_ih, da_hh for W_hh and b_hh.
"""
import numpy as np
from numba import njit, prange

from .activations import scalar_like, sigmoid, tanh
from .blas import MR, gemm_packed
from .bptt import (JIT, packed, project, span, step_slices, sum_squares, total,
                   weight_grads)

GATES = 3


@njit(**JIT)
def _forward_row(a, hw, b_ih, b_hh, h_prev, hn, h):
    """One batch row of one step.

    a (3H,): x W_ih' of this step -> activated r, z, n
    hw (3H,): h_prev W_hh'; b_ih, b_hh (3H,); h_prev (H,)
    hn (H,) <- h_prev W_hn' + b_hn, kept for backward; h (H,) <- h'
    """
    H = h.shape[0]
    for j in range(2 * H):
        a[j] = sigmoid(a[j] + b_ih[j] + hw[j] + b_hh[j])
    for j in range(H):
        hn[j] = hw[2 * H + j] + b_hh[2 * H + j]
    for j in range(H):
        a[2 * H + j] = tanh(a[2 * H + j] + b_ih[2 * H + j] + a[j] * hn[j])
    for j in range(H):
        n = a[2 * H + j]
        h[j] = n + a[H + j] * (h_prev[j] - n)


@njit(**JIT)
def _forward_slice(h_prev, wp, b_ih, b_hh, a, hw, hn, y, col, r0, r1):
    """Batch rows r0..r1 of one step: hw = h_prev W_hh' (B, 3H), then the gate math."""
    H = hn.shape[1]
    gemm_packed(h_prev, wp, a.shape[1], hw, False, r0, r1)
    for b in range(r0, r1):
        _forward_row(a[b], hw[b], b_ih, b_hh, h_prev[b], hn[b], y[b, col:col + H])


@njit(parallel=True, **JIT)
def _forward_parallel(h_prev, wp, b_ih, b_hh, a, hw, hn, y, col, parts):
    for i in prange(parts):
        r0, r1 = span(i, parts, a.shape[0], MR)
        _forward_slice(h_prev, wp, b_ih, b_hh, a, hw, hn, y, col, r0, r1)


@njit(**JIT)
def gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, reverse, nthreads, y, col, hn, gates):
    """Run one direction of one layer over all steps.

    x (T, B, D); w_ih (3H, D); w_hh (3H, H); b_ih, b_hh (3H,); h0 (B, H)
    reverse: walk t = T-1 .. 0; nthreads: threads to spread the work over
    Writes h_t into y[t, :, col:col+H] (y is (T, B, W)), h_{t-1} W_hn' + b_hn
    into hn (T, B, H), and the activated gates r, z, n into gates (T, B, 3H).
    """
    T, B, D = x.shape
    G = w_ih.shape[0]
    H = G // GATES
    hw = np.empty((B, G), x.dtype)
    project(x, w_ih, gates.reshape(T * B, G), nthreads)
    wp = packed(w_hh)
    parts = step_slices(B, nthreads)
    for s in range(T):
        t = T - 1 - s if reverse else s
        p = t + 1 if reverse else t - 1
        h_prev = h0 if s == 0 else y[p, :, col:col + H]
        if parts > 1:
            _forward_parallel(h_prev, wp, b_ih, b_hh, gates[t], hw, hn[t], y[t], col, parts)
        else:
            _forward_slice(h_prev, wp, b_ih, b_hh, gates[t], hw, hn[t], y[t], col, 0, B)


@njit(**JIT)
def _backward_row(a, hn, h_prev, dh_out, dh, da_ih, da_hh):
    """Gate gradients of one batch row at one step.

    a (3H,) activated r, z, n; hn (H,) h_prev W_hn' + b_hn; h_prev (H,)
    dh_out (H,): dL/dh_t from above; dh (H,): from step t+1 on entry,
    dL/dh_{t-1} through the z path on return (the GEMM adds the rest)
    da_ih, da_hh (3H,) <- dL/d(x W_ih' + b_ih), dL/d(h W_hh' + b_hh)
    Returns the squared norm of this row's total dL/dh_t.
    """
    H = hn.shape[0]
    one = scalar_like(hn, 1.0)
    for j in range(H):
        dh[j] += dh_out[j]
    sq = sum_squares(dh)
    for j in range(H):
        z = a[H + j]
        da_ih[H + j] = dh[j] * (h_prev[j] - a[2 * H + j]) * (z - z * z)
    for j in range(H):
        n = a[2 * H + j]
        da_ih[2 * H + j] = dh[j] * (one - a[H + j]) * (one - n * n)
    for j in range(H):
        r = a[j]
        da_ih[j] = da_ih[2 * H + j] * hn[j] * (r - r * r)
    for j in range(2 * H):
        da_hh[j] = da_ih[j]
    for j in range(H):
        da_hh[2 * H + j] = da_ih[2 * H + j] * a[j]
    for j in range(H):
        dh[j] *= a[H + j]
    return sq


@njit(**JIT)
def _backward_slice(a, hn, h_prev, dy, col, wp_t, dh, da_ih, da_hh, sq, r0, r1):
    """Batch rows r0..r1 of one backward step; dh += da_hh W_hh for the step before."""
    H = hn.shape[1]
    for b in range(r0, r1):
        sq[b] = _backward_row(a[b], hn[b], h_prev[b], dy[b, col:col + H], dh[b],
                              da_ih[b], da_hh[b])
    gemm_packed(da_hh, wp_t, H, dh, True, r0, r1)


@njit(parallel=True, **JIT)
def _backward_parallel(a, hn, h_prev, dy, col, wp_t, dh, da_ih, da_hh, sq, parts):
    for i in prange(parts):
        r0, r1 = span(i, parts, a.shape[0], MR)
        _backward_slice(a, hn, h_prev, dy, col, wp_t, dh, da_ih, da_hh, sq, r0, r1)


@njit(**JIT)
def gru_backward(dy, dh, x, w_ih, w_hh, h0, y, col, hn, gates, reverse, nthreads,
                 da_ih, da_hh, dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh, dh_norm):
    """Backpropagate through all steps of the last ``gru_forward``.

    dy (T, B, W): dL/dy; this direction's share is dy[t, :, col:col+H]
    dh (B, H): dL/dh_n on entry, dL/dh_0 on return
    x ... gates, reverse: as given to and filled by gru_forward
    da_ih, da_hh (T, B, 3H) <- gate gradients (workspace)
    dx (T, B, D) <- dL/dx + dx_beta * dx
    dw_ih (3H, D), dw_hh (3H, H), db_ih, db_hh (3H,) <- parameter gradients
    dh_norm (T,) <- the norm of the total dL/dh_t over the batch
    """
    T, B, D = x.shape
    H = dh.shape[1]
    sq = np.empty(B, x.dtype)
    wp_t = packed(w_hh.T)
    parts = step_slices(B, nthreads)
    for s in range(T):
        t = s if reverse else T - 1 - s
        first = t == T - 1 if reverse else t == 0
        h_prev = h0 if first else y[t + 1 if reverse else t - 1, :, col:col + H]
        if parts > 1:
            _backward_parallel(gates[t], hn[t], h_prev, dy[t], col, wp_t, dh, da_ih[t],
                               da_hh[t], sq, parts)
        else:
            _backward_slice(gates[t], hn[t], h_prev, dy[t], col, wp_t, dh, da_ih[t],
                            da_hh[t], sq, 0, B)
        dh_norm[t] = np.sqrt(total(sq))
    weight_grads(da_ih, da_hh, False, x, w_ih, y, col, h0, reverse, nthreads,
                 dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh)
