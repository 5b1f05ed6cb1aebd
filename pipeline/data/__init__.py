"""Data sets and the tasks that make them.

    ds = data.make("adding", length=100, seed=0)     # a Dataset (see dataset.py)
    data.save(ds, "data/dataset.npz"); data.load("data/dataset.npz")

Tasks, one generator each (keyword arguments are the task's config keys):
    synthetic.sine, synthetic.adding, synthetic.copy, text.text, series.series, tsc.tsc
"""
import json
from pathlib import Path

from . import series, synthetic, text, tsc
from .dataset import SPLITS, DataError, Dataset, TaskError, load, save

__all__ = ["SPLITS", "DataError", "Dataset", "TaskError", "load", "save", "make",
           "load_or_make", "GENERATORS"]

GENERATORS = {"sine": synthetic.sine, "adding": synthetic.adding, "copy": synthetic.copy,
              "text": text.text, "series": series.series, "tsc": tsc.tsc}


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
