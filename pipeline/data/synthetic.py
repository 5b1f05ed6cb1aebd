"""Synthetic tasks: noisy sine forecasting, the adding problem, the copy problem.

    sine    noisy y = sin(pi x/3) + cos(pi x/3) + sin(pi x/1.5); a window predicts the next value
    adding  the adding problem (Hochreiter & Schmidhuber 1997): sum of two marked values
    copy    the copy/memory task of Arjovsky et al. 2016
"""
import math

import numpy as np

from .dataset import SPLITS, Dataset, TaskError, check_int, mse, split_bounds, windows


def sine(length=20, n_points=3000, step=0.1, noise=0.05, seed=0):
    """Noisy sum of sines sampled every `step`; `length` past values predict the next.

    Baselines: persistence (the window's last value) and the training mean."""
    length, n_points = check_int("length", length), check_int("n_points", n_points, 10)
    if not noise >= 0:
        raise TaskError(f"task.noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    x = np.arange(n_points) * step
    clean = np.sin(np.pi * x / 3) + np.cos(np.pi * x / 3) + np.sin(np.pi * x / 1.5)
    noisy = clean + rng.uniform(-noise, noise, n_points)
    splits = {}
    for split, (a, b) in split_bounds(n_points).items():
        xs, ys = windows(noisy, length, a, b)
        splits[split] = {"x": xs, "y": ys, "clean": windows(clean, length, a, b)[1]}
    test = splits["test"]
    return Dataset("sine", "regression", "last", 1, 1, None, splits,
                   baselines={"baseline_persistence_mse": mse(test["x"][-1], test["y"]),
                              "baseline_train_mean_mse": mse(splits["train"]["y"].mean(),
                                                             test["y"])},
                   meta=dict(length=length, n_points=n_points, step=step, noise=noise,
                             seed=seed, noise_variance=noise ** 2 / 3))


def adding(length=100, n_train=10000, n_val=1000, n_test=1000, seed=0):
    """Values U[0,1] and a marker channel with one 1 in each half; target: the marked sum.

    Baseline: always predicting 1, the expected sum (MSE about 1/6)."""
    length = check_int("length", length, 2)
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        n = check_int(f"n_{split}", n)
        values = rng.uniform(0, 1, (length, n))
        half = length // 2
        first = rng.integers(0, half, n)
        second = rng.integers(half, length, n)
        marks = np.zeros((length, n))
        marks[first, np.arange(n)] = 1
        marks[second, np.arange(n)] = 1
        x = np.stack([values, marks], axis=2)
        y = (values[first, np.arange(n)] + values[second, np.arange(n)])[:, None]
        splits[split] = {"x": x, "y": y}
    return Dataset("adding", "regression", "last", 2, 1, None, splits,
                   baselines={"baseline_predict_one_mse": mse(1.0, splits["test"]["y"])},
                   meta=dict(length=length, n_train=n_train, n_val=n_val, n_test=n_test,
                             seed=seed))


def copy(length=100, n_symbols=8, n_copy=10, n_train=10000, n_val=1000, n_test=1000, seed=0):
    """Arjovsky et al. 2016: n_copy symbols, `length` steps of waiting, then recall them.

    Tokens: 0 blank, 1..n_symbols symbols, n_symbols+1 the delimiter, shown at
    step n_copy + length - 1. Targets: blank until the last n_copy steps, which
    must repeat the symbols. Memoryless baseline: n_copy ln(n_symbols) / S nats
    per step, S = length + 2 n_copy.
    """
    length, n_symbols, n_copy = (check_int("length", length), check_int("n_symbols", n_symbols, 2),
                                 check_int("n_copy", n_copy))
    rng = np.random.default_rng(seed)
    S = length + 2 * n_copy
    splits = {}
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        n = check_int(f"n_{split}", n)
        symbols = rng.integers(1, n_symbols + 1, (n_copy, n))
        x = np.zeros((S, n), np.int64)
        x[:n_copy] = symbols
        x[n_copy + length - 1] = n_symbols + 1
        y = np.zeros((S, n), np.int64)
        y[-n_copy:] = symbols
        splits[split] = {"x": x, "y": y}
    return Dataset("copy", "classification", "all", 0, n_symbols + 1, n_symbols + 2, splits,
                   baselines={"baseline_memoryless_xent": n_copy * math.log(n_symbols) / S},
                   meta=dict(length=length, n_symbols=n_symbols, n_copy=n_copy,
                             n_train=n_train, n_val=n_val, n_test=n_test, seed=seed))
