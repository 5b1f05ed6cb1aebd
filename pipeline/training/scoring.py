"""Building a model for a data set, its loss, and scoring it on a split.

``score`` is the one place a split is scored: the loop calls it on the
validation split after every epoch; the `evaluate` stage and a Hydra job
call it once on the test split.
"""
import numpy as np

from ..nn import losses
from . import streams
from .bundle import build
from .config import plain


def build_model(cfg, data):
    """The model cfg describes, shaped for data (embedding for tokens, its readout)."""
    return build(plain(cfg), data.header())


def loss_fn(data, pred, y, lengths=None):
    """(loss, dL/dpred, metric): MSE for regression; cross-entropy and accuracy otherwise.

    With readout "all" and lengths, padded steps count for nothing: the mean is
    over valid steps.
    """
    mask = None
    if lengths is not None and data.readout == "all":
        mask = losses.length_mask(lengths, y.shape[0])
    if data.kind == "regression":
        loss, grad = losses.mse(pred, y, mask)
        return loss, grad, loss
    loss, grad = losses.cross_entropy(pred, y, mask)
    return loss, grad, losses.accuracy(pred, y, mask)


def inputs(model, x):
    """x as the model takes it: tokens stay integers, values take the model's dtype."""
    return x if model.vocab_size is not None else x.astype(model.dtype)


def batch(model, data, arrays, idx):
    """(x, y, lengths) of the sequences idx of one split's arrays; lengths None if all
    sequences are whole."""
    x = inputs(model, np.take(arrays["x"], idx, axis=1))
    y = np.take(arrays["y"], idx, axis=0 if data.readout == "last" else 1)
    lengths = arrays["lengths"][idx] if "lengths" in arrays else None
    if lengths is not None:  # the batch needs no more steps than its longest sequence
        x = x[:lengths.max()]
        y = y if data.readout == "last" else y[:lengths.max()]
    return x, y, lengths


@np.errstate(over="ignore", invalid="ignore")
def score(model, data, split, batch_size, stream=None):
    """Mean loss and metric over a split (weighted by sequences), and the predictions.

    Returns (loss, metric, predictions), predictions being a dict: "pred", and
    the split's other arrays but x ("y", and "clean", "level", "lengths" where
    the task has them). stream=(tracks, k): score the split as truncated BPTT
    trains (``streams``): contiguous tracks, k steps at a time, state carried.
    """
    if stream is not None:
        return score_stream(model, data, split, *stream)
    arrays = data.splits[split]
    n = arrays["x"].shape[1]
    total_loss = total_metric = 0.0
    preds = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        xb, yb, lb = batch(model, data, arrays, idx)
        pred = model.forward(xb, lengths=lb)
        loss, _, metric = loss_fn(data, pred, yb, lb)
        total_loss += loss * idx.size
        total_metric += metric * idx.size
        preds.append(pred)
    if data.readout == "last":
        pred = np.concatenate(preds, axis=0)
    else:  # batches may stop at their longest sequence: pad back to the split's T
        T = arrays["x"].shape[0]
        pred = np.concatenate([np.pad(p, ((0, T - p.shape[0]), (0, 0), (0, 0)))
                               for p in preds], axis=1)
    predictions = {"pred": pred, **{k: v for k, v in arrays.items() if k != "x"}}
    return total_loss / n, total_metric / n, predictions


@np.errstate(over="ignore", invalid="ignore")
def score_stream(model, data, split, n_tracks, k):
    """score() of a split read as contiguous tracks, k steps at a time, state carried.

    Text: n_tracks tracks. Forecasts (windows of one series): the split is one
    track that starts at its first window, so the steps predicted and scored
    are the windows' own (the first with the same context as its window, later
    ones with all the split before them), and the predictions line up with the
    split's arrays like score()'s: the task's baselines hold for them.
    """
    arrays = data.splits[split]
    forecast = data.readout == "last"
    x, y = streams.tracks(arrays, 1 if forecast else n_tracks)
    x = inputs(model, x)
    state, preds = None, []
    for xb, _ in streams.chunks(x, y, k):
        preds.append(model.forward(xb, state0=state, readout="all"))
        state = model.state
    pred = np.concatenate(preds)
    if not forecast:
        loss, _, metric = loss_fn(data, pred, y)
        return loss, metric, {"pred": pred, "y": y}
    pred = pred[-arrays["y"].shape[0]:, 0]  # the windows' steps: the last N of the track
    loss, _, metric = loss_fn(data, pred, arrays["y"])
    return loss, metric, {"pred": pred, **{k: v for k, v in arrays.items() if k != "x"}}


def stream_of(train_cfg):
    """(tracks, k) of a training config with truncated BPTT, else None."""
    return (train_cfg.batch_size, train_cfg.tbptt) if train_cfg.tbptt else None


def score_test_split(model, data, batch_size, stream=None):
    """The test split's metrics, named for the task, beside every baseline; and the
    predictions. Series add the test MSE in the data's original units."""
    loss, metric, predictions = score(model, data, "test", batch_size, stream)
    name = "test_accuracy" if data.kind == "classification" else "test_mse"
    metrics = {"test_loss": loss, name: metric, "baseline": data.baseline, **data.baselines}
    if "scale" in data.meta:
        metrics["test_mse_original"] = metric * data.meta["scale"][1] ** 2
    return metrics, predictions
