"""Vanilla (Elman) RNN: the equations of one batch row at one step.

    h_t = act(x_t W_ih' + b_ih + h_{t-1} W_hh' + b_hh),  act = tanh or relu

The time loop, the GEMMs and the threads are ``driver``'s; a row function
gets one batch row of one step, in the argument order every cell shares:
    forward_row(a, hw, b_ih, b_hh, h_prev, c_prev, h, c)
    backward_row(a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh)
The RNN keeps nothing but h_t for backward, and uses neither c_prev, c, dc
nor da_hh (which is da_ih). One function per nonlinearity, as cuDNN's modes.
"""
from numba import njit

from .activations import scalar_like, tanh
from .bptt import JIT, add_into


@njit(**JIT)
def forward_tanh(a, hw, b_ih, b_hh, h_prev, c_prev, h, c):
    """h (H,) <- tanh(a + hw + b_ih + b_hh); a = x_t W_ih', hw = h_{t-1} W_hh' (H,)."""
    for j in range(h.shape[0]):
        h[j] = tanh(a[j] + hw[j] + b_ih[j] + b_hh[j])


@njit(**JIT)
def forward_relu(a, hw, b_ih, b_hh, h_prev, c_prev, h, c):
    """h (H,) <- max(a + hw + b_ih + b_hh, 0); a = x_t W_ih', hw = h_{t-1} W_hh' (H,)."""
    zero = scalar_like(h, 0.0)
    for j in range(h.shape[0]):
        h[j] = max(a[j] + hw[j] + b_ih[j] + b_hh[j], zero)


@njit(**JIT)
def backward_tanh(a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh):
    """dL/d(pre-activation) of one row: da = dh (1 - h_t^2).

    h (H,): h_t; dh_out (H,): dL/dh_t from above; dh (H,): from step t+1 on
    entry, 0 on return (all of dL/dh_{t-1} goes through W_hh: the driver's GEMM)
    da_ih (H,) <- dL/d(pre-activation). Returns |total dL/dh_t|^2.
    """
    one = scalar_like(h, 1.0)
    H = h.shape[0]
    sq = add_into(dh, dh_out)
    for j in range(H):
        da_ih[j] = dh[j] * (one - h[j] * h[j])
    for j in range(H):
        dh[j] = 0
    return sq


@njit(**JIT)
def backward_relu(a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh):
    """dL/d(pre-activation) of one row: da = dh where h_t > 0, else 0.

    Arguments and return as ``backward_tanh``.
    """
    zero = scalar_like(h, 0.0)
    H = h.shape[0]
    sq = add_into(dh, dh_out)
    for j in range(H):
        da_ih[j] = dh[j] if h[j] > zero else zero
    for j in range(H):
        dh[j] = 0
    return sq
