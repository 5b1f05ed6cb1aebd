"""PyTorch as the test oracle, and the finite-difference and error helpers."""
import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


TORCH_CLASSES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}


def rel_err(a, b):
    """max |a - b| / max |b|: the error relative to the reference's scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.abs(b).max()
    return np.abs(a - b).max() / (scale if scale > 0 else 1.0)


def torch_twin(layer):
    """A torch module with the layer's configuration and its weights copied in."""
    kwargs = dict(num_layers=layer.num_layers, bidirectional=layer.bidirectional,
                  dropout=layer.dropout)
    if layer.cell == "rnn":
        kwargs["nonlinearity"] = layer.nonlinearity
    module = TORCH_CLASSES[layer.cell](layer.input_size, layer.hidden_size, **kwargs)
    module = module.to(TORCH_DTYPES[layer.dtype.type])
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(layer.params[name]))
    return module


def random_problem(layer, T, B, seed=0):
    """x, state0, dy and dstate, drawn for the layer's shapes and dtype."""
    rng = np.random.default_rng(seed)
    dt = layer.dtype
    S, H = layer.num_layers * layer.dirs, layer.hidden_size

    def draw(*shape):
        return rng.standard_normal(shape).astype(dt)

    x = draw(T, B, layer.input_size)
    dy = draw(T, B, layer.dirs * H)
    if layer.cell == "lstm":
        return x, (draw(S, B, H), draw(S, B, H)), dy, (draw(S, B, H), draw(S, B, H))
    return x, draw(S, B, H), dy, draw(S, B, H)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def torch_run(module, x, state0, dy, dstate, cell, lengths=None):
    """y, state, dx, dstate0 and parameter grads from torch, for L = <y,dy> + <state,dstate>.

    With lengths, x goes through pack_padded_sequence(enforce_sorted=False) and y
    comes back through pad_packed_sequence(total_length=T).
    """
    xt = torch.from_numpy(x).requires_grad_()
    st = [torch.from_numpy(s).requires_grad_() for s in as_tuple(state0)]
    inp = xt if lengths is None else pack_padded_sequence(
        xt, torch.as_tensor(lengths), enforce_sorted=False)
    y, state = module(inp, tuple(st) if cell == "lstm" else st[0])
    if lengths is not None:
        y = pad_packed_sequence(y, total_length=x.shape[0])[0]
    total = (y * torch.from_numpy(dy)).sum()
    for s, ds in zip(as_tuple(state), as_tuple(dstate)):
        total = total + (s * torch.from_numpy(ds)).sum()
    total.backward()
    grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    return (y.detach().numpy(), [s.detach().numpy() for s in as_tuple(state)],
            xt.grad.numpy(), [s.grad.numpy() for s in st], grads)


def loss(layer, x, state0, dy, dstate, lengths=None):
    """L = <y, dy> + <state, dstate>: its gradient is what backward(dy, dstate) gives."""
    y, state = layer.forward(x, state0, lengths=lengths)
    total = float(np.sum(y.astype(np.float64) * dy))
    for s, ds in zip(as_tuple(state), as_tuple(dstate)):
        total += float(np.sum(s.astype(np.float64) * ds))
    return total


def numerical_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of a, in place."""
    g = np.empty(a.shape)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g
