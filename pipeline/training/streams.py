"""Truncated backpropagation through time on a contiguous stream (char-rnn's training).

A split's windows are consecutive pieces of one sequence; here they are joined
back into the split's stream and cut into B parallel contiguous tracks.
Training walks the tracks K steps at a time, carrying the hidden state from
one chunk to the next (gradients stop at chunk boundaries: no dstate flows
back), and starts each epoch from a zero state. Scoring walks a split the same
way, so every step is predicted with all the context before it on its track.

Two kinds of windows make a stream:
- text: non-overlapping windows x (T, N) of tokens, y (T, N) the next tokens;
- forecasts (sine, series): overlapping windows x (T, N, D) that slide by one
  step, y (N, O) the value after each window (D = O: the target is the next
  input). The stream is the first window followed by each later window's last
  value; its first T - 1 targets lie inside the first window.
"""
import numpy as np

from .config import ConfigError


def stream(arrays):
    """(inputs, targets) of a split, in time order: targets[t] follows inputs[t].
    Text: 1-D tokens; forecasts: (L, D) and (L, O) values, L = T + N - 1."""
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 2:
        return x.T.ravel(), y.T.ravel()
    return (np.concatenate([x[:, 0], x[-1, 1:]]),
            np.concatenate([x[1:, 0], y]).astype(x.dtype, copy=False))


def tracks(arrays, n_tracks):
    """(x, y) of shape (L, n_tracks, ...): the split's stream cut into contiguous tracks
    (the last len % n_tracks steps are left out)."""
    inputs, targets = stream(arrays)
    L = len(inputs) // n_tracks
    if L < 1:
        raise ValueError(f"a split of {len(inputs)} steps cannot fill {n_tracks} tracks")

    def cut(a):
        return np.ascontiguousarray(np.swapaxes(a[:L * n_tracks].reshape(n_tracks, L,
                                                                         *a.shape[1:]), 0, 1))
    return cut(inputs), cut(targets)


def check_tracks(splits, n_tracks, forecast):
    """ConfigError naming train.batch_size where a split's stream has fewer steps than
    tracks (the training split; for text, val and test too: forecasts score those as
    one track each)."""
    for name in ("train",) if forecast else ("train", "val", "test"):
        steps = len(stream(splits[name])[0])
        if steps < n_tracks:
            raise ConfigError(f"train.batch_size {n_tracks} is more tracks than the {name}"
                              f" split's {steps} steps can fill (train.tbptt reads a split as"
                              f" train.batch_size contiguous tracks): expected at most {steps}")


def chunks(x, y, k):
    """(x[t:t+k], y[t:t+k]) for t = 0, k, 2k, ...: the truncation points."""
    for t in range(0, x.shape[0], k):
        yield x[t:t + k], y[t:t + k]
