"""Forecasting a real univariate series: a window of past values predicts the next.

    series(dataset="sunspots")                 statsmodels' yearly sunspots, offline
    series(dataset="co2")                      Mauna Loa CO2, monthly
    series(path="my.csv", column="load")       any numeric column of a CSV file (pandas)

The series is split in time, 70/15/15. A trending series is differenced (the
model predicts the change y_t - y_{t-1}): normalised with the training split's
statistics, raw levels would leave the test values outside the range the
network saw, and a saturating cell cannot extrapolate a trend. `difference`
"auto" differences when the KPSS test rejects the training split's level
stationarity (p < 0.05): co2 is differenced, sunspots (a cycle, no trend) is
not. Inputs and targets are normalised with the training split's mean and
deviation only.

Baselines on the test split: persistence (y_t = y_{t-1}) and the training mean,
in the model's units and in the original units (`..._original`).
"""
from pathlib import Path

import numpy as np

from .dataset import Dataset, TaskError, check_int, mse, split_bounds

SERIES = ("sunspots", "co2")
DIFFERENCE = ("auto", "always", "never")
STATIONARITY_P = 0.05  # KPSS p-value below which "auto" differences the series


def _load_shipped(name):
    if name == "sunspots":  # yearly mean sunspot numbers 1700-2008
        from statsmodels.datasets import sunspots
        return sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)
    from statsmodels.datasets import co2  # Mauna Loa, weekly -> monthly means, gaps filled
    weekly = co2.load_pandas().data["co2"]
    return weekly.resample("MS").mean().interpolate().to_numpy(float)


def load_csv(path, column):
    """One numeric column of a CSV file; TaskError names the key and what is wrong."""
    import pandas as pd

    if column is None:
        raise TaskError(f"task.column is needed with task.path {path}: the CSV column to forecast")
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"task.path {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise TaskError(f"task.path {path} is not a readable CSV file"
                        f" ({str(exc).splitlines()[0]})") from None
    if column not in table.columns:
        raise TaskError(f"task.column {column!r} is not a column of {path}: expected one of"
                        f" {', '.join(map(str, table.columns))}")
    values = pd.to_numeric(table[column], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if bad.size:
        raise TaskError(f"task.column {column!r} of {path} has {bad.size} missing or"
                        f" non-numeric values (first at data row {bad[0] + 1}:"
                        f" {table[column].iloc[bad[0]]!r})")
    return values.to_numpy(float)


def needs_differencing(train):
    """True if the KPSS test rejects the training split's level stationarity."""
    import warnings

    from statsmodels.tsa.stattools import kpss

    with warnings.catch_warnings():  # "p-value is outside the table": 0.01 or 0.1 is exact enough
        warnings.simplefilter("ignore")
        return bool(kpss(train, regression="c", nlags="auto")[1] < STATIONARITY_P)


def series(dataset="sunspots", path=None, column=None, length=20, difference="auto"):
    """A real series; `length` past values predict the next (see the module docstring).

    path: a CSV file (then `column` names the series and `dataset` is ignored).
    difference: "auto", "always" or "never".
    """
    length = check_int("length", length)
    if difference not in DIFFERENCE:
        raise TaskError(f"task.difference must be one of {', '.join(DIFFERENCE)},"
                        f" got {difference!r}")
    if path is not None:
        raw, source = load_csv(path, column), f"{Path(path).name}:{column}"
    elif dataset in SERIES:
        raw, source = _load_shipped(dataset), dataset
    else:
        raise TaskError(f"unknown task.dataset {dataset!r}: expected one of {', '.join(SERIES)}"
                        " (or task.path and task.column for a CSV file)")
    bounds = split_bounds(raw.size)
    train_raw = raw[slice(*bounds["train"])]
    if train_raw.size < length + 2:
        raise TaskError(f"task.length {length} is too long: the training split has only"
                        f" {train_raw.size} points")
    differenced = difference == "always" or (difference == "auto" and
                                             needs_differencing(train_raw))
    # target[j]: what the model predicts for step j; level[j]: what it is added to
    target = np.diff(raw, prepend=np.nan) if differenced else raw.copy()
    level = np.concatenate([[np.nan], raw[:-1]]) if differenced else np.zeros_like(raw)
    first = 1 if differenced else 0
    usable = target[max(first, bounds["train"][0]):bounds["train"][1]]
    mean, std = float(usable.mean()), float(usable.std()) or 1.0
    scaled = (target - mean) / std
    splits = {}
    for split, (a, b) in bounds.items():
        j = np.arange(max(a, first) + length, b)          # the steps predicted in this split
        if j.size == 0:
            raise TaskError(f"task.length {length} is too long: the {split} split has only"
                            f" {b - a} points")
        x = scaled[j[None, :] - length + np.arange(length)[:, None]]      # (T, N)
        splits[split] = {"x": x[:, :, None], "y": scaled[j][:, None],
                         "level": level[j][:, None], "raw": raw[j][:, None],
                         "previous": raw[j - 1][:, None]}
    test = splits["test"]
    persistence = (test["previous"] - test["level"] - mean) / std
    train_mean = (train_raw.mean() - test["level"] - mean) / std
    baselines = {
        "baseline_persistence_mse": mse(persistence, test["y"]),
        "baseline_train_mean_mse": mse(train_mean, test["y"]),
        "baseline_persistence_mse_original": mse(test["previous"], test["raw"]),
        "baseline_train_mean_mse_original": mse(train_raw.mean(), test["raw"]),
    }
    for split in splits.values():
        del split["raw"], split["previous"]
    return Dataset("series", "regression", "last", 1, 1, None, splits, baselines=baselines,
                   meta=dict(source=source, length=length, differenced=differenced,
                             scale=[mean, std]))
