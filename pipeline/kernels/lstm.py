"""LSTM, one direction of one layer, forward and backward through time.

Gates in PyTorch's order i, f, g, o; G = 4H rows in the weights.
    a_t = x_t W_ih' + b_ih + h_{t-1} W_hh' + b_hh           (B, 4H)
    i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)

Work is shaped as in cuDNN: the input projection of all steps is one GEMM;
each step does one recurrent GEMM into the gate buffer (on W_hh packed once
per sequence) and then the gate math of each batch row in one pass. With
nthreads > 1 a step's batch rows are cut into slices that run in parallel.
Backward keeps the gate gradients of all steps and forms dx and the weight
gradients with one GEMM each (``bptt.weight_grads``).

Outputs go into arrays the caller owns, so a training loop reuses them
instead of paying page faults for fresh buffers on every batch.
"""
import numpy as np
from numba import njit, prange

from .activations import scalar_like, sigmoid, tanh
from .blas import MR, gemm_packed
from .bptt import (JIT, packed, project, span, step_slices, sum_squares, total,
                   weight_grads)

GATES = 4


@njit(**JIT)
def _forward_row(a, bias, c_prev, c, h):
    """One batch row of one step.

    a (4H,): gate pre-activations without bias -> activated i, f, g, o
    bias (4H,) = b_ih + b_hh; c_prev (H,) -> c (H,), h (H,)
    Loops run over range(H) with offsets: a loop over range(start, stop)
    does not vectorise in numba (the index might be negative).
    """
    H = c.shape[0]
    for j in range(2 * H):
        a[j] = sigmoid(a[j] + bias[j])
    for j in range(H):
        a[2 * H + j] = tanh(a[2 * H + j] + bias[2 * H + j])
    for j in range(H):
        a[3 * H + j] = sigmoid(a[3 * H + j] + bias[3 * H + j])
    for j in range(H):
        c[j] = a[H + j] * c_prev[j] + a[j] * a[2 * H + j]
    for j in range(H):
        h[j] = a[3 * H + j] * tanh(c[j])


@njit(**JIT)
def _forward_slice(h_prev, c_prev, wp, bias, a, c, y, col, r0, r1):
    """Batch rows r0..r1 of one step: recurrent GEMM into a (B, 4H), then gate math."""
    H = c.shape[1]
    gemm_packed(h_prev, wp, a.shape[1], a, True, r0, r1)
    for b in range(r0, r1):
        _forward_row(a[b], bias, c_prev[b], c[b], y[b, col:col + H])


@njit(parallel=True, **JIT)
def _forward_parallel(h_prev, c_prev, wp, bias, a, c, y, col, parts):
    for i in prange(parts):
        r0, r1 = span(i, parts, a.shape[0], MR)
        _forward_slice(h_prev, c_prev, wp, bias, a, c, y, col, r0, r1)


@njit(**JIT)
def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, nthreads, y, col, c, gates):
    """Run one direction of one layer over all steps.

    x (T, B, D); w_ih (4H, D); w_hh (4H, H); b_ih, b_hh (4H,); h0, c0 (B, H)
    reverse: walk t = T-1 .. 0; nthreads: threads to spread the work over
    Writes h_t into y[t, :, col:col+H] (y is (T, B, W)), the cell states into
    c (T, B, H), and the activated gates i, f, g, o into gates (T, B, 4H).
    """
    T, B, D = x.shape
    G = w_ih.shape[0]
    H = G // GATES
    bias = b_ih + b_hh
    project(x, w_ih, gates.reshape(T * B, G), nthreads)
    wp = packed(w_hh)
    parts = step_slices(B, nthreads)
    for s in range(T):
        t = T - 1 - s if reverse else s
        p = t + 1 if reverse else t - 1
        h_prev = h0 if s == 0 else y[p, :, col:col + H]
        c_prev = c0 if s == 0 else c[p]
        if parts > 1:
            _forward_parallel(h_prev, c_prev, wp, bias, gates[t], c[t], y[t], col, parts)
        else:
            _forward_slice(h_prev, c_prev, wp, bias, gates[t], c[t], y[t], col, 0, B)


@njit(**JIT)
def _backward_row(a, c_prev, c, dh_out, dh, dc, da):
    """Gate gradients of one batch row at one step.

    a (4H,) activated i, f, g, o; c_prev, c (H,)
    dh_out (H,): dL/dh_t from above; dh (H,): from step t+1, becomes the total
    dc (H,): dL/dc_t from step t+1, becomes dL/dc_{t-1}
    da (4H,) <- dL/d(gate pre-activations)
    Returns the squared norm of this row's total dL/dh_t.
    """
    H = c.shape[0]
    one = scalar_like(c, 1.0)
    for j in range(H):
        dh[j] += dh_out[j]
    for j in range(H):
        da[j] = tanh(c[j])  # tanh(c_t), parked in the i slot until used
    for j in range(H):
        o = a[3 * H + j]
        da[3 * H + j] = dh[j] * da[j] * (o - o * o)
    for j in range(H):
        tc = da[j]
        dc[j] += dh[j] * a[3 * H + j] * (one - tc * tc)
    for j in range(H):
        i = a[j]
        da[j] = dc[j] * a[2 * H + j] * (i - i * i)
    for j in range(H):
        f = a[H + j]
        da[H + j] = dc[j] * c_prev[j] * (f - f * f)
    for j in range(H):
        g = a[2 * H + j]
        da[2 * H + j] = dc[j] * a[j] * (one - g * g)
    for j in range(H):
        dc[j] *= a[H + j]
    return sum_squares(dh)


@njit(**JIT)
def _backward_slice(a, c_prev, c, dy, col, wp_t, dh, dc, da, sq, r0, r1):
    """Batch rows r0..r1 of one backward step; dh <- da W_hh for the step before."""
    H = c.shape[1]
    for b in range(r0, r1):
        sq[b] = _backward_row(a[b], c_prev[b], c[b], dy[b, col:col + H], dh[b], dc[b], da[b])
    gemm_packed(da, wp_t, H, dh, False, r0, r1)


@njit(parallel=True, **JIT)
def _backward_parallel(a, c_prev, c, dy, col, wp_t, dh, dc, da, sq, parts):
    for i in prange(parts):
        r0, r1 = span(i, parts, a.shape[0], MR)
        _backward_slice(a, c_prev, c, dy, col, wp_t, dh, dc, da, sq, r0, r1)


@njit(**JIT)
def lstm_backward(dy, dh, dc, x, w_ih, w_hh, h0, c0, y, col, c, gates, reverse,
                  nthreads, da, dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh, dh_norm):
    """Backpropagate through all steps of the last ``lstm_forward``.

    dy (T, B, W): dL/dy; this direction's share is dy[t, :, col:col+H]
    dh, dc (B, H): dL/d(h_n, c_n) on entry, dL/d(h_0, c_0) on return
    x ... gates, reverse: as given to and filled by lstm_forward
    da (T, B, 4H) <- gate gradients (workspace)
    dx (T, B, D) <- dL/dx + dx_beta * dx
    dw_ih (4H, D), dw_hh (4H, H), db_ih, db_hh (4H,) <- parameter gradients
    dh_norm (T,) <- the norm of the total dL/dh_t over the batch
    """
    T, B, D = x.shape
    sq = np.empty(B, x.dtype)
    wp_t = packed(w_hh.T)
    parts = step_slices(B, nthreads)
    for s in range(T):
        t = s if reverse else T - 1 - s
        first = t == T - 1 if reverse else t == 0
        c_prev = c0 if first else (c[t + 1] if reverse else c[t - 1])
        if parts > 1:
            _backward_parallel(gates[t], c_prev, c[t], dy[t], col, wp_t, dh, dc, da[t], sq, parts)
        else:
            _backward_slice(gates[t], c_prev, c[t], dy[t], col, wp_t, dh, dc, da[t], sq, 0, B)
        dh_norm[t] = np.sqrt(total(sq))
    weight_grads(da, da, True, x, w_ih, y, col, h0, reverse, nthreads,
                 dx, dx_beta, dw_ih, dw_hh, db_ih, db_hh)
