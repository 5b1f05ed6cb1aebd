"""Vanilla (Elman) RNN, one direction of one layer, forward and backward.

    h_t = act(x_t W_ih' + b_ih + h_{t-1} W_hh' + b_hh),  act = tanh or relu

The input projection of all steps is one GEMM written straight into the
output; each step adds one recurrent GEMM (W_hh packed once per sequence) and
activates in place, batch-row slices in parallel when nthreads > 1. Backward
keeps dL/d(pre-activation) of all steps for the weight-gradient GEMMs.
"""
import numpy as np
from numba import njit, prange

from .activations import scalar_like, tanh
from .blas import MR, gemm_packed
from .bptt import (JIT, packed, project, span, step_slices, sum_squares, total,
                   weight_grads)


@njit(**JIT)
def _forward_row(h, bias, relu):
    """h (H,): pre-activation without bias -> act(h + bias)."""
    zero = scalar_like(h, 0.0)
    if relu:
        for j in range(h.shape[0]):
            h[j] = max(h[j] + bias[j], zero)
    else:
        for j in range(h.shape[0]):
            h[j] = tanh(h[j] + bias[j])


@njit(**JIT)
def _forward_slice(h_prev, wp, bias, relu, y, col, r0, r1):
    """Batch rows r0..r1 of one step: y[:, col:col+H] += h_prev W_hh', then activate."""
    H = bias.shape[0]
    gemm_packed(h_prev, wp, H, y[:, col:col + H], True, r0, r1)
    for b in range(r0, r1):
        _forward_row(y[b, col:col + H], bias, relu)


@njit(parallel=True, **JIT)
def _forward_parallel(h_prev, wp, bias, relu, y, col, parts):
    for i in prange(parts):
        r0, r1 = span(i, parts, y.shape[0], MR)
        _forward_slice(h_prev, wp, bias, relu, y, col, r0, r1)


@njit(**JIT)
def rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, relu, reverse, nthreads, y, col):
    """Run one direction of one layer over all steps.

    x (T, B, D); w_ih (H, D); w_hh (H, H); b_ih, b_hh (H,); h0 (B, H)
    relu: relu instead of tanh; reverse: walk t = T-1 .. 0;
    nthreads: threads to spread the work over
    Writes h_t into y[t, :, col:col+H] (y is (T, B, W)).
    """
    T, B, D = x.shape
    H = w_ih.shape[0]
    W = y.shape[2]
    bias = b_ih + b_hh
    project(x, w_ih, y.reshape(T * B, W)[:, col:col + H], nthreads)
    wp = packed(w_hh)
    parts = step_slices(B, nthreads)
    for s in range(T):
        t = T - 1 - s if reverse else s
        p = t + 1 if reverse else t - 1
        h_prev = h0 if s == 0 else y[p, :, col:col + H]
        if parts > 1:
            _forward_parallel(h_prev, wp, bias, relu, y[t], col, parts)
        else:
            _forward_slice(h_prev, wp, bias, relu, y[t], col, 0, B)


@njit(**JIT)
def _backward_row(h, dh_out, dh, da, relu):
    """dL/d(pre-activation) of one batch row at one step.

    h (H,) this step's output; dh_out (H,): dL/dh_t from above
    dh (H,): from step t+1, becomes the total; da (H,) <- dL/d(pre-activation)
    Returns the squared norm of this row's total dL/dh_t.
    """
    zero = scalar_like(h, 0.0)
    one = scalar_like(h, 1.0)
    H = h.shape[0]
    for j in range(H):
        dh[j] += dh_out[j]
    if relu:
        for j in range(H):
            da[j] = dh[j] if h[j] > zero else zero
    else:
        for j in range(H):
            da[j] = dh[j] * (one - h[j] * h[j])
    return sum_squares(dh)


@njit(**JIT)
def _backward_slice(y, dy, col, wp_t, relu, dh, da, sq, r0, r1):
    """Batch rows r0..r1 of one backward step; dh <- da W_hh for the step before."""
    H = dh.shape[1]
    for b in range(r0, r1):
        sq[b] = _backward_row(y[b, col:col + H], dy[b, col:col + H], dh[b], da[b], relu)
    gemm_packed(da, wp_t, H, dh, False, r0, r1)


@njit(parallel=True, **JIT)
def _backward_parallel(y, dy, col, wp_t, relu, dh, da, sq, parts):
    for i in prange(parts):
        r0, r1 = span(i, parts, y.shape[0], MR)
        _backward_slice(y, dy, col, wp_t, relu, dh, da, sq, r0, r1)


@njit(**JIT)
def rnn_backward(dy, dh, x, w_ih, w_hh, h0, relu, y, col, reverse, nthreads,
                 da, dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh, dh_norm):
    """Backpropagate through all steps of the last ``rnn_forward``.

    dy (T, B, W): dL/dy; this direction's share is dy[t, :, col:col+H]
    dh (B, H): dL/dh_n on entry, dL/dh_0 on return
    x ... reverse: as given to and filled by rnn_forward
    da (T, B, H) <- dL/d(pre-activations) (workspace)
    dx (T, B, D) <- dL/dx + dx_beta * dx
    dw_ih (H, D), dw_hh (H, H), db_ih, db_hh (H,) <- parameter gradients
    dh_norm (T,) <- the norm of the total dL/dh_t over the batch
    """
    T, B, D = x.shape
    sq = np.empty(B, x.dtype)
    wp_t = packed(w_hh.T)
    parts = step_slices(B, nthreads)
    for s in range(T):
        t = s if reverse else T - 1 - s
        if parts > 1:
            _backward_parallel(y[t], dy[t], col, wp_t, relu, dh, da[t], sq, parts)
        else:
            _backward_slice(y[t], dy[t], col, wp_t, relu, dh, da[t], sq, 0, B)
        dh_norm[t] = np.sqrt(total(sq))
    weight_grads(da, da, True, x, w_ih, y, col, h0, reverse, nthreads,
                 dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh)
