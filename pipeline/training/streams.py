"""Truncated backpropagation through time on a contiguous stream (char-rnn's training).

The text task's windows are consecutive pieces of one corpus; here they are
joined back into the split's stream and cut into B parallel contiguous tracks.
Training walks the tracks K steps at a time, carrying the hidden state from
one chunk to the next (gradients stop at chunk boundaries: no dstate flows
back), and starts each epoch from a zero state. Scoring walks a split the same
way, so every character is predicted with all the context before it on its track.
"""
import numpy as np


def stream(arrays):
    """(inputs, targets) 1-D of a split of non-overlapping windows x (T, N), y (T, N):
    targets[t] is the character after inputs[t]."""
    return arrays["x"].T.ravel(), arrays["y"].T.ravel()


def tracks(arrays, n_tracks):
    """(x, y) of shape (L, n_tracks): the split's stream cut into contiguous tracks
    (the last len % n_tracks characters are left out)."""
    inputs, targets = stream(arrays)
    L = inputs.size // n_tracks
    if L < 1:
        raise ValueError(f"a split of {inputs.size} characters cannot fill {n_tracks} tracks")
    return (inputs[:L * n_tracks].reshape(n_tracks, L).T.copy(),
            targets[:L * n_tracks].reshape(n_tracks, L).T.copy())


def chunks(x, y, k):
    """(x[t:t+k], y[t:t+k]) for t = 0, k, 2k, ...: the truncation points."""
    for t in range(0, x.shape[0], k):
        yield x[t:t + k], y[t:t + k]
