"""The benchmark's JAX peer: the same recurrent stack as ``lax.scan`` loops, under ``jax.jit``.

What a JAX user would write for speed: the input projection of every step is
one matmul before the scan (hoisted, as cuDNN and our kernels do), the scan
carries only h (and c), and ``jax.grad`` of sum(y) gives the backward pass.
Parameters are the dict of PyTorch-named arrays our layer keeps. Zero
initial state; gates in PyTorch's orders (LSTM i, f, g, o; GRU r, z, n,
reset-after), as ``reference`` and the kernels.

JAX is optional (``pip install -e '.[bench]'``); ``available()`` says whether
it imports. float64 needs JAX's x64 mode, switched on by ``runner``.
"""
import importlib.util

import numpy as np


def available():
    return importlib.util.find_spec("jax") is not None


def _cell_step(cell, relu):
    """step(carry, (xw_t, w_hh, b_hh)) -> carry, h_t for one cell (jax.numpy)."""
    import jax
    import jax.numpy as jnp

    def rnn(carry, xw, w_hh, b_hh):
        a = xw + carry[0] @ w_hh.T + b_hh
        h = jnp.maximum(a, 0) if relu else jnp.tanh(a)
        return (h,), h

    def lstm(carry, xw, w_hh, b_hh):
        h, c = carry
        i, f, g, o = jnp.split(xw + h @ w_hh.T + b_hh, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    def gru(carry, xw, w_hh, b_hh):
        h = carry[0]
        xr, xz, xn = jnp.split(xw, 3, axis=-1)
        hr, hz, hn = jnp.split(h @ w_hh.T + b_hh, 3, axis=-1)
        r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        return (h,), h

    return {"rnn": rnn, "lstm": lstm, "gru": gru}[cell]


def _names(layer, d):
    sfx = f"_l{layer}" + ("_reverse" if d else "")
    return [k + sfx for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def make_forward(cell, num_layers, bidirectional, relu=False):
    """forward(params, x (T, B, D)) -> y (T, B, dirs*H), traceable by jax.jit."""
    import jax
    import jax.numpy as jnp
    step = _cell_step(cell, relu)
    dirs = 2 if bidirectional else 1

    def forward(params, x):
        inp = x
        for layer in range(num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh = (params[n] for n in _names(layer, d))
                B, H = inp.shape[1], w_hh.shape[1]
                xw = inp @ w_ih.T + b_ih  # (T, B, G): every step's input projection at once
                zeros = jnp.zeros((B, H), x.dtype)
                carry = (zeros, zeros) if cell == "lstm" else (zeros,)
                _, ys = jax.lax.scan(lambda c, a: step(c, a, w_hh, b_hh), carry, xw,
                                     reverse=d == 1)
                outs.append(ys)
            inp = jnp.concatenate(outs, axis=-1) if dirs == 2 else outs[0]
        return inp

    return forward


def runner(params, cell, x, num_layers, bidirectional, relu=False):
    """A closure doing forward + backward (loss = sum of y) and blocking on the result.

    The closure returns (loss, grads of params, grad of x) as NumPy arrays when
    called with keep=True, and nothing otherwise.
    """
    import jax
    if x.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    forward = make_forward(cell, num_layers, bidirectional, relu)

    def loss(p, x):
        return forward(p, x).sum()

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    p = {k: jax.device_put(v) for k, v in params.items()}
    xj = jax.device_put(x)

    def run(keep=False):
        value, (dp, dx) = step(p, xj)
        jax.block_until_ready((value, dp, dx))
        if keep:
            return (np.asarray(value), {k: np.asarray(v) for k, v in dp.items()},
                    np.asarray(dx))

    return run
