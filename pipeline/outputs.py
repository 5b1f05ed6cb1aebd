"""Files a run writes: weights, curves as CSV (for `dvc plots`), metrics, figures.

Every file is written to a temporary name beside it and then renamed, so a
kill never leaves one half-written.
"""
import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from .data import DataError


@contextlib.contextmanager
def atomic(path):
    """Yield a temporary path beside `path`; rename it over `path` when the block ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


class OutputError(OSError):
    """A place to write cannot be written; the message names it."""


def check_writable(*folders):
    """Create each folder if needed and write a file in it; OutputError names the first
    that fails, before any work is done."""
    for folder in folders:
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-check-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def save_params(params, path):
    with atomic(path) as tmp:
        np.savez(tmp, **params)


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_params(path, made_by):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} is missing: it is made by `{made_by}`")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise DataError(f"model file {path} is corrupt ({type(exc).__name__});"
                        f" remake it with `{made_by}`") from None


def write_csv(table, path):
    with atomic(path) as tmp:
        pd.DataFrame(table).to_csv(tmp, index=False)


def write_json(values, path):
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")


def write_training(result, out_dir):
    """history.csv, grad_norms.csv, hidden_grad_norms.csv under out_dir.

    Wall times stay out (they go to MLflow): these files must repeat bit for bit.
    """
    out = Path(out_dir)
    write_csv({k: v for k, v in result.history.items() if k != "seconds"}, out / "history.csv")
    write_csv({"step": np.arange(len(result.step_grad_norms)),
               "grad_norm": result.step_grad_norms}, out / "grad_norms.csv")
    if result.dh_norms:
        norms = result.dh_norms[max(result.dh_norms)]
        table = {"t": np.arange(norms.shape[-1])}
        for layer in range(norms.shape[0]):
            for d in range(norms.shape[1]):
                table[f"layer{layer}" + ("_reverse" if d else "")] = norms[layer, d]
        write_csv(table, out / "hidden_grad_norms.csv")


def write_evaluation(metrics, predictions, kind, out_dir, metrics_path):
    """metrics JSON, predictions.csv (truth against prediction, or accuracy per step) and
    predictions.png; returns the figure's path."""
    out = Path(out_dir)
    write_json(metrics, metrics_path)
    pred, truth = predictions["pred"], predictions["y"]
    if kind == "regression":
        table = {"index": np.arange(len(truth)), "truth": truth[:, 0], "prediction": pred[:, 0]}
        if "clean" in predictions:
            table["clean"] = predictions["clean"][:, 0]
    else:
        acc = (pred.argmax(-1) == truth).mean(axis=1)
        table = {"t": np.arange(len(acc)), "accuracy": acc}
    write_csv(table, out / "predictions.csv")
    figure = out / "predictions.png"
    plots.save(plots.predictions(pred, truth, predictions.get("clean"), kind), figure)
    return figure


def write_figures(result, out_dir):
    """The training figures of a run; returns their paths."""
    out = Path(out_dir)
    figures = {
        "loss_curves.png": plots.loss_curves(result.history),
        "hidden_grad_norms.png": plots.hidden_grad_norms(result.dh_norms),
        "step_grad_norms.png": plots.step_grad_norms(result.step_grad_norms),
    }
    for name, fig in figures.items():
        plots.save(fig, out / name)
    return [out / name for name in figures]
