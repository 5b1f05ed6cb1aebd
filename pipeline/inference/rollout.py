"""Multi-step recursive forecasts: each prediction is fed back as the next input.

For a model that predicts the next value of a window (tasks sine and series),
`rollout` forecasts h = 1..H steps ahead; `horizon_errors` scores it on a
split's consecutive windows against persistence (the last observed value held
for every step), both in the data's original units.

A model trained with truncated BPTT reads the series as a stream: there,
`stream_rollout` starts each forecast from the state after all of the split
up to its window's end (the context it was scored with), not from a zero
state at the window's start.
"""
import numpy as np

from ..training import streams


def rollout(model, windows, steps):
    """Forecasts (steps, B) in the model's units from windows (T, B, 1), recursively."""
    window = np.ascontiguousarray(windows, dtype=model.dtype)
    out = np.empty((steps, window.shape[1]), np.float64)
    for h in range(steps):
        pred = model.forward(window)[:, 0]
        out[h] = pred
        window = np.concatenate([window[1:], pred[None, :, None].astype(model.dtype)], axis=0)
    return out


def _stack(states):
    """Per-step states (each (layers*dirs, 1, H), or an LSTM's (h, c) pair) as one batch."""
    if isinstance(states[0], tuple):
        return tuple(np.concatenate(part, axis=1) for part in zip(*states))
    return np.concatenate(states, axis=1)


def stream_rollout(model, arrays, starts, steps):
    """Forecasts (steps, len(starts)) in the model's units, each from the state after the
    split's stream up to the end of window `start` (one track from the split's first
    window, as ``scoring.score_stream`` reads it), recursively."""
    inputs, _ = streams.stream(arrays)
    x = np.ascontiguousarray(inputs[:, None], dtype=model.dtype)           # (L, 1, D)
    ends = [int(i) + arrays["x"].shape[0] - 1 for i in starts]   # each window's last step
    state, kept = None, {}
    for t in range(max(ends) + 1):
        pred = model.forward(x[t:t + 1], state0=state, readout="all")
        state = model.state
        kept[t] = state, pred[0, 0, 0]
    out = np.empty((steps, len(ends)), np.float64)
    out[0] = [kept[t][1] for t in ends]
    state = _stack([kept[t][0] for t in ends])
    for h in range(1, steps):
        value = out[h - 1][None, :, None].astype(model.dtype)
        out[h] = model.forward(value, state0=state, readout="all")[0, :, 0]
        state = model.state
    return out


def to_original(values, level, scale, differenced):
    """Model units -> original units. values (H, N); level (N,): the last observed
    value before each forecast's first step (differenced series)."""
    mean, std = scale
    steps = values * std + mean
    return level[None, :] + np.cumsum(steps, axis=0) if differenced else steps


def horizon_errors(model, arrays, meta, horizon, stream=False):
    """MSE by horizon of the model's rollouts and of persistence on one split.

    arrays: the split ("x" (T, N, 1), "y" (N, 1), and "level" for series); windows
    must be consecutive in time (window i+1 is window i one step later).
    stream: forecast from the stream's state (``stream_rollout``), not each window's.
    Returns (table, example): table has horizon, model_mse, persistence_mse;
    example holds the truth and the forecast from a few starting points.
    """
    x, y = arrays["x"], arrays["y"][:, 0]
    n = x.shape[1] - horizon + 1
    if n < 1:
        raise ValueError(f"horizon must be at most {x.shape[1]} (the split's windows),"
                         f" got {horizon}")
    scale = meta.get("scale", [0.0, 1.0])
    differenced = bool(meta.get("differenced", False))
    level = arrays["level"][:, 0] if "level" in arrays else np.zeros(x.shape[1])
    starts = np.arange(n)
    steps = stream_rollout(model, arrays, starts, horizon) if stream else \
        rollout(model, x[:, starts], horizon)
    forecast = to_original(steps, level[starts], scale, differenced)                 # (H, n)
    truth_all = level + y * scale[1] + scale[0]                                      # (N,)
    truth = np.stack([truth_all[starts + h] for h in range(horizon)])                # (H, n)
    last = level[starts] if differenced else x[-1, starts, 0] * scale[1] + scale[0]  # (n,)
    table = {"horizon": np.arange(1, horizon + 1),
             "model_mse": np.mean((forecast - truth) ** 2, axis=1),
             "persistence_mse": np.mean((last[None, :] - truth) ** 2, axis=1)}
    picks = np.linspace(0, n - 1, min(4, n)).astype(int)
    example = {"truth": truth_all, "starts": picks, "forecasts": forecast[:, picks]}
    return table, example
