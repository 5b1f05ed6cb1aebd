"""LSTM: the equations of one batch row at one step, forward and backward.

Gates in PyTorch's order i, f, g, o; G = 4H rows in the weights.
    a = x_t W_ih' + b_ih + h_{t-1} W_hh' + b_hh           (4H,)
    i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)

The time loop, the GEMMs and the threads are ``driver``'s; a row function
gets one batch row of one step, in the argument order every cell shares:
    forward_row(a, hw, b_ih, b_hh, h_prev, c_prev, h, c)
    backward_row(a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh)
Each loop stores to one array and runs over range(H) on a gate's slice:
LLVM vectorises that (one loop storing to several arrays it does not).
"""
from numba import njit

from .activations import scalar_like, sigmoid, tanh
from .bptt import JIT, add_into


@njit(**JIT)
def forward_row(a, hw, b_ih, b_hh, h_prev, c_prev, h, c):
    """One row of one step.

    a (4H,): x_t W_ih' on entry, the activated gates i, f, g, o on return
    hw (4H,): h_{t-1} W_hh'; b_ih, b_hh (4H,); c_prev (H,): c_{t-1}
    h, c (H,) <- h_t, c_t. h_prev is not used (it reached a through hw).
    """
    H = h.shape[0]
    for j in range(4 * H):
        a[j] += hw[j] + b_ih[j] + b_hh[j]
    i, f, g, o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    for j in range(H):
        i[j] = sigmoid(i[j])
    for j in range(H):
        f[j] = sigmoid(f[j])
    for j in range(H):
        g[j] = tanh(g[j])
    for j in range(H):
        o[j] = sigmoid(o[j])
    for j in range(H):
        c[j] = f[j] * c_prev[j] + i[j] * g[j]
    for j in range(H):
        h[j] = o[j] * tanh(c[j])


@njit(**JIT)
def backward_row(a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh):
    """Gate gradients of one row at one step.

    a (4H,): the activated i, f, g, o; c_prev, c (H,): c_{t-1}, c_t
    dh_out (H,): dL/dh_t from above; dh (H,): from step t+1 on entry, 0 on
    return (all of dL/dh_{t-1} goes through W_hh: the driver's GEMM)
    dc (H,): dL/dc_t from step t+1 on entry, dL/dc_{t-1} on return
    da_ih (4H,) <- dL/da (da_hh is the same array). Returns |total dL/dh_t|^2.
    """
    H = h.shape[0]
    one = scalar_like(c, 1.0)
    i, f, g, o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    d_i, d_f, d_g, d_o = da_ih[:H], da_ih[H:2 * H], da_ih[2 * H:3 * H], da_ih[3 * H:]
    sq = add_into(dh, dh_out)
    tc = d_i  # tanh(c_t), parked where d_i goes once it is used
    for j in range(H):
        tc[j] = tanh(c[j])
    for j in range(H):
        d_o[j] = dh[j] * tc[j] * (o[j] - o[j] * o[j])
    for j in range(H):
        dc[j] += dh[j] * o[j] * (one - tc[j] * tc[j])
    for j in range(H):
        d_i[j] = dc[j] * g[j] * (i[j] - i[j] * i[j])
    for j in range(H):
        d_f[j] = dc[j] * c_prev[j] * (f[j] - f[j] * f[j])
    for j in range(H):
        d_g[j] = dc[j] * i[j] * (one - g[j] * g[j])
    for j in range(H):
        dc[j] *= f[j]
    for j in range(H):
        dh[j] = 0
    return sq
