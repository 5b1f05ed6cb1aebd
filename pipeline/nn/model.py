"""The model: optional embedding, the recurrent stack, a linear readout.

    x (T, B) tokens --embedding--> (T, B, E) --Recurrent--> y (T, B, dirs*H), h_n
    readout "last": pred = h_n W' + b     (B, O)      (many-to-one)
    readout "all":  pred = y[t] W' + b    (T, B, O)   (many-to-many)

"last" reads the top layer's final state h_n, both directions concatenated:
the forward direction at each sequence's last valid step (t = T-1 without
lengths), the reverse direction at t = 0, where it ends. With lengths, "all"
predicts b at padded steps (y is 0 there), which a loss masked with
``losses.length_mask`` does not count.

Forward and backward are written by hand like the core. Parameters are one
dict: "embedding.weight", "rnn.<PyTorch's names>", "readout.weight",
"readout.bias"; the "rnn." arrays are the recurrent layer's own.
"""
import numpy as np

from .recurrent import Recurrent, load_into

READOUTS = ("last", "all")


class Model:
    def __init__(self, cell, input_size, hidden_size, output_size, num_layers=1,
                 bidirectional=False, nonlinearity="tanh", dropout=0.0, init="uniform",
                 dtype=np.float64, seed=0, vocab_size=None, readout="last"):
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}: expected one of {', '.join(READOUTS)}")
        if vocab_size is not None and (isinstance(vocab_size, bool) or int(vocab_size) < 1):
            raise ValueError(f"vocab_size must be an integer >= 1, got {vocab_size!r}")
        self.rnn = Recurrent(cell, input_size, hidden_size, num_layers=num_layers,
                             bidirectional=bidirectional, nonlinearity=nonlinearity,
                             dropout=dropout, dtype=dtype, seed=seed, init=init)
        self.dtype = self.rnn.dtype
        self.readout = readout
        self.vocab_size = vocab_size
        self.output_size = int(output_size)
        rng = np.random.default_rng([seed, 2])
        fan_in = self.rnn.dirs * hidden_size
        bound = 1.0 / np.sqrt(fan_in)  # torch.nn.Linear's default
        self.params = {}
        if vocab_size is not None:  # torch.nn.Embedding's default N(0, 1)
            self.params["embedding.weight"] = rng.standard_normal(
                (vocab_size, input_size)).astype(self.dtype)
        self.params.update({f"rnn.{k}": v for k, v in self.rnn.params.items()})
        self.params["readout.weight"] = rng.uniform(-bound, bound, (output_size, fan_in)).astype(self.dtype)
        self.params["readout.bias"] = rng.uniform(-bound, bound, output_size).astype(self.dtype)
        self._tape = None
        self.state = None  # the recurrent stack's final state after the last forward

    def _embed(self, x):
        if self.vocab_size is None:
            return x.astype(self.dtype, copy=False)
        if not np.issubdtype(x.dtype, np.integer) or x.ndim != 2:
            raise ValueError(f"tokens must be an integer array (T, B), got {x.dtype} {x.shape}")
        if x.size and (x.min() < 0 or x.max() >= self.vocab_size):
            raise ValueError(f"tokens must lie in [0, {self.vocab_size}),"
                             f" got [{x.min()}, {x.max()}]")
        return self.params["embedding.weight"][x]

    def forward(self, x, training=False, lengths=None, state0=None, readout=None):
        """Predictions for x: (T, B) tokens with an embedding, else (T, B, D) floats.

        lengths (B,): each sequence's valid steps in [1, T] (None: all T), as
        ``Recurrent.forward`` takes them; backward uses the last forward's.
        state0: the recurrent stack's initial state (None: zeros); the final one is
        kept in ``self.state``, so a stream can be read chunk by chunk (truncated
        BPTT: backward sends no gradient into state0) or sampled a step at a time.
        readout: "last" or "all" for this pass (None: the model's own), so a model
        that reads a window's last state can be trained on a stream at every step.
        """
        readout = self.readout if readout is None else readout
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}: expected one of {', '.join(READOUTS)}")
        emb = self._embed(x)
        y, state = self.rnn.forward(emb, state0=state0, training=training, lengths=lengths)
        self.state = state
        if readout == "last":
            h_n = state[0] if isinstance(state, tuple) else state
            out = np.concatenate(h_n[-self.rnn.dirs:], axis=1)  # (B, dirs*H)
        else:
            out = y
        pred = out @ self.params["readout.weight"].T + self.params["readout.bias"]
        self._tape = (x, y, out, readout)
        return pred

    def backward(self, dpred):
        """Gradients of every parameter, keyed like params, for dL/dpred."""
        x, y, out, readout = self._tape
        rnn = self.rnn
        W = self.params["readout.weight"]
        flat_d = dpred.reshape(-1, dpred.shape[-1])
        grads = {"readout.weight": flat_d.T @ out.reshape(-1, out.shape[-1]),
                 "readout.bias": flat_d.sum(axis=0)}
        dout = dpred @ W
        if not np.isfinite(dout).all():
            raise FloatingPointError("the gradient reaching the recurrent stack is not finite")
        if readout == "last":  # dL/dh_n of the top layer, nothing through y
            B, H, dirs = dout.shape[0], rnn.hidden_size, rnn.dirs
            dy = np.zeros_like(y)
            dh_n = np.zeros((rnn.num_layers * dirs, B, H), self.dtype)
            dh_n[-dirs:] = dout.reshape(B, dirs, H).transpose(1, 0, 2)
            dstate = (dh_n, None) if rnn.cell == "lstm" else dh_n
        else:
            dy, dstate = np.ascontiguousarray(dout), None
        dx, _, g = rnn.backward(dy, dstate)
        grads.update({f"rnn.{k}": v for k, v in g.items()})
        if self.vocab_size is not None:
            demb = np.zeros_like(self.params["embedding.weight"])
            np.add.at(demb, x.ravel(), dx.reshape(-1, dx.shape[-1]))
            grads["embedding.weight"] = demb
        return {k: grads[k] for k in self.params}

    def load_params(self, params):
        """Copy arrays in by name (in place, cast); unknown names or shapes raise."""
        load_into(self.params, params)
