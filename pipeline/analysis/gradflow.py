"""The gradient-flow study: ‖∂L/∂h_t‖ against the distance T - t (Bengio et al. 1994;
Pascanu et al. 2013).

A batch of the adding task of length T goes forward; the loss is the MSE of a
linear readout of the last hidden state only, so every gradient reaching
step t has travelled T - 1 - t steps back (the distance: 0 at the last step).
Through the tanh RNN each step multiplies it by W_hh^T diag(1 - h^2), so with
the spectral radius rho of W_hh below 1 it vanishes geometrically; the relu
RNN at rho > 1 lets it grow; the LSTM's cell state carries it through a
product of forget gates instead.

    rows = study(probes([...]), length=200, batch=32, hidden=64, seeds=[0, 1, 2])
    rates = decay_rates(rows)

Tables are pandas DataFrames, one row per (configuration, seed, distance).
"""
import dataclasses
import math

import numpy as np
import pandas as pd

from ..data import make as make_data
from ..nn.recurrent import Recurrent
from ..nn.spec import GATES, NONLINEARITIES, as_dtype
from ..training.config import ConfigError, check_int, check_number
from ..training.scoring import inputs, loss_fn

NO_NONLINEARITY = "-"    # the nonlinearity column of an LSTM or GRU
RATIO_AT = 50            # the summary's norm ratio: distance RATIO_AT against distance 0
COLUMNS = ("config", "cell", "nonlinearity", "init", "rho", "layer", "seed", "distance",
           "grad_norm", "relative")


@dataclasses.dataclass
class Settings:
    """The study's settings (conf/gradients/*.yaml); checks itself, naming the key."""
    length: int = 200
    batch_size: int = 32
    hidden_size: int = 64
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2])
    cells: list[str] = dataclasses.field(default_factory=lambda: list(GATES))
    nonlinearities: list[str] = dataclasses.field(default_factory=lambda: list(NONLINEARITIES))
    inits: list[str] = dataclasses.field(default_factory=lambda: ["uniform"])
    rhos: list[float] = dataclasses.field(default_factory=lambda: [0.5, 0.9, 1.0, 1.1, 1.5])
    dtype: str = "float64"

    def __post_init__(self):
        check_int("length", self.length, 2)
        check_int("batch_size", self.batch_size)
        check_int("hidden_size", self.hidden_size)
        for i, seed in enumerate(self.seeds):
            check_int(f"seeds[{i}]", seed, 0)
        for i, rho in enumerate(self.rhos):
            check_number(f"rhos[{i}]", rho, strict=True)
        for key, allowed in (("cells", GATES), ("nonlinearities", NONLINEARITIES),
                             ("inits", ("uniform", "forget_bias"))):
            for value in getattr(self, key):
                if value not in allowed:
                    raise ConfigError(f"{key} must hold values of {', '.join(allowed)},"
                                      f" got {value!r}")
        if not self.seeds or not self.cells:
            raise ConfigError("seeds and cells must not be empty")
        try:
            as_dtype(self.dtype)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class Probe:
    """One configuration at initialisation. rho: the spectral radius an orthogonal W_hh is
    scaled to (init "orthogonal", rnn); NaN leaves the init's own weights."""
    cell: str
    nonlinearity: str = NO_NONLINEARITY
    init: str = "uniform"
    rho: float = math.nan

    @property
    def label(self):
        name = self.cell if self.cell != "rnn" else f"rnn {self.nonlinearity}"
        if math.isfinite(self.rho):
            return f"{name} rho={self.rho:g}"
        return name if self.init == "uniform" else f"{name} {self.init}"


def probes(cells, nonlinearities, inits, rhos):
    """The study's configurations: every cell at each init that applies to it, and the
    RNN's nonlinearities also with an orthogonal W_hh scaled to each rho."""
    out = []
    for cell in cells:
        for nl in (nonlinearities if cell == "rnn" else [NO_NONLINEARITY]):
            out += [Probe(cell, nl, init) for init in inits
                    if init != "forget_bias" or cell == "lstm"]
            if cell == "rnn":
                out += [Probe(cell, nl, "orthogonal", float(rho)) for rho in rhos]
    return out


def adding_batch(length, batch, seed, dtype):
    """x (T, B, 2), y (B, 1): a batch of the adding task."""
    ds = make_data("adding", length=length, n_train=batch, n_val=1, n_test=1, seed=seed)
    return ds.splits["train"]["x"].astype(dtype), ds.splits["train"]["y"].astype(dtype)


@np.errstate(over="ignore", invalid="ignore")
def at_init(probe, length, batch, hidden, seed, dtype=np.float64):
    """‖∂L/∂h_t‖ by distance (T,) of a fresh one-layer network; NaN where not finite."""
    layer = Recurrent(probe.cell, 2, hidden, dtype=dtype, seed=seed, init=probe.init,
                      nonlinearity="tanh" if probe.nonlinearity == NO_NONLINEARITY
                      else probe.nonlinearity)
    if math.isfinite(probe.rho):
        w = layer.params["weight_hh_l0"]
        layer.load_params({"weight_hh_l0": probe.rho / max(abs(np.linalg.eigvals(w))) * w})
    rng = np.random.default_rng([seed, 7])
    bound = 1.0 / math.sqrt(hidden)                      # torch.nn.Linear's default
    w_out = rng.uniform(-bound, bound, (1, hidden)).astype(dtype)
    x, y = adding_batch(length, batch, seed, dtype)
    h, _ = layer.forward(x)                              # (T, B, H)
    pred = h[-1] @ w_out.T                               # (B, 1)
    dy = np.zeros_like(h)
    dy[-1] = (2.0 / pred.size) * (pred - y) @ w_out      # d mean((pred - y)^2) / d h_T
    if not np.isfinite(dy).all():
        return np.full(length, np.nan)
    layer.backward(dy)
    norms = layer.dh_norms[0, 0].astype(np.float64)
    return np.where(np.isfinite(norms), norms, np.nan)[::-1]


@np.errstate(over="ignore", invalid="ignore")
def trained(model, ds, batch, seed):
    """‖∂L/∂h_t‖ by distance (layers, T) of a trained Model on a batch of ds's test split,
    the task's loss taken on the last step only (forward direction of each layer)."""
    x_all, y_all = ds.splits["test"]["x"], ds.splits["test"]["y"]
    n = x_all.shape[1]
    idx = np.random.default_rng([seed, 7]).permutation(n)[:min(batch, n)]
    x = inputs(model, np.take(x_all, idx, axis=1))
    pred = model.forward(x)
    if ds.readout == "last":
        _, dpred, _ = loss_fn(ds, pred, np.take(y_all, idx, axis=0))
    else:                                                 # many-to-many: the last step's loss
        _, last, _ = loss_fn(ds, pred[-1:], np.take(y_all, idx, axis=1)[-1:])
        dpred = np.zeros_like(pred)
        dpred[-1:] = last
    model.backward(dpred.astype(pred.dtype))
    norms = model.rnn.dh_norms[:, 0].astype(np.float64)  # (layers, T)
    return np.where(np.isfinite(norms), norms, np.nan)[:, ::-1]


def rows(norms, config, cell, nonlinearity, init, rho, layer, seed):
    """A long table of one curve (T,) by distance, with the norm relative to distance 0."""
    norms = np.asarray(norms, float)
    return pd.DataFrame({"config": config, "cell": cell, "nonlinearity": nonlinearity,
                         "init": init, "rho": rho, "layer": layer, "seed": seed,
                         "distance": np.arange(norms.size), "grad_norm": norms,
                         "relative": norms / norms[0]})


def study(configs, length, batch, hidden, seeds, dtype=np.float64):
    """Every configuration at initialisation over every seed, as one long table."""
    parts = [rows(at_init(p, length, batch, hidden, seed, dtype), p.label, p.cell,
                  p.nonlinearity, p.init, p.rho, 0, seed)
             for p in configs for seed in seeds]
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]


def study_trained(model, ds, batch, seeds, label, cell, nonlinearity, init):
    """A trained model over several test batches (one per seed), every layer."""
    parts = []
    for seed in seeds:
        curves = trained(model, ds, batch, seed)
        for layer, norms in enumerate(curves):
            name = label if len(curves) == 1 else f"{label} layer {layer}"
            parts.append(rows(norms, name, cell, nonlinearity, init, math.nan, layer, seed))
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]


def fit_slope(distance, norms):
    """Least-squares slope of ln ‖∂L/∂h‖ against distance over the finite, positive norms."""
    d, v = np.asarray(distance, float), np.asarray(norms, float)
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(d[ok], np.log(v[ok]), 1)[0])


def decay_rates(table, ratio_at=RATIO_AT):
    """One row per configuration: the fitted slope of ln norm per step (mean and std over
    seeds), the factor per step exp(slope), and the geometric-mean ratio of the norm at
    distance `ratio_at` to distance 0."""
    out = []
    keys = ["config", "cell", "nonlinearity", "init", "rho", "layer"]
    for key, group in table.groupby(keys, dropna=False, sort=False):
        slopes, ratios = [], []
        for _, curve in group.groupby("seed"):
            slopes.append(fit_slope(curve["distance"], curve["grad_norm"]))
            at = curve.loc[curve["distance"] == ratio_at, "relative"]
            ratios.append(float(at.iloc[0]) if len(at) else math.nan)
        s, r = np.array(slopes), np.array(ratios)
        with np.errstate(divide="ignore", invalid="ignore"):
            geo = float(np.exp(np.nanmean(np.log(r)))) if np.isfinite(r).any() else math.nan
        out.append(dict(zip(keys, key), seeds=len(slopes), slope_per_step=np.nanmean(s),
                        slope_std=np.nanstd(s, ddof=1) if len(s) > 1 else math.nan,
                        factor_per_step=math.exp(np.nanmean(s)) if np.isfinite(s).any()
                        else math.nan, **{f"ratio_at_{ratio_at}": geo}))
    return pd.DataFrame(out)


def concat(*tables):
    return pd.concat(tables, ignore_index=True)[list(COLUMNS)]
