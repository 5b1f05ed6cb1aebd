"""Losses with their gradients: mean squared error and masked softmax cross-entropy.

Each returns (loss, dL/dprediction). The loss is a Python float; the gradient
has the prediction's dtype and shape.
"""
import numpy as np


def mse(pred, target):
    """Mean of (pred - target)^2 over every element."""
    diff = pred - target.astype(pred.dtype, copy=False)
    loss = float(np.mean(np.square(diff, dtype=np.float64)))
    return loss, diff * pred.dtype.type(2.0 / diff.size)


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
    keep = np.ones(target.shape, bool) if mask is None else mask.astype(bool)
    count = int(keep.sum())
    if count == 0:
        raise ValueError("cross_entropy: the mask leaves no position to count")
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
