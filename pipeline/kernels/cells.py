"""The cells the kernels run, and how a driver reaches a cell's row functions.

Each (cell, dtype) compiles only its own rows, and its compiled code must load
from Numba's disk cache in the next process. The cell is therefore a Numba
type: a ``Cell`` object passed to the driver is typed ``CellType(kind)``, and
``forward_row`` / ``backward_row`` resolve to that kind's functions when the
driver compiles. Measured alternatives: ``numba.literally`` on a cell code
caches, but re-types the driver on every call from Python (7 ms a call); a
row function passed as an argument is typed by its address and never hits
the cache.
"""
from numba import types
from numba.extending import NativeValue, models, overload, register_model, typeof_impl, unbox

from . import gru, lstm, rnn

# cuDNN's four modes: the row functions of each.
ROWS = {"rnn_tanh": (rnn.forward_tanh, rnn.backward_tanh),
        "rnn_relu": (rnn.forward_relu, rnn.backward_relu),
        "lstm": (lstm.forward_row, lstm.backward_row),
        "gru": (gru.forward_row, gru.backward_row)}


# ----- the cell, chosen at compile time ---------------------------------------
class Cell:
    """A cell the kernels run: Cell("lstm"), Cell("gru"), Cell("rnn_tanh"), Cell("rnn_relu")."""

    def __init__(self, kind):
        if kind not in ROWS:
            raise ValueError(f"cell must be one of {', '.join(ROWS)}, got {kind!r}")
        self.kind = kind


class CellType(types.Dummy):
    """Numba's type of a Cell: one type per kind, so code is compiled per kind."""

    def __init__(self, kind):
        self.kind = kind
        super().__init__(name=f"Cell({kind})")


@typeof_impl.register(Cell)
def _typeof_cell(value, context):
    return CellType(value.kind)


@register_model(CellType)
class _CellModel(models.OpaqueModel):
    pass


@unbox(CellType)
def _unbox_cell(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


def forward_row(cell, a, hw, b_ih, b_hh, h_prev, c_prev, h, c):
    """The cell's forward_row (see the cell modules)."""


def backward_row(cell, a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh):
    """The cell's backward_row (see the cell modules); returns |dL/dh_t|^2 of the row."""


@overload(forward_row)
def _forward_row(cell, a, hw, b_ih, b_hh, h_prev, c_prev, h, c):
    if not isinstance(cell, CellType):
        return None
    cell_row = ROWS[cell.kind][0]

    def impl(cell, a, hw, b_ih, b_hh, h_prev, c_prev, h, c):
        cell_row(a, hw, b_ih, b_hh, h_prev, c_prev, h, c)

    return impl


@overload(backward_row)
def _backward_row(cell, a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh):
    if not isinstance(cell, CellType):
        return None
    cell_row = ROWS[cell.kind][1]

    def impl(cell, a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh):
        return cell_row(a, h_prev, c_prev, h, c, dh_out, dh, dc, da_ih, da_hh)

    return impl
