"""Tasks: seeded generators of time-major data sets with train/val/test splits.

Every generator returns a ``Dataset``: arrays per split, what kind of problem
it is, the trivial baseline to beat, and a fingerprint (sha256 of the arrays
and the task's parameters) that names the data exactly.

    sine    noisy y = sin(pi x/3) + cos(pi x/3) + sin(pi x/1.5); a window predicts the next value
    adding  the adding problem (Hochreiter & Schmidhuber 1997): sum of two marked values
    copy    the copy/memory task of Arjovsky et al. 2016
    text    char-level language modelling on a UTF-8 file (default: Python's pydoc topics)
    series  a real univariate series shipped by statsmodels (sunspots, co2)
"""
import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
FRACTIONS = (0.7, 0.15, 0.15)  # contiguous train/val/test shares of a single series


class DataError(ValueError):
    """A data file is corrupt or does not match its header."""


class TaskError(ValueError):
    """A task parameter is out of range; the message names the key."""


@dataclasses.dataclass
class Dataset:
    """Arrays per split plus what a model and a report need to know about them.

    splits[s]["x"]: (T, N, D) floats, or (T, N) int tokens when vocab_size is set
    splits[s]["y"]: (N, O) floats (readout "last") or (T, N) int classes (readout "all")
    Other per-split arrays (e.g. "clean", the noise-free target) ride along.
    """
    task: str
    kind: str          # "regression" (MSE) or "classification" (cross-entropy)
    readout: str       # "last" (many-to-one) or "all" (many-to-many)
    input_size: int    # features per step; 0 for token inputs
    output_size: int
    vocab_size: int | None
    splits: dict
    baseline: float    # test loss of the trivial predictor named below
    baseline_name: str
    meta: dict = dataclasses.field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = self.compute_fingerprint()

    def header(self):
        """Everything but the arrays, as JSON-ready values."""
        return {k: getattr(self, k) for k in ("task", "kind", "readout", "input_size",
                                              "output_size", "vocab_size", "baseline",
                                              "baseline_name", "meta")}

    def compute_fingerprint(self):
        digest = hashlib.sha256(json.dumps(self.header(), sort_keys=True).encode())
        for split in SPLITS:
            for key in sorted(self.splits[split]):
                a = np.ascontiguousarray(self.splits[split][key])
                digest.update(f"{split}/{key}:{a.dtype.str}:{a.shape}".encode())
                digest.update(a.tobytes())
        return digest.hexdigest()[:16]


def save(ds, path):
    """Write the data set as one .npz (arrays + a JSON header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{s}/{k}": v for s in SPLITS for k, v in ds.splits[s].items()}
    header = dict(ds.header(), fingerprint=ds.fingerprint)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, header=np.array(json.dumps(header, sort_keys=True)), **arrays)
    tmp.replace(path)


def load(path, made_by="python -m pipeline.generate"):
    """Read a data set written by ``save``; a missing or corrupt file names itself and its maker."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} is missing: it is made by `{made_by}`")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            splits = {s: {} for s in SPLITS}
            for name in z.files:
                if name != "header":
                    split, key = name.split("/", 1)
                    splits[split][key] = z[name]
        stored = header.pop("fingerprint")
        ds = Dataset(splits=splits, **header)
    except Exception as exc:  # zip, JSON or key errors all mean the same thing here
        raise DataError(f"data file {path} is corrupt ({type(exc).__name__}: {exc});"
                         f" remake it with `{made_by}`") from None
    if ds.fingerprint != stored:
        raise DataError(f"data file {path} is corrupt (fingerprint {ds.fingerprint},"
                         f" header says {stored}); remake it with `{made_by}`")
    return ds


def _bounds(n, fractions=FRACTIONS):
    a = int(round(n * fractions[0]))
    b = int(round(n * (fractions[0] + fractions[1])))
    return {"train": (0, a), "val": (a, b), "test": (b, n)}


def _windows(values, length, start, stop):
    """Windows values[i:i+length] -> values[i+length] for i+length in [start+length, stop)."""
    idx = np.arange(start, stop - length)
    if idx.size == 0:
        raise TaskError(f"task.length {length} is too long: a split has only {stop - start} points")
    x = values[idx[None, :] + np.arange(length)[:, None]]          # (T, N)
    return x[:, :, None], values[idx + length][:, None]            # (T, N, 1), (N, 1)


def _check(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise TaskError(f"task.{name} must be an integer >= {low}, got {value!r}")
    return int(value)


# ----- generators ---------------------------------------------------------------
def sine(length=20, n_points=3000, step=0.1, noise=0.05, seed=0):
    """Noisy sum of sines sampled every `step`; `length` past values predict the next."""
    length, n_points = _check("length", length), _check("n_points", n_points, 10)
    if not noise >= 0:
        raise TaskError(f"task.noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    x = np.arange(n_points) * step
    clean = np.sin(np.pi * x / 3) + np.cos(np.pi * x / 3) + np.sin(np.pi * x / 1.5)
    noisy = clean + rng.uniform(-noise, noise, n_points)
    splits = {}
    for split, (a, b) in _bounds(n_points).items():
        xs, ys = _windows(noisy, length, a, b)
        splits[split] = {"x": xs, "y": ys, "clean": _windows(clean, length, a, b)[1]}
    test_y = splits["test"]["y"]
    return Dataset("sine", "regression", "last", 1, 1, None, splits,
                   baseline=float(np.mean((test_y - test_y.mean()) ** 2)),
                   baseline_name="variance of the target",
                   meta=dict(length=length, n_points=n_points, step=step, noise=noise,
                             seed=seed, noise_variance=noise ** 2 / 3))


def adding(length=100, n_train=10000, n_val=1000, n_test=1000, seed=0):
    """Values U[0,1] and a marker channel with one 1 in each half; target: the marked sum."""
    length = _check("length", length, 2)
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        n = _check(f"n_{split}", n)
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
                   baseline=float(np.mean((splits["test"]["y"] - 1.0) ** 2)),
                   baseline_name="constant prediction 1 (MSE ~ 1/6)",
                   meta=dict(length=length, n_train=n_train, n_val=n_val, n_test=n_test,
                             seed=seed))


def copy(length=100, n_symbols=8, n_copy=10, n_train=10000, n_val=1000, n_test=1000, seed=0):
    """Arjovsky et al. 2016: n_copy symbols, `length` steps of waiting, then recall them.

    Tokens: 0 blank, 1..n_symbols symbols, n_symbols+1 the delimiter, shown at
    step n_copy + length - 1. Targets: blank until the last n_copy steps, which
    must repeat the symbols. Memoryless baseline: n_copy ln(n_symbols) / S nats
    per step, S = length + 2 n_copy.
    """
    length, n_symbols, n_copy = (_check("length", length), _check("n_symbols", n_symbols, 2),
                                 _check("n_copy", n_copy))
    rng = np.random.default_rng(seed)
    S = length + 2 * n_copy
    splits = {}
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        n = _check(f"n_{split}", n)
        symbols = rng.integers(1, n_symbols + 1, (n_copy, n))
        x = np.zeros((S, n), np.int64)
        x[:n_copy] = symbols
        x[n_copy + length - 1] = n_symbols + 1
        y = np.zeros((S, n), np.int64)
        y[-n_copy:] = symbols
        splits[split] = {"x": x, "y": y}
    return Dataset("copy", "classification", "all", 0, n_symbols + 1, n_symbols + 2, splits,
                   baseline=n_copy * math.log(n_symbols) / S,
                   baseline_name="memoryless cross-entropy",
                   meta=dict(length=length, n_symbols=n_symbols, n_copy=n_copy,
                             n_train=n_train, n_val=n_val, n_test=n_test, seed=seed))


def default_corpus():
    """Python's own pydoc topics: a few hundred kB of English text, shipped with CPython."""
    from pydoc_data.topics import topics
    return "\n\n".join(topics[k] for k in sorted(topics))


def text(path=None, length=64, max_chars=200_000):
    """Char-level language modelling: predict every next character of `length`-char windows.

    path: a UTF-8 file (None: ``default_corpus``); its first max_chars characters
    are split 70/15/15 in order. The vocabulary is the training split's
    characters plus one unknown id. Baseline: the unigram entropy of training.
    """
    length, max_chars = _check("length", length), _check("max_chars", max_chars, 10)
    if path is None:
        corpus, source = default_corpus(), "pydoc_data.topics"
    else:
        try:
            corpus = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"task.path {path} does not exist") from None
        except UnicodeDecodeError as exc:
            raise TaskError(f"task.path {path} is not UTF-8 text ({exc.reason})") from None
        source = str(path)
    corpus = corpus[:max_chars]
    bounds = _bounds(len(corpus))
    train_text = corpus[slice(*bounds["train"])]
    chars = sorted(set(train_text))
    index = {c: i for i, c in enumerate(chars)}
    unk = len(chars)
    splits = {}
    for split, (a, b) in bounds.items():
        ids = np.array([index.get(c, unk) for c in corpus[a:b]], np.int64)
        n = (ids.size - 1) // length
        if n < 1:
            raise TaskError(f"task.path {source}: the {split} split ({b - a} chars) is shorter"
                             f" than one window of {length + 1}")
        starts = np.arange(n) * length
        idx = starts[None, :] + np.arange(length)[:, None]
        splits[split] = {"x": ids[idx], "y": ids[idx + 1]}
    counts = np.bincount(splits["train"]["x"].ravel(), minlength=unk + 1)
    p = counts[counts > 0] / counts.sum()
    return Dataset("text", "classification", "all", 0, unk + 1, unk + 1, splits,
                   baseline=float(-(p * np.log(p)).sum()),
                   baseline_name="unigram entropy of training (nats/char)",
                   meta=dict(source=source, length=length, max_chars=max_chars,
                             vocab="".join(chars)))


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
    length = _check("length", length)
    raw = _load_series(dataset)
    bounds = _bounds(raw.size)
    train = raw[slice(*bounds["train"])]
    mean, std = float(train.mean()), float(train.std())
    values = (raw - mean) / std
    splits = {}
    for split, (a, b) in bounds.items():
        xs, ys = _windows(values, length, a, b)
        splits[split] = {"x": xs, "y": ys}
    return Dataset("series", "regression", "last", 1, 1, None, splits,
                   baseline=float(np.mean(splits["test"]["y"] ** 2)),
                   baseline_name="predicting the training mean",
                   meta=dict(dataset=dataset, length=length, mean=mean, std=std))


GENERATORS = {"sine": sine, "adding": adding, "copy": copy, "text": text, "series": series}


def make(name, **params):
    """Generate task `name` with its parameters (those of its generator).

    The parameters are kept in meta["params"], so a saved data set can be
    matched against a config without regenerating it.
    """
    if name not in GENERATORS:
        raise TaskError(f"unknown task {name!r}: expected one of {', '.join(GENERATORS)}")
    ds = GENERATORS[name](**params)
    ds.meta["params"] = json.loads(json.dumps(params))
    ds.fingerprint = ds.compute_fingerprint()
    return ds


def load_or_make(name, params, path):
    """The data set at `path` if it was made from exactly these parameters, else a fresh one.

    Reads, never writes: sweep jobs reuse `dvc repro`'s output when it matches.
    """
    if Path(path).is_file():
        try:
            ds = load(path)
        except ValueError:
            ds = None
        if ds is not None and ds.task == name and \
                ds.meta.get("params") == json.loads(json.dumps(params)):
            return ds
    return make(name, **params)
