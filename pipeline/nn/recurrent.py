"""The recurrent layer: PyTorch's nn.RNN / nn.LSTM / nn.GRU on Numba kernels.

Parameter names, shapes, gate order, state layout and dropout placement are
PyTorch's, so weights port both ways with ``params`` and ``load_params``.
Arrays are time-major: x (T, B, D), y (T, B, dirs*H).
"""
import numba
import numpy as np

from ..kernels.gru import gru_backward, gru_forward
from ..kernels.lstm import lstm_backward, lstm_forward
from ..kernels.rnn import rnn_backward, rnn_forward
from .spec import GATES, NONLINEARITIES, as_dtype, parse_init

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# A step is worth spreading over threads only above this many gate values
# (batch x gates x hidden); below it the fork/join costs more than it saves.
PARALLEL_MIN_GATE_VALUES = 1 << 14


def _check_size(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def load_into(params, new):
    """Copy new[name] into params[name] in place (cast), as torch's load_state_dict.

    Every key and shape is checked before anything is copied.
    """
    staged = {}
    for name, value in new.items():
        if name not in params:
            raise ValueError(f"unknown parameter {name!r}: expected one of {', '.join(params)}")
        value = np.asarray(value)
        if value.shape != params[name].shape:
            raise ValueError(f"parameter {name!r} has shape {value.shape},"
                             f" expected {params[name].shape}")
        staged[name] = value
    for name, value in staged.items():
        params[name][...] = value


def _orthogonal(rng, n):
    """An n x n orthogonal matrix, uniformly distributed (QR with sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class Recurrent:
    """A stack of recurrent layers with PyTorch's semantics.

    cell: "rnn", "lstm" or "gru"; nonlinearity ("tanh", "relu") applies to rnn.
    dropout: inverted dropout on the outputs of every layer but the last,
    only when ``forward(training=True)``; seeded by ``seed``.
    init: a name from INITS, or several joined with "+".
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bidirectional=False,
                 nonlinearity="tanh", dropout=0.0, dtype=np.float64, seed=0,
                 init="uniform"):
        if cell not in GATES:
            raise ValueError(f"cell must be one of {', '.join(GATES)}, got {cell!r}")
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {', '.join(NONLINEARITIES)},"
                             f" got {nonlinearity!r}")
        self.cell = cell
        self.input_size = _check_size("input_size", input_size)
        self.hidden_size = _check_size("hidden_size", hidden_size)
        self.num_layers = _check_size("num_layers", num_layers)
        if not isinstance(bidirectional, (bool, np.bool_)):
            raise ValueError(f"bidirectional must be True or False, got {bidirectional!r}")
        self.bidirectional = bool(bidirectional)
        self.nonlinearity = nonlinearity
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.dtype = as_dtype(dtype)
        self.seed = seed
        self.init = init
        inits = parse_init(init, cell)
        self.dirs = 2 if self.bidirectional else 1
        self.gates = GATES[cell]
        self.params = self._init_params(np.random.default_rng(seed), inits)
        self._dropout_rng = np.random.default_rng([seed, 1])
        self.dropout_masks = []
        self.threads = None  # None: Numba's count when a step has work enough; an int forces it
        self._tape = None
        self._workspace = {}
        self._dh_norms = None

    # ----- parameters -------------------------------------------------------
    def _names(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        return tuple(f"{kind}{sfx}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _shapes(self, layer):
        G, H = self.gates * self.hidden_size, self.hidden_size
        D = self.input_size if layer == 0 else self.dirs * H
        return (G, D), (G, H), (G,), (G,)

    def _init_params(self, rng, inits):
        H = self.hidden_size
        bound = 1.0 / np.sqrt(H)
        params = {}
        for layer in range(self.num_layers):
            for d in range(self.dirs):
                for name, shape in zip(self._names(layer, d), self._shapes(layer)):
                    params[name] = rng.uniform(-bound, bound, shape).astype(self.dtype)
                w_ih, w_hh, b_ih, b_hh = (params[n] for n in self._names(layer, d))
                if "orthogonal" in inits:
                    for g in range(self.gates):
                        w_hh[g * H:(g + 1) * H] = _orthogonal(rng, H)
                if "forget_bias" in inits:
                    b_ih[H:2 * H] = 1.0
                    b_hh[H:2 * H] = 0.0
                if "irnn" in inits:
                    w_hh[:] = np.eye(H)
                    b_ih[:] = 0.0
                    b_hh[:] = 0.0
        return params

    def load_params(self, params):
        """Copy arrays in by name, in place and cast to the layer's dtype.

        A partial dict updates only its keys. Every key and shape is checked
        before anything is copied, so a bad dict changes nothing.
        """
        load_into(self.params, params)

    # ----- input checks -----------------------------------------------------
    def _check_array(self, name, a, shape):
        if not isinstance(a, np.ndarray):
            raise ValueError(f"{name} must be a numpy array of shape {shape}, got {type(a).__name__}")
        if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {a.shape}")
        if a.dtype != self.dtype:
            raise ValueError(f"{name} has dtype {a.dtype}, expected {self.dtype} (the layer's dtype)")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf")
        return np.ascontiguousarray(a)

    def _check_state(self, name, state, B):
        """The state as a tuple of (L*dirs, B, H) arrays, zeros for None parts."""
        shape = (self.num_layers * self.dirs, B, self.hidden_size)
        parts = ("h", "c") if self.cell == "lstm" else ("h",)
        if state is None:
            state = (None,) * len(parts)
        elif self.cell == "lstm":
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise ValueError(f"{name} must be a tuple (h, c) of arrays {shape} for lstm")
        else:
            state = (state,)
        return tuple(np.zeros(shape, self.dtype) if s is None
                     else self._check_array(f"{name}{'[' + str(i) + ']' if len(parts) > 1 else ''}",
                                            s, shape)
                     for i, s in enumerate(state))

    def _buffer(self, key, shape):
        """A reusable scratch array: fresh memory costs page faults on every batch."""
        a = self._workspace.get(key)
        if a is None or a.shape != shape:
            a = self._workspace[key] = np.empty(shape, self.dtype)
        return a

    def _threads(self, B):
        """Threads for a batch of B: Numba's count if a step has work enough for it."""
        if self.threads is not None:
            return self.threads
        n = numba.get_num_threads()
        return n if n > 1 and B * self.gates * self.hidden_size >= PARALLEL_MIN_GATE_VALUES else 1

    # ----- forward / backward -----------------------------------------------
    def forward(self, x, state0=None, training=False):
        """y (T, B, dirs*H) and the final state for x (T, B, input_size).

        state: h_n (L*dirs, B, H) for rnn and gru, (h_n, c_n) for lstm.
        """
        x = self._check_array("x", x, (None, None, self.input_size))
        T, B, _ = x.shape
        if T < 1 or B < 1:
            raise ValueError(f"x must have at least one step and one sequence, got {x.shape}")
        state0 = self._check_state("state0", state0, B)
        H, G, L, dirs = self.hidden_size, self.gates * self.hidden_size, self.num_layers, self.dirs
        nthreads = self._threads(B)
        inputs, outputs, caches, masks = [], [], [], []
        inp = x
        for layer in range(L):
            if layer > 0 and training and self.dropout > 0.0:
                keep = self._dropout_rng.random(inp.shape) >= self.dropout
                mask = keep.astype(self.dtype) / self.dtype.type(1.0 - self.dropout)
                masks.append(mask)
                dropped = self._buffer(("dropped", layer), inp.shape)
                np.multiply(inp, mask, out=dropped)
                inp = dropped
            last = layer == L - 1
            out = np.empty((T, B, dirs * H), self.dtype) if last else \
                self._buffer(("out", layer), (T, B, dirs * H))
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh = (self.params[n] for n in self._names(layer, d))
                s = layer * dirs + d
                gates = self._buffer(("gates", layer, d), (T, B, G))
                if self.cell == "lstm":
                    c = self._buffer(("c", layer, d), (T, B, H))
                    lstm_forward(inp, w_ih, w_hh, b_ih, b_hh, state0[0][s], state0[1][s],
                                 d == 1, nthreads, out, d * H, c, gates)
                    caches.append((c, gates))
                elif self.cell == "gru":
                    hn = self._buffer(("hn", layer, d), (T, B, H))
                    gru_forward(inp, w_ih, w_hh, b_ih, b_hh, state0[0][s], d == 1, nthreads,
                                out, d * H, hn, gates)
                    caches.append((hn, gates))
                else:
                    rnn_forward(inp, w_ih, w_hh, b_ih, b_hh, state0[0][s],
                                self.nonlinearity == "relu", d == 1, nthreads, out, d * H)
                    caches.append(())
            inputs.append(inp)
            outputs.append(out)
            inp = out
        self.dropout_masks = masks
        self._tape = dict(T=T, B=B, inputs=inputs, outputs=outputs, caches=caches,
                          state0=state0, masks=masks, nthreads=nthreads)
        h_n = np.empty((L * dirs, B, H), self.dtype)
        c_n = np.empty((L * dirs, B, H), self.dtype) if self.cell == "lstm" else None
        for layer in range(L):
            for d in range(dirs):
                s, t = layer * dirs + d, (0 if d else T - 1)
                h_n[s] = outputs[layer][t, :, d * H:(d + 1) * H]
                if c_n is not None:
                    c_n[s] = caches[s][0][t]
        return outputs[-1], ((h_n, c_n) if c_n is not None else h_n)

    def backward(self, dy, dstate=None):
        """Gradients of the most recent forward.

        dy (T, B, dirs*H): dL/dy; dstate: dL/d(final state), shaped like the
        state, None (or, for lstm, either part None) meaning zeros.
        Returns dx (T, B, input_size), dstate0 (shaped like the state) and
        grads (keyed like params). Afterwards ``dh_norms`` holds the norm of
        dL/dh_t per layer, direction and step.
        """
        tape = self._tape
        if tape is None:
            raise RuntimeError("backward() needs a forward() first")
        T, B = tape["T"], tape["B"]
        H, L, dirs = self.hidden_size, self.num_layers, self.dirs
        dy = self._check_array("dy", dy, (T, B, dirs * H))
        dstate = self._check_state("dstate", dstate, B)
        dh0 = dstate[0].copy()
        dc0 = dstate[1].copy() if self.cell == "lstm" else None
        grads = {name: np.empty_like(p) for name, p in self.params.items()}
        norms = np.empty((L, dirs, T), self.dtype)
        nthreads = tape["nthreads"]
        g = dy
        for layer in reversed(range(L)):
            inp, out = tape["inputs"][layer], tape["outputs"][layer]
            dinp = np.empty(inp.shape, self.dtype) if layer == 0 else \
                self._buffer(("dinput", layer), inp.shape)
            for d in range(dirs):
                s = layer * dirs + d
                names = self._names(layer, d)
                w_ih, w_hh = self.params[names[0]], self.params[names[1]]
                dw_ih, dw_hh, db_ih, db_hh = (grads[n] for n in names)
                h0 = tape["state0"][0][s]
                da = self._buffer("da", (T, B, self.gates * H))
                beta = 1.0 if d else 0.0
                if self.cell == "lstm":
                    c, gates = tape["caches"][s]
                    lstm_backward(g, dh0[s], dc0[s], inp, w_ih, w_hh, h0, tape["state0"][1][s],
                                  out, d * H, c, gates, d == 1, nthreads, da, dinp, beta,
                                  dw_ih, dw_hh, db_ih, db_hh, norms[layer, d])
                elif self.cell == "gru":
                    hn, gates = tape["caches"][s]
                    da_hh = self._buffer("da_hh", da.shape)
                    gru_backward(g, dh0[s], inp, w_ih, w_hh, h0, out, d * H, hn, gates,
                                 d == 1, nthreads, da, da_hh, dinp, beta,
                                 dw_ih, dw_hh, db_ih, db_hh, norms[layer, d])
                else:
                    rnn_backward(g, dh0[s], inp, w_ih, w_hh, h0, self.nonlinearity == "relu",
                                 out, d * H, d == 1, nthreads, da, dinp, beta,
                                 dw_ih, dw_hh, db_ih, db_hh, norms[layer, d])
            if layer > 0 and tape["masks"]:
                dinp *= tape["masks"][layer - 1]
            g = dinp
        self._dh_norms = norms
        return g, ((dh0, dc0) if self.cell == "lstm" else dh0), grads

    @property
    def dh_norms(self):
        """‖dL/dh_t‖ over the batch, (num_layers, dirs, T), from the last backward.

        dL/dh_t is the total gradient reaching step t's hidden state, from the
        output above and from step t+1: the curve that shows gradients
        vanishing or exploding through time.
        """
        if self._dh_norms is None:
            raise RuntimeError("dh_norms needs a backward() first")
        return self._dh_norms


def warm_up(cells=tuple(GATES), dtypes=DTYPES, nthreads=1):
    """Compile, or load from Numba's disk cache, every kernel these cells and dtypes use.

    Run it in one process before parallel jobs start: processes compiling the
    same cache entries at once can race.
    """
    for cell in cells:
        for dtype in dtypes:
            layer = Recurrent(cell, 2, 3, num_layers=2, bidirectional=True, dtype=dtype)
            x = np.zeros((2, 5, 2), layer.dtype)
            for n in sorted({1, nthreads}):
                layer.threads = n
                y, _ = layer.forward(x, training=True)
                layer.backward(np.ones_like(y))

