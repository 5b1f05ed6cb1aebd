"""What a recurrent layer can be: cells, nonlinearities, initialisations, dtypes.

Plain names and rules with no numba behind them, so a config can be checked
against them without compiling or building anything.
"""
import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # gate blocks per cell: G = GATES[cell] * H rows
NONLINEARITIES = ("tanh", "relu")
# Initialisations by name; join several with "+", e.g. "orthogonal+forget_bias".
INITS = {
    "uniform": "PyTorch's default, every parameter from U(-1/sqrt(H), 1/sqrt(H))",
    "orthogonal": "each gate's block of the recurrent weights orthogonal",
    "forget_bias": "LSTM forget-gate bias 1 (b_ih 1, b_hh 0 in the f rows)",
    "irnn": "identity recurrent weights and zero biases (Le et al. 2015)",
}
DTYPES = ("float32", "float64")


def parse_init(init, cell):
    """The names in `init` ("a+b"), checked against the cell; ValueError names `init`."""
    names = [n.strip() for n in str(init).split("+")]
    for name in names:
        if name not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)} (several joined with"
                             f" '+'), got {init!r}")
    if "forget_bias" in names and cell != "lstm":
        raise ValueError(f"init 'forget_bias' applies to cell lstm, not {cell!r}")
    if "irnn" in names and cell != "rnn":
        raise ValueError(f"init 'irnn' applies to cell rnn, not {cell!r}")
    if "irnn" in names and "orthogonal" in names:
        raise ValueError("init 'irnn' and 'orthogonal' both set the recurrent weights;"
                         " choose one")
    return names


def as_dtype(dtype):
    """np.float32 or np.float64 for a name or dtype; ValueError names `dtype` otherwise."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt
