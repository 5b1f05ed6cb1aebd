"""Real univariate series: a window of past values predicts the next."""
import numpy as np

from .dataset import Dataset, TaskError, check_int, split_bounds, windows

SERIES = ("sunspots", "co2")


def _load_series(name):
    if name == "sunspots":  # yearly mean sunspot numbers 1700-2008
        from statsmodels.datasets import sunspots
        return sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)
    from statsmodels.datasets import co2  # Mauna Loa, weekly -> monthly means, gaps filled
    weekly = co2.load_pandas().data["co2"]
    return weekly.resample("MS").mean().interpolate().to_numpy(float)


def series(dataset="sunspots", length=20):
    """A real series from statsmodels; a window of past values predicts the next.

    Normalised with the mean and deviation of the training split only.
    Baseline: predicting the training mean (MSE in normalised units).
    """
    if dataset not in SERIES:
        raise TaskError(f"unknown task.dataset {dataset!r}: expected one of {', '.join(SERIES)}")
    length = check_int("length", length)
    raw = _load_series(dataset)
    bounds = split_bounds(raw.size)
    train = raw[slice(*bounds["train"])]
    mean, std = float(train.mean()), float(train.std())
    values = (raw - mean) / std
    splits = {}
    for split, (a, b) in bounds.items():
        xs, ys = windows(values, length, a, b)
        splits[split] = {"x": xs, "y": ys}
    return Dataset("series", "regression", "last", 1, 1, None, splits,
                   baseline=float(np.mean(splits["test"]["y"] ** 2)),
                   baseline_name="predicting the training mean",
                   meta=dict(dataset=dataset, length=length, mean=mean, std=std))
