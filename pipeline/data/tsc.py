"""Time-series classification on real labelled sequences of different lengths.

    tsc(dataset="JapaneseVowels")        a UEA/UCR archive set shipped inside sktime's wheel
    tsc(path="DIR/NAME")                 any pair DIR/NAME_TRAIN.ts, DIR/NAME_TEST.ts

Files are read with sktime's own `.ts` loader. Sequences keep their lengths:
x is zero-padded to the longest and "lengths" says where each one ends.
Validation is carved from the training file (stratified, seeded); each channel
is normalised with the mean and deviation of the training split's valid steps
only. Baselines: the majority class of training, on the test split (accuracy),
and the training class frequencies as a predictor (cross-entropy).
"""
import importlib.util
from pathlib import Path

import numpy as np

from .dataset import Dataset, TaskError

SPLIT_SEED = 5  # mixed with the task's seed for the train/validation split


def archive_dir():
    """The folder of sktime's shipped data sets, found without importing sktime."""
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise TaskError("task=tsc needs sktime: pip install sktime")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def shipped():
    """Names of the archive sets sktime ships with both a _TRAIN.ts and a _TEST.ts file."""
    root = archive_dir()
    return sorted(p.name for p in root.iterdir() if (p / f"{p.name}_TRAIN.ts").is_file()
                  and (p / f"{p.name}_TEST.ts").is_file())


def files(dataset=None, path=None):
    """(train file, test file, name) of a shipped set or of DIR/NAME."""
    if path is not None:
        base = Path(path)
        name, folder = base.name, base.parent
        key = "task.path"
    else:
        if dataset not in shipped():
            raise TaskError(f"task.dataset {dataset!r} is not shipped with sktime: expected one"
                            f" of {', '.join(shipped())} (or task.path=DIR/NAME for your own"
                            " NAME_TRAIN.ts and NAME_TEST.ts)")
        name, folder, key = dataset, archive_dir() / dataset, "task.dataset"
    pair = [folder / f"{name}_{part}.ts" for part in ("TRAIN", "TEST")]
    for f in pair:
        if not f.is_file():
            raise FileNotFoundError(f"{key} {path or dataset}: {f} does not exist (expected"
                                    f" {name}_TRAIN.ts and {name}_TEST.ts in {folder})")
    return pair[0], pair[1], name


def read_ts(path):
    """(list of (T_i, C) arrays, labels as strings) from a .ts file, via sktime."""
    from sktime.datasets import load_from_tsfile

    try:
        table, labels = load_from_tsfile(str(path), return_data_type="nested_univ")
    except Exception as exc:  # sktime raises its own errors for malformed files
        raise TaskError(f"{path} is not a readable .ts file"
                        f" ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    cases = []
    for i in range(len(table)):
        channels = [np.asarray(table.iloc[i, c], float) for c in range(table.shape[1])]
        if len({ch.size for ch in channels}) != 1:
            raise TaskError(f"{path}: case {i} has channels of different lengths"
                            f" ({', '.join(str(ch.size) for ch in channels)})")
        case = np.stack(channels, axis=1)
        if not np.isfinite(case).all():
            raise TaskError(f"{path}: case {i} has missing values")
        cases.append(case)
    return cases, np.asarray(labels).astype(str)


def stratified_split(labels, fraction, seed):
    """Indices (train, val): `fraction` of each class to validation (at least one of a class
    with two or more cases), drawn with a seeded generator."""
    rng = np.random.default_rng([seed, SPLIT_SEED])
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * idx.size))
        k = min(max(k, 1 if idx.size > 1 else 0), idx.size - 1)
        val += idx[:k].tolist()
        train += idx[k:].tolist()
    return np.sort(train), np.sort(val)


def pad(cases, length):
    """x (T, N, C) zero-padded and lengths (N,) of cases cut to at most `length` steps."""
    cases = [c[:length] for c in cases] if length else cases
    lengths = np.array([c.shape[0] for c in cases], np.int64)
    x = np.zeros((lengths.max(), len(cases), cases[0].shape[1]))
    for i, c in enumerate(cases):
        x[:c.shape[0], i] = c
    return x, lengths


def tsc(dataset="JapaneseVowels", path=None, length=None, val_fraction=0.2, seed=0):
    """Classify whole sequences (readout "last"); see the module docstring.

    length: cut every sequence to at most this many steps (None: keep them whole).
    """
    if not 0 < val_fraction < 1:
        raise TaskError(f"task.val_fraction must be in (0, 1), got {val_fraction!r}")
    train_file, test_file, name = files(dataset, path)
    train_cases, train_labels = read_ts(train_file)
    test_cases, test_labels = read_ts(test_file)
    classes = np.unique(train_labels)
    unknown = sorted(set(test_labels) - set(classes))
    if unknown:
        raise TaskError(f"{test_file}: classes {', '.join(unknown)} do not occur in training")
    if train_cases[0].shape[1] != test_cases[0].shape[1]:
        raise TaskError(f"{test_file}: {test_cases[0].shape[1]} channels, training has"
                        f" {train_cases[0].shape[1]}")
    tr, va = stratified_split(train_labels, val_fraction, seed)
    parts = {"train": ([train_cases[i] for i in tr], train_labels[tr]),
             "val": ([train_cases[i] for i in va], train_labels[va]),
             "test": (test_cases, test_labels)}
    splits = {s: dict(zip(("x", "lengths"), pad(c, length))) for s, (c, _) in parts.items()}
    for s, (_, labels) in parts.items():
        splits[s]["y"] = np.searchsorted(classes, labels).astype(np.int64)
    train = splits["train"]
    valid = np.arange(train["x"].shape[0])[:, None] < train["lengths"][None, :]   # (T, N)
    steps = train["x"][valid]                                                       # (n, C)
    mean, std = steps.mean(axis=0), steps.std(axis=0)
    std[std == 0] = 1.0
    for split in splits.values():
        mask = np.arange(split["x"].shape[0])[:, None] < split["lengths"][None, :]
        split["x"] = np.where(mask[:, :, None], (split["x"] - mean) / std, 0.0)
    prior = np.bincount(train["y"], minlength=classes.size) / train["y"].size
    test_y = splits["test"]["y"]
    baselines = {
        "baseline_majority_accuracy": float(np.mean(test_y == np.argmax(prior))),
        "baseline_prior_xent": float(-np.log(np.maximum(prior[test_y], 1e-12)).mean()),
    }
    return Dataset("tsc", "classification", "last", int(train["x"].shape[2]), int(classes.size),
                   None, splits, baselines=baselines,
                   meta=dict(source=name, classes=classes.tolist(), length=length,
                             val_fraction=val_fraction, seed=seed,
                             channel_mean=mean.tolist(), channel_std=std.tolist()))
