"""Building a model for a data set, its loss, and scoring it on a split.

``score`` is the one place a split is scored: the loop calls it on the
validation split after every epoch; the `evaluate` stage and a Hydra job
call it once on the test split.
"""
import numpy as np

from ..nn import losses
from ..nn.model import Model


def build_model(cfg, data):
    """The model cfg describes, shaped for data (embedding for tokens, its readout)."""
    m = cfg.model
    tokens = data.vocab_size is not None
    return Model(str(m.cell), m.embedding_dim if tokens else data.input_size, m.hidden_size,
                 data.output_size, num_layers=m.num_layers, bidirectional=m.bidirectional,
                 nonlinearity=str(m.nonlinearity), dropout=m.dropout, init=m.init,
                 dtype=np.dtype(str(m.dtype)), seed=cfg.seed,
                 vocab_size=data.vocab_size if tokens else None, readout=data.readout)


def loss_fn(data, pred, y):
    """(loss, dL/dpred, metric): MSE for regression; cross-entropy and accuracy otherwise."""
    if data.kind == "regression":
        loss, grad = losses.mse(pred, y)
        return loss, grad, loss
    loss, grad = losses.cross_entropy(pred, y)
    return loss, grad, losses.accuracy(pred, y)


def inputs(model, x):
    """x as the model takes it: tokens stay integers, values take the model's dtype."""
    return x if model.vocab_size is not None else x.astype(model.dtype)


@np.errstate(over="ignore", invalid="ignore")
def score(model, data, split, batch_size):
    """Mean loss and metric over a split (weighted by sequences), and the predictions.

    Returns (loss, metric, predictions), predictions being a dict: "pred", and
    the split's other arrays but x ("y", and "clean" where the task has it).
    """
    x, y = inputs(model, data.splits[split]["x"]), data.splits[split]["y"]
    n = x.shape[1]
    batch_axis = 0 if data.readout == "last" else 1
    total_loss = total_metric = 0.0
    preds = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        pred = model.forward(np.take(x, idx, axis=1))
        loss, _, metric = loss_fn(data, pred, np.take(y, idx, axis=batch_axis))
        total_loss += loss * idx.size
        total_metric += metric * idx.size
        preds.append(pred)
    predictions = {"pred": np.concatenate(preds, axis=batch_axis),
                   **{k: v for k, v in data.splits[split].items() if k != "x"}}
    return total_loss / n, total_metric / n, predictions


def score_test_split(model, data, batch_size):
    """The test split's metrics (named for the task) and predictions."""
    loss, metric, predictions = score(model, data, "test", batch_size)
    name = "test_accuracy" if data.kind == "classification" else "test_mse"
    return {"test_loss": loss, name: metric, "baseline": data.baseline}, predictions
