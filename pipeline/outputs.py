"""Files a run writes: weights, curves as CSV (for `dvc plots`), metrics, figures."""
import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from .tasks import DataError

def save_params(params, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **params)


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


def write_training(result, out_dir):
    """history.csv, grad_norms.csv, hidden_grad_norms.csv under out_dir.

    Wall times stay out (they go to MLflow): these files must repeat bit for bit.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(result.history).drop(columns="seconds").to_csv(out / "history.csv", index=False)
    pd.DataFrame({"step": np.arange(len(result.step_grad_norms)),
                  "grad_norm": result.step_grad_norms}).to_csv(out / "grad_norms.csv", index=False)
    if result.dh_norms:
        last = max(result.dh_norms)
        norms = result.dh_norms[last]
        table = {"t": np.arange(norms.shape[-1])}
        for layer in range(norms.shape[0]):
            for d in range(norms.shape[1]):
                table[f"layer{layer}" + ("_reverse" if d else "")] = norms[layer, d]
        pd.DataFrame(table).to_csv(out / "hidden_grad_norms.csv", index=False)


def write_evaluation(metrics, predictions, kind, out_dir, metrics_path):
    """metrics JSON and predictions.csv (truth against prediction, or accuracy per step)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_path).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    pred, truth = predictions["pred"], predictions["y"]
    if kind == "regression":
        table = {"index": np.arange(len(truth)), "truth": truth[:, 0], "prediction": pred[:, 0]}
        if "clean" in predictions:
            table["clean"] = predictions["clean"][:, 0]
    else:
        acc = (pred.argmax(-1) == truth).mean(axis=1)
        table = {"t": np.arange(len(acc)), "accuracy": acc}
    pd.DataFrame(table).to_csv(out / "predictions.csv", index=False)


def write_figures(result, kind, out_dir):
    """The four PNG figures of a run; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = result.predictions
    figures = {
        "loss_curves.png": plots.loss_curves(result.history),
        "predictions.png": plots.predictions(p["pred"], p["y"], p.get("clean"), kind),
        "hidden_grad_norms.png": plots.hidden_grad_norms(result.dh_norms),
        "step_grad_norms.png": plots.step_grad_norms(result.step_grad_norms),
    }
    paths = []
    for name, fig in figures.items():
        plots.save(fig, out / name)
        paths.append(out / name)
    return paths
