"""One experiment, in two steps: train, then evaluate on the test split.

Shared by the DVC stages (`train`, then `evaluate`, as two processes) and by
a Hydra job (both in one process); they differ only in where files go.
Paths and trackers come in as arguments.
"""
import math
import tempfile
from functools import partial
from pathlib import Path

from omegaconf import OmegaConf

from . import outputs, serving
from .training.config import plain
from .training.loop import fit
from .inference.sampling import sample
from .training import bundle
from .training.scoring import score_test_split, stream_of

GENERATE = "python -m pipeline.generate (the `generate` stage of dvc.yaml)"
TRAIN = "python -m pipeline.train --params params.yaml (the `train` stage of dvc.yaml)"
SAMPLES_PER_EPOCH = 3   # text runs: samples logged as MLflow text artifacts each epoch
SAMPLE_CHARS = 200


def train(cfg, data, train_dir, model_path, tracker=None, figures_dir=None, figures=True,
          checkpoint=None):
    """Fit, then write weights and curves (CSV); log them and the figures to the tracker.

    figures_dir: where the PNG figures go (None: a temporary folder, for MLflow only).
    figures: draw them (a sweep's jobs do not: MLflow charts each run's curves, and the
    sweep's report draws the comparison).
    checkpoint: written after every epoch and resumed from (a resumed run logs the
    restored epochs again, so it holds the whole history); deleted once the run is done.
    Returns the training Result.
    """
    result = fit(cfg, data, checkpoint=checkpoint,
                 on_epoch=partial(_record_epoch, tracker, data) if tracker else None,
                 on_resume=tracker.log_history if tracker else None)
    bundle.save(model_path, result.model, cfg, data)
    outputs.write_training(result, train_dir)
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    if tracker is None:
        return result
    with tempfile.TemporaryDirectory() as tmp:
        tracker.log_metrics(result.metrics, step=len(result.history["epoch"]))
        tracker.log_series("step_grad_norm",
                           [v for v in result.step_grad_norms if math.isfinite(v)])
        tags = {"outcome": result.outcome, "dataset_fingerprint": data.fingerprint,
                "task": data.task, "model_sha256": outputs.file_sha256(model_path)}
        tags.update({f"diverged_{k}": v for k, v in (result.diverged_at or {}).items()})
        tracker.set_tags(tags)
        tracker.log_diagnostics(cfg, data, result)
        tracker.log_text(OmegaConf.to_yaml(plain(cfg)), "config.yaml")
        serving.log_model(tracker, model_path)
        if figures:
            tracker.log_artifacts(outputs.write_figures(result, figures_dir or tmp), "plots")
    return result


def _record_epoch(tracker, data, row, model):
    """An epoch's metrics; for a language model, a few samples of text too."""
    tracker.log_epoch(row)
    if data.task == "text":
        vocab = data.meta["vocab"]
        texts = [sample(model, vocab, length=SAMPLE_CHARS, seed=s)
                 for s in range(SAMPLES_PER_EPOCH)]
        tracker.log_text("\n\n----\n\n".join(texts), f"samples/epoch_{row['epoch']:03d}.txt")


def evaluate(cfg, data, model, eval_dir, metrics_path, tracker=None, figures=True):
    """Score the test split once; write metrics JSON, predictions.csv (and the figures);
    log them."""
    metrics, predictions = score_test_split(model, data, cfg.train.eval_batch_size,
                                            stream_of(cfg.train))
    drawn = outputs.write_evaluation(metrics, predictions, data, eval_dir, metrics_path, figures)
    if tracker is not None:
        tracker.log_metrics(metrics)
        tracker.log_artifacts(drawn, "plots")
        if data.kind == "classification" and data.readout == "last":  # the confusion table
            tracker.log_artifacts([Path(eval_dir) / "confusion.csv"], "eval")
    return metrics
