"""A plain NumPy recurrent stack, one step at a time (CS231n's rnn_layers style).

The benchmark's second peer, and a readable statement of the maths: each step
does its own input and recurrent GEMMs, and backward accumulates the weight
gradients step by step. Parameters are a dict named as PyTorch names them.
"""
import numpy as np


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def step_forward(cell, x, h, c, w_ih, w_hh, b_ih, b_hh, relu=False):
    """One step. x (B, D), h and c (B, H) -> h', c' (c is None but for lstm), cache."""
    if cell == "rnn":
        a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        h_new = np.maximum(a, 0) if relu else np.tanh(a)
        return h_new, None, (x, h, h_new)
    if cell == "lstm":
        a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(a, 4, axis=1)
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        return o * tc, c_new, (x, h, c, i, f, g, o, tc)
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh.T + b_hh
    H = h.shape[1]
    r = _sigmoid(gi[:, :H] + gh[:, :H])
    z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h, None, (x, h, r, z, n, gh[:, 2 * H:])


def step_backward(cell, dh, dc, cache, w_ih, w_hh, grads, relu=False):
    """Backward of one step: dx, dh_prev, dc_prev; adds into grads [dw_ih, dw_hh, db_ih, db_hh]."""
    dw_ih, dw_hh, db_ih, db_hh = grads
    if cell == "rnn":
        x, h, h_new = cache
        da = dh * (h_new > 0) if relu else dh * (1 - h_new ** 2)
        da_ih = da_hh = da
        dc_prev, dh_prev = None, 0
    elif cell == "lstm":
        x, h, c, i, f, g, o, tc = cache
        dc = dc + dh * o * (1 - tc ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f),
                             dc * i * (1 - g ** 2), dh * tc * o * (1 - o)], axis=1)
        da_ih = da_hh = da
        dc_prev, dh_prev = dc * f, 0
    else:
        x, h, r, z, n, hn = cache
        dn = dh * (1 - z) * (1 - n ** 2)
        dz = dh * (h - n) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        da_ih = np.concatenate([dr, dz, dn], axis=1)
        da_hh = np.concatenate([dr, dz, dn * r], axis=1)
        dc_prev, dh_prev = None, dh * z
    dw_ih += da_ih.T @ x
    dw_hh += da_hh.T @ h
    db_ih += da_ih.sum(axis=0)
    db_hh += da_hh.sum(axis=0)
    return da_ih @ w_ih, dh_prev + da_hh @ w_hh, dc_prev


def _names(layer, d):
    sfx = f"_l{layer}" + ("_reverse" if d else "")
    return [k + sfx for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def forward(params, cell, x, num_layers, bidirectional, relu=False):
    """y (T, B, dirs*H) from x (T, B, D), zero initial state; returns y and the tape."""
    T, B, _ = x.shape
    dirs = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    tape, inp = [], x
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            w = [params[n] for n in _names(layer, d)]
            h = np.zeros((B, H), x.dtype)
            c = np.zeros((B, H), x.dtype) if cell == "lstm" else None
            hs, caches = [None] * T, [None] * T
            for t in (reversed(range(T)) if d else range(T)):
                h, c, caches[t] = step_forward(cell, inp[t], h, c, *w, relu=relu)
                hs[t] = h
            outs.append(np.stack(hs))
            tape.append(caches)
        inp = np.concatenate(outs, axis=2) if dirs == 2 else outs[0]
    return inp, tape


def backward(params, cell, dy, tape, num_layers, bidirectional, relu=False):
    """dx and grads (keyed like params) for the loss whose gradient at y is dy."""
    T, B, _ = dy.shape
    dirs = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    for layer in reversed(range(num_layers)):
        dx = None
        for d in range(dirs):
            names = _names(layer, d)
            w_ih, w_hh = params[names[0]], params[names[1]]
            g = [grads[n] for n in names]
            caches = tape[layer * dirs + d]
            dh = np.zeros((B, H), dy.dtype)
            dc = np.zeros((B, H), dy.dtype) if cell == "lstm" else None
            dxs = [None] * T
            for t in (range(T) if d else reversed(range(T))):
                dxs[t], dh, dc = step_backward(cell, dh + dy[t, :, d * H:(d + 1) * H], dc,
                                               caches[t], w_ih, w_hh, g, relu=relu)
            dxs = np.stack(dxs)
            dx = dxs if dx is None else dx + dxs
        dy = dx
    return dy, grads
