"""One experiment, in two steps: train, then evaluate on the test split.

Shared by the DVC stages (`train`, then `evaluate`, as two processes) and by
a Hydra job (both in one process); they differ only in where files go.
Paths and trackers come in as arguments.
"""
import math
import tempfile

from omegaconf import OmegaConf

from . import outputs
from .training.config import plain
from .training.loop import fit
from .training.scoring import build_model, score_test_split

GENERATE = "python -m pipeline.generate (the `generate` stage of dvc.yaml)"
TRAIN = "python -m pipeline.train --params params.yaml (the `train` stage of dvc.yaml)"


def train(cfg, data, train_dir, model_path, tracker=None, figures_dir=None, checkpoint=None):
    """Fit, then write weights and curves (CSV); log them and the figures to the tracker.

    figures_dir: where the PNG figures go (None: a temporary folder, for MLflow only).
    Returns the training Result.
    """
    result = fit(cfg, data, checkpoint=checkpoint,
                 on_epoch=tracker.log_epoch if tracker else None)
    outputs.save_params(result.model.params, model_path)
    outputs.write_training(result, train_dir)
    if tracker is None:
        return result
    with tempfile.TemporaryDirectory() as tmp:
        figures = outputs.write_figures(result, figures_dir or tmp)
        tracker.log_metrics(result.metrics, step=len(result.history["epoch"]))
        tracker.log_series("step_grad_norm",
                           [v for v in result.step_grad_norms if math.isfinite(v)])
        tags = {"outcome": result.outcome, "dataset_fingerprint": data.fingerprint,
                "task": data.task, "model_sha256": outputs.file_sha256(model_path)}
        tags.update({f"diverged_{k}": v for k, v in (result.diverged_at or {}).items()})
        tracker.set_tags(tags)
        tracker.log_diagnostics(cfg, data, result)
        tracker.log_text(OmegaConf.to_yaml(plain(cfg)), "config.yaml")
        tracker.log_artifacts([model_path], "model")
        tracker.log_artifacts(figures, "plots")
    return result


def evaluate(cfg, data, model, eval_dir, metrics_path, tracker=None):
    """Score the test split once; write metrics JSON, predictions.csv and .png; log them."""
    metrics, predictions = score_test_split(model, data, cfg.train.eval_batch_size)
    figure = outputs.write_evaluation(metrics, predictions, data.kind, eval_dir, metrics_path)
    if tracker is not None:
        tracker.log_metrics(metrics)
        tracker.log_artifacts([figure], "plots")
    return metrics


def load_model(cfg, data, params):
    """The model cfg describes for data, with saved weights loaded."""
    model = build_model(cfg, data)
    model.load_params(params)
    return model
