"""A data set: time-major arrays per split, what kind of problem, its baseline, its fingerprint.

Every task's generator returns a ``Dataset``; ``save`` and ``load`` write and
read it as one .npz, and the fingerprint (sha256 of the arrays and the
header) names the data exactly.
"""
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from .files import atomic
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
    splits[s]["y"]: (N, O) floats or (N,) int classes (readout "last"),
                    (T, N) int classes (readout "all")
    splits[s]["lengths"]: (N,) ints in [1, T] where sequences differ in length
                    (x is zero-padded after each sequence's end)
    Other per-split arrays ride along: "clean" (the noise-free target), "level"
    and meta["scale"] (series: prediction in original units = level + pred * std + mean).

    baselines: the test-split score of each naive predictor a reviewer would ask
    for, by name: `baseline_<predictor>_<mse|xent>` are losses in the model's own
    units (comparable with the test loss), `..._accuracy` accuracies and
    `..._original` MSEs in the data's original units.
    """
    task: str
    kind: str          # "regression" (MSE) or "classification" (cross-entropy)
    readout: str       # "last" (many-to-one) or "all" (many-to-many)
    input_size: int    # features per step; 0 for token inputs
    output_size: int
    vocab_size: int | None
    splits: dict
    baselines: dict    # name -> value on the test split (see above)
    meta: dict = dataclasses.field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = self.compute_fingerprint()

    @property
    def baseline_name(self):
        """The strongest baseline: the lowest loss among them."""
        losses = {k: v for k, v in self.baselines.items() if k.endswith(("_mse", "_xent"))}
        return min(losses, key=losses.get)

    @property
    def baseline(self):
        return self.baselines[self.baseline_name]

    def header(self):
        """Everything but the arrays, as JSON-ready values."""
        return {k: getattr(self, k) for k in ("task", "kind", "readout", "input_size",
                                              "output_size", "vocab_size", "baselines",
                                              "meta")}

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
    arrays = {f"{s}/{k}": v for s in SPLITS for k, v in ds.splits[s].items()}
    header = dict(ds.header(), fingerprint=ds.fingerprint)
    with atomic(path) as tmp:
        np.savez(tmp, header=np.array(json.dumps(header, sort_keys=True)), **arrays)


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


def split_bounds(n, fractions=FRACTIONS):
    a = int(round(n * fractions[0]))
    b = int(round(n * (fractions[0] + fractions[1])))
    return {"train": (0, a), "val": (a, b), "test": (b, n)}


def windows(values, length, start, stop):
    """Windows values[i:i+length] -> values[i+length] for i+length in [start+length, stop)."""
    idx = np.arange(start, stop - length)
    if idx.size == 0:
        raise TaskError(f"task.length {length} is too long: a split has only {stop - start} points")
    x = values[idx[None, :] + np.arange(length)[:, None]]          # (T, N)
    return x[:, :, None], values[idx + length][:, None]            # (T, N, 1), (N, 1)


def mse(a, b):
    return float(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2))


def check_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise TaskError(f"task.{name} must be an integer >= {low}, got {value!r}")
    return int(value)
