"""The recurrent layer: PyTorch's nn.RNN / nn.LSTM / nn.GRU on Numba kernels.

Parameter names, shapes, gate order, state layout and dropout placement are
PyTorch's, so weights port both ways with ``params`` and ``load_params``.
Arrays are time-major: x (T, B, D), y (T, B, dirs*H). Sequences of different
lengths are PyTorch's packed sequences: the kernels work on the rows of the
valid steps only (``packing``), and the layer pads the results back.
"""
import numba
import numpy as np

from ..kernels.cells import Cell
from ..kernels.driver import backward, forward
from .packing import Packing
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
        self._kernel_cell = Cell(f"rnn_{nonlinearity}" if cell == "rnn" else cell)
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

    def _check_lengths(self, lengths, T, B):
        """lengths as a (B,) int64 array in [1, T], or None."""
        if lengths is None:
            return None
        a = np.asarray(lengths)
        if a.shape != (B,):
            raise ValueError(f"lengths must have shape ({B},) (one per sequence), got {a.shape}")
        if a.dtype.kind not in "iu":
            raise ValueError(f"lengths must be integers, got dtype {a.dtype}")
        if a.min() < 1 or a.max() > T:
            raise ValueError(f"lengths must lie in [1, {T}] (T = x.shape[0]),"
                             f" got [{a.min()}, {a.max()}]")
        return a.astype(np.int64)

    # ----- forward / backward -----------------------------------------------
    def forward(self, x, state0=None, training=False, lengths=None):
        """y (T, B, dirs*H) and the final state for x (T, B, input_size).

        state: h_n (L*dirs, B, H) for rnn and gru, (h_n, c_n) for lstm.
        lengths (B,): each sequence's valid steps, ints in [1, T] in any order
        (None: all T), with PyTorch's packed-sequence semantics
        (pack_padded_sequence(x, lengths, enforce_sorted=False), the layer,
        pad_packed_sequence(total_length=T)): y is 0 at t >= lengths[b], x
        there is never read; h_n is each sequence's state after its last valid
        step, for the reverse direction (which runs from lengths[b] - 1 down
        to 0) after t = 0; state0 starts each direction at its first valid step.
        """
        x = self._check_array("x", x, (None, None, self.input_size))
        T, B, _ = x.shape
        if T < 1 or B < 1:
            raise ValueError(f"x must have at least one step and one sequence, got {x.shape}")
        packing = Packing(T, B, self._check_lengths(lengths, T, B))
        state0 = self._check_state("state0", state0, B)
        h0 = packing.sort(state0[0])
        c0 = packing.sort(state0[1]) if self.cell == "lstm" else h0
        H, G, L, dirs = self.hidden_size, self.gates * self.hidden_size, self.num_layers, self.dirs
        N, steps = packing.N, packing.batch_sizes
        nthreads = self._threads(B)
        nthreads = nthreads if nthreads > 1 else None
        inputs, outputs, caches, masks = [], [], [], []
        inp = packing.pack(x)
        for layer in range(L):
            if layer > 0 and training and self.dropout > 0.0:
                shape = (T, B, inp.shape[1])
                keep = self._dropout_rng.random(shape) >= self.dropout
                mask = keep.astype(self.dtype) / self.dtype.type(1.0 - self.dropout)
                masks.append(mask)
                dropped = self._buffer(("dropped", layer), inp.shape)
                np.multiply(inp, packing.pack(mask), out=dropped)
                inp = dropped
            out = np.empty((N, dirs * H), self.dtype) if layer == L - 1 else \
                self._buffer(("out", layer), (N, dirs * H))
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh = (self.params[n] for n in self._names(layer, d))
                s = layer * dirs + d
                gates = self._buffer(("gates", layer, d), (N, G))
                c = self._buffer(("c", layer, d), (N, H))
                forward(self._kernel_cell, inp, w_ih, w_hh, b_ih, b_hh, h0[s], c0[s], steps,
                        d == 1, nthreads, out, d * H, gates, c)
                caches.append((gates, c))
            inputs.append(inp)
            outputs.append(out)
            inp = out
        self.dropout_masks = masks
        self._tape = dict(packing=packing, inputs=inputs, outputs=outputs, caches=caches,
                          h0=h0, c0=c0, masks=masks, nthreads=nthreads)
        h_n = np.empty((L * dirs, B, H), self.dtype)
        c_n = np.empty((L * dirs, B, H), self.dtype) if self.cell == "lstm" else None
        for layer in range(L):
            for d in range(dirs):
                s = layer * dirs + d
                rows = packing.first_rows() if d else packing.last_rows()
                h_n[s] = outputs[layer][rows, d * H:(d + 1) * H]
                if c_n is not None:
                    c_n[s] = caches[s][1][rows]
        h_n = packing.unsort(h_n)
        y = packing.unpack(outputs[-1])
        return y, ((h_n, packing.unsort(c_n)) if c_n is not None else h_n)

    def backward(self, dy, dstate=None):
        """Gradients of the most recent forward.

        dy (T, B, dirs*H): dL/dy (ignored at padded steps); dstate: dL/d(final
        state), shaped like the state, None (or, for lstm, either part None)
        meaning zeros. Returns dx (T, B, input_size), 0 at padded steps,
        dstate0 (shaped like the state) and grads (keyed like params).
        Afterwards ``dh_norms`` holds the norm of dL/dh_t per layer, direction
        and step, over the sequences still running at t.
        """
        tape = self._tape
        if tape is None:
            raise RuntimeError("backward() needs a forward() first")
        packing = tape["packing"]
        T, B, N, steps = packing.T, packing.B, packing.N, packing.batch_sizes
        H, L, dirs = self.hidden_size, self.num_layers, self.dirs
        dy = self._check_array("dy", dy, (T, B, dirs * H))
        dstate = self._check_state("dstate", dstate, B)
        dh0 = packing.sort(dstate[0])
        dc0 = packing.sort(dstate[1]) if self.cell == "lstm" else np.zeros_like(dh0)
        grads = {name: np.empty_like(p) for name, p in self.params.items()}
        norms = np.zeros((L, dirs, T), self.dtype)
        nthreads = tape["nthreads"]
        g = packing.pack(dy)
        for layer in reversed(range(L)):
            inp, out = tape["inputs"][layer], tape["outputs"][layer]
            dinp = np.empty(inp.shape, self.dtype) if layer == 0 else \
                self._buffer(("dinput", layer), inp.shape)
            for d in range(dirs):
                s = layer * dirs + d
                names = self._names(layer, d)
                w_ih, w_hh = self.params[names[0]], self.params[names[1]]
                dw_ih, dw_hh, db_ih, db_hh = (grads[n] for n in names)
                gates, c = tape["caches"][s]
                da = self._buffer("da", (N, self.gates * H))
                da_hh = self._buffer("da_hh", da.shape) if self.cell == "gru" else None
                backward(self._kernel_cell, inp, w_ih, w_hh, tape["h0"][s], tape["c0"][s],
                         steps, d == 1, nthreads, out, d * H, gates, c,
                         g, dh0[s], dc0[s], dinp, dw_ih, dw_hh, db_ih, db_hh,
                         1.0 if d else 0.0, da, da_hh, norms[layer, d, :packing.steps])
            if layer > 0 and tape["masks"]:
                dinp *= packing.pack(tape["masks"][layer - 1])
            g = dinp
        self._dh_norms = norms
        dh0 = packing.unsort(dh0)
        dstate0 = (dh0, packing.unsort(dc0)) if self.cell == "lstm" else dh0
        return packing.unpack(g), dstate0, grads

    @property
    def dh_norms(self):
        """‖dL/dh_t‖ over the batch, (num_layers, dirs, T), from the last backward.

        dL/dh_t is the total gradient reaching step t's hidden state, from the
        output above and from step t+1: the curve that shows gradients
        vanishing or exploding through time. With lengths, the norm at t is
        over the sequences still running at t; a padded step of a sequence
        adds nothing, and a step past every sequence's end reads 0.
        """
        if self._dh_norms is None:
            raise RuntimeError("dh_norms needs a backward() first")
        return self._dh_norms


def warm_up(cells=tuple(GATES), dtypes=DTYPES, nthreads=1):
    """Compile, or load from Numba's disk cache, every kernel these cells and dtypes use.

    rnn compiles once per nonlinearity, both are warmed. Run it in one process
    before parallel jobs start: processes compiling the same cache entries at
    once can race.
    """
    for cell in cells:
        for nonlinearity in (NONLINEARITIES if cell == "rnn" else NONLINEARITIES[:1]):
            for dtype in dtypes:
                layer = Recurrent(cell, 2, 3, num_layers=2, bidirectional=True,
                                  nonlinearity=nonlinearity, dtype=dtype)
                x = np.zeros((2, 5, 2), layer.dtype)
                for n in sorted({1, nthreads}):
                    layer.threads = n
                    y, _ = layer.forward(x, training=True)
                    layer.backward(np.ones_like(y))
