"""GRU: the equations of one batch row at one step, forward and backward.

PyTorch's reset-after form, gates in the order r, z, n; G = 3H rows:
    r = sigmoid(x W_ir' + b_ir + h W_hr' + b_hr)
    z = sigmoid(x W_iz' + b_iz + h W_hz' + b_hz)
    n = tanh(x W_in' + b_in + r * (h W_hn' + b_hn))
    h' = (1 - z) * n + z * h

The time loop, the GEMMs and the threads are ``driver``'s; a row function
gets one batch row of one step, in the argument order every cell shares:
    forward_row(a, hw, b_ih, b_hh, h_prev, c_prev, h, c)
    backward_row(a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh)
The GRU has no cell state: c_prev and dc are not used, and the c slot keeps
hn = h W_hn' + b_hn for backward. Because r multiplies only the recurrent
part of n, the n rows of the gate gradients differ for the two weight
matrices: da_ih for W_ih and b_ih, da_hh for W_hh and b_hh.
"""
from numba import njit

from .activations import scalar_like, sigmoid, tanh
from .bptt import JIT, add_into


@njit(**JIT)
def forward_row(a, hw, b_ih, b_hh, h_prev, c_prev, h, hn):
    """One row of one step.

    a (3H,): x_t W_ih' on entry, the activated gates r, z, n on return
    hw (3H,): h_{t-1} W_hh'; b_ih, b_hh (3H,); h_prev (H,): h_{t-1}
    h (H,) <- h_t; hn (H,) <- h_{t-1} W_hn' + b_hn
    """
    H = h.shape[0]
    r, z, n = a[:H], a[H:2 * H], a[2 * H:]
    for j in range(2 * H):  # r and z
        a[j] = sigmoid(a[j] + hw[j] + b_ih[j] + b_hh[j])
    hw_n, b_in, b_hn = hw[2 * H:], b_ih[2 * H:], b_hh[2 * H:]
    for j in range(H):
        hn[j] = hw_n[j] + b_hn[j]
    for j in range(H):
        n[j] = tanh(n[j] + b_in[j] + r[j] * hn[j])
    for j in range(H):
        h[j] = n[j] + z[j] * (h_prev[j] - n[j])


@njit(**JIT)
def backward_row(a, h_prev, c_prev, h, hn, dh_out, dh, dc, da_ih, da_hh):
    """Gate gradients of one row at one step.

    a (3H,): the activated r, z, n; h_prev (H,); hn (H,): h_{t-1} W_hn' + b_hn
    dh_out (H,): dL/dh_t from above; dh (H,): from step t+1 on entry, on
    return the part of dL/dh_{t-1} that does not go through W_hh (z dh)
    da_ih, da_hh (3H,) <- dL/d(x W_ih' + b_ih), dL/d(h W_hh' + b_hh)
    Returns |total dL/dh_t|^2.
    """
    H = hn.shape[0]
    one = scalar_like(hn, 1.0)
    r, z, n = a[:H], a[H:2 * H], a[2 * H:]
    d_r, d_z, d_n = da_ih[:H], da_ih[H:2 * H], da_ih[2 * H:]
    sq = add_into(dh, dh_out)
    for j in range(H):
        d_z[j] = dh[j] * (h_prev[j] - n[j]) * (z[j] - z[j] * z[j])
    for j in range(H):
        d_n[j] = dh[j] * (one - z[j]) * (one - n[j] * n[j])
    for j in range(H):
        d_r[j] = d_n[j] * hn[j] * (r[j] - r[j] * r[j])
    for j in range(2 * H):  # r and z reach both products alike
        da_hh[j] = da_ih[j]
    d_hn = da_hh[2 * H:]
    for j in range(H):
        d_hn[j] = d_n[j] * r[j]
    for j in range(H):
        dh[j] *= z[j]
    return sq
