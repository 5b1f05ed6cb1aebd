"""Files a run writes: weights, curves as CSV (for `dvc plots`), metrics, figures.

Every file is written to a temporary name beside it and then renamed, so a
kill never leaves one half-written.
"""
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .data.files import atomic


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


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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


def prediction_table(predictions, data):
    """predictions.csv: truth against prediction (regression, in original units too where the
    series has them), each case's class (classification of whole sequences), or accuracy
    per step (a class at every step)."""
    pred, truth = predictions["pred"], predictions["y"]
    if data.kind == "regression":
        table = {"index": np.arange(len(truth)), "truth": truth[:, 0], "prediction": pred[:, 0]}
        if "clean" in predictions:
            table["clean"] = predictions["clean"][:, 0]
        if "level" in predictions and "scale" in data.meta:
            mean, std = data.meta["scale"]
            for name, values in (("truth", truth), ("prediction", pred)):
                table[f"{name}_original"] = predictions["level"][:, 0] + values[:, 0] * std + mean
        return table
    if data.readout == "last":
        names = np.asarray(data.meta.get("classes", range(data.output_size)), dtype=str)
        return {"index": np.arange(len(truth)), "actual": names[truth],
                "predicted": names[pred.argmax(-1)]}
    valid = np.ones(truth.shape, bool) if "lengths" not in predictions else \
        np.arange(truth.shape[0])[:, None] < predictions["lengths"][None, :]
    hits = (pred.argmax(-1) == truth) & valid
    return {"t": np.arange(truth.shape[0]),
            "accuracy": hits.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)}


def write_evaluation(metrics, predictions, data, out_dir, metrics_path, figures=True):
    """metrics JSON, predictions.csv, confusion.csv and (figures) the figures; returns the
    figures' paths.

    confusion.csv (actual, predicted per test case; DVC's confusion template) is
    written for every task, empty but for its header where there are no classes of
    whole sequences, so the DVC stage always has its outputs.
    """
    out = Path(out_dir)
    write_json(metrics, metrics_path)
    table = prediction_table(predictions, data)
    write_csv(table, out / "predictions.csv")
    classes = data.kind == "classification" and data.readout == "last"
    write_csv({k: table[k] if classes else [] for k in ("actual", "predicted")},
              out / "confusion.csv")
    if not figures:
        return []
    from . import plots  # matplotlib: only where figures are drawn (a sweep's jobs draw none)

    drawn = [out / "predictions.png"]
    plots.save(plots.predictions(predictions["pred"], predictions["y"], predictions.get("clean"),
                                 data.kind, data.readout), drawn[0])
    if classes:
        drawn.append(out / "confusion.png")
        plots.save(plots.confusion(table["actual"], table["predicted"],
                                   data.meta.get("classes")), drawn[1])
    return drawn


def write_figures(result, out_dir):
    """The training figures of a run; returns their paths."""
    from . import plots

    out = Path(out_dir)
    figures = {
        "loss_curves.png": plots.loss_curves(result.history),
        "hidden_grad_norms.png": plots.hidden_grad_norms(result.dh_norms),
        "step_grad_norms.png": plots.step_grad_norms(result.step_grad_norms),
    }
    for name, fig in figures.items():
        plots.save(fig, out / name)
    return [out / name for name in figures]
