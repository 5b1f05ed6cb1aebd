"""One experiment job: train, write its files, record it in MLflow, evaluate.

Shared by the DVC stages and by Hydra (multi)run jobs; they differ only in
where files go. Paths and trackers come in as arguments.
"""
import math
import tempfile
from pathlib import Path

import yaml

from . import outputs, plots, training
from .tracking import flatten

GENERATE = "python -m pipeline.generate (the `generate` stage of dvc.yaml)"
TRAIN = "python -m pipeline.train --params params.yaml (the `train` stage of dvc.yaml)"


def config_yaml(cfg):
    """The composed config as YAML text (nested as in conf/)."""
    nested = {}
    for key, value in flatten(cfg).items():
        node = nested
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return yaml.safe_dump(nested, sort_keys=False)


def train_and_record(cfg, data, train_dir, model_path, tracker=None, figures_dir=None):
    """Fit, then write weights and curves (CSV); log them and the figures to the tracker.

    figures_dir: where the PNG figures go (None: a temporary folder, for MLflow only).
    """
    result = training.fit(cfg, data, on_epoch=tracker.log_epoch if tracker else None)
    outputs.save_params(result.model.params, model_path)
    outputs.write_training(result, train_dir)
    with tempfile.TemporaryDirectory() as tmp:
        figures = outputs.write_figures(result, data.kind, figures_dir or tmp)
        if tracker is not None:
            _record(tracker, cfg, data, result, model_path, figures)
    return result


def _record(tracker, cfg, data, result, model_path, figures):
    tracker.log_metrics(result.metrics, step=len(result.history["epoch"]))
    tracker.log_series("step_grad_norm", [v for v in result.step_grad_norms if math.isfinite(v)])
    tags = {"outcome": result.outcome, "dataset_fingerprint": data.fingerprint, "task": data.task}
    if result.diverged_at:
        tags.update({f"diverged_{k}": v for k, v in result.diverged_at.items()})
    tracker.set_tags(tags)
    tracker.log_text(config_yaml(cfg), "config.yaml")
    tracker.log_artifacts([model_path], "model")
    tracker.log_artifacts(figures, "plots")


def evaluate(cfg, data, params, eval_dir, metrics_path):
    """Test metrics of saved weights; writes metrics JSON, predictions.csv and its figure."""
    model = training.build_model(cfg, data)
    model.load_params(params)
    loss, metric, pred = training.evaluate(model, data, "test", cfg.train.eval_batch_size)
    predictions = {"pred": pred, **{k: v for k, v in data.splits["test"].items() if k != "x"}}
    return record_evaluation(data, loss, metric, predictions, eval_dir, metrics_path)


def record_evaluation(data, loss, metric, predictions, eval_dir, metrics_path, figure=True):
    """Write what `evaluate` found (or what training's own test pass found).

    figure: draw predictions.png (train_and_record has drawn it when given figures_dir).
    """
    metrics = {"test_loss": loss, "baseline": data.baseline,
               "test_accuracy" if data.kind == "classification" else "test_mse": metric}
    outputs.write_evaluation(metrics, predictions, data.kind, eval_dir, metrics_path)
    if figure:
        plots.save(plots.predictions(predictions["pred"], predictions["y"], predictions.get("clean"),
                                     data.kind), Path(eval_dir) / "predictions.png")
    return metrics
