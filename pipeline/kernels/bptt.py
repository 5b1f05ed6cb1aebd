"""Pieces of backpropagation through time that every cell shares.

After a cell's backward loop has written the gradients of its gate
pre-activations for all steps, the input and weight gradients are plain
GEMMs over all T*B rows at once, as in cuDNN.
"""
from numba import njit

from .blas import gemm

JIT = dict(cache=True, error_model="numpy")


@njit(**JIT)
def row_sum(a, out):
    """out (n,) = sum of the rows of a (m, n); summing along rows vectorises."""
    out[:] = 0
    for r in range(a.shape[0]):
        row = a[r]
        for j in range(a.shape[1]):
            out[j] += row[j]


@njit(**JIT)
def weight_grads(da_ih, da_hh, shared, x, w_ih, y, col, h0, reverse,
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
    gemm(False, False, 1.0, a_ih, w_ih, dx_beta, dx.reshape(T * B, D))
    gemm(True, False, 1.0, a_ih, x.reshape(T * B, D), 0.0, dw_ih)
    h = y.reshape(T * B, W)[:, col:col + H]
    n = (T - 1) * B
    first = T - 1 if reverse else 0
    gemm(True, False, 1.0, da_hh[first], h0, 0.0, dw_hh)
    if n > 0:
        if reverse:
            gemm(True, False, 1.0, a_hh[:n], h[B:], 1.0, dw_hh)
        else:
            gemm(True, False, 1.0, a_hh[B:], h[:n], 1.0, dw_hh)
    row_sum(a_ih, db_ih)
    if shared:
        db_hh[:] = db_ih
    else:
        row_sum(a_hh, db_hh)


@njit(**JIT)
def sum_squares(v):
    """Sum of v's squares (the caller takes the root)."""
    s = v[0] * 0
    for i in range(v.shape[0]):
        s += v[i] * v[i]
    return s
