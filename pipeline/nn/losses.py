"""Losses with their gradients: mean squared error and softmax cross-entropy, maskable.

Each returns (loss, dL/dprediction). The loss is a Python float; the gradient
has the prediction's dtype and shape. A mask (bool, the prediction's shape
without its last axis) says which positions count; ``length_mask`` builds it
for sequences of different lengths, so padded steps contribute nothing.
"""
import numpy as np


def length_mask(lengths, T):
    """(T, B) bool: True at t < lengths[b], the valid steps of each sequence."""
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :]


def _keep(shape, mask, name):
    """The mask as bool of `shape` (all True for None); ValueError names `name` if it
    has another shape or leaves nothing to count."""
    keep = np.ones(shape, bool) if mask is None else np.asarray(mask).astype(bool)
    if keep.shape != shape:
        raise ValueError(f"{name}: mask has shape {keep.shape}, expected {shape}")
    if not keep.any():
        raise ValueError(f"{name}: the mask leaves no position to count")
    return keep


def mse(pred, target, mask=None):
    """Mean of (pred - target)^2 over every element of the counted positions.

    pred, target (..., O); mask (...) bool, False where a position does not
    count (None: all count), as torch's mse_loss(pred[mask], target[mask]).
    """
    diff = pred - target.astype(pred.dtype, copy=False)
    count = diff.size
    if mask is not None:
        keep = _keep(pred.shape[:-1], mask, "mse")
        diff *= keep[..., None]
        count = int(keep.sum()) * pred.shape[-1]
    loss = float(np.sum(np.square(diff, dtype=np.float64))) / count
    return loss, diff * pred.dtype.type(2.0 / count)


def log_softmax(logits):
    """log softmax over the last axis, shifted by the max so exp never overflows."""
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def cross_entropy(logits, target, mask=None):
    """Mean negative log-likelihood (nats) of integer targets over counted positions.

    logits (..., C); target (...) ints in [0, C); mask (...) bool, False where a
    position does not count (None: all count).
    """
    logp = log_softmax(logits)
    keep = _keep(target.shape, mask, "cross_entropy")
    count = int(keep.sum())
    picked = np.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
    loss = -float(np.sum(picked[keep], dtype=np.float64)) / count
    grad = np.exp(logp)
    np.put_along_axis(grad, target[..., None],
                      np.take_along_axis(grad, target[..., None], axis=-1) - 1, axis=-1)
    grad *= (keep / count).astype(logits.dtype)[..., None]
    return loss, grad


def accuracy(logits, target, mask=None):
    """Share of counted positions whose arg-max class is the target."""
    keep = np.ones(target.shape, bool) if mask is None else mask.astype(bool)
    return float(np.mean((logits.argmax(axis=-1) == target)[keep]))
