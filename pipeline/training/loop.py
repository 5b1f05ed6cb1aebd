"""The training loop: mini-batches, epochs, validation, checkpoints.

    result = fit(cfg, data, checkpoint="run/ckpt.pkl")

cfg is a plain config object (``config.Config``); data a ``data.Dataset``.
The same config and seed give bit-identical results, and a run resumed from
its checkpoint ends exactly as one that was never interrupted. A non-finite
loss or gradient is an outcome, not a crash: the run stops, the weights stay
those of the last good step, and the result says ``diverged`` with the epoch
and step. The test split is not touched here (``scoring.score_test_split``).
"""
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..nn import optim
from ..nn.model import Model
from . import checkpoint as ckpt
from . import streams
from .config import optimizer_params
from .scoring import batch, build_model, inputs, loss_fn, score, stream_of


@dataclasses.dataclass
class Result:
    model: Model             # with the weights of the best validation epoch (train.keep_best)
    history: dict            # per epoch: epoch, train_loss, val_loss, val_metric, grad_norm, ...
    step_grad_norms: list    # pre-clip global gradient norm of every step
    dh_norms: dict           # epoch -> ‖dL/dh_t‖ (layers, directions, T) of its last batch
    metrics: dict            # epochs_run, best_epoch, wall_time_s, sequences_per_s, diverged
    outcome: str             # "finished" or "diverged"
    diverged_at: dict | None  # {"epoch": e, "step": s} (step counts from 0 within the epoch)


@dataclasses.dataclass
class Progress:
    """Where a run stands after an epoch: all a checkpoint needs besides the weights,
    the optimizer and the random generators."""
    epoch: int = -1                 # the last finished epoch
    history: dict = dataclasses.field(default_factory=lambda: {k: [] for k in (
        "epoch", "train_loss", "val_loss", "val_metric", "grad_norm", "grad_norm_max",
        "seconds")})
    step_norms: list = dataclasses.field(default_factory=list)
    dh_norms: dict = dataclasses.field(default_factory=dict)
    outcome: str = "finished"
    diverged_at: dict | None = None
    train_time: float = 0.0
    seen: int = 0
    best_epoch: int | None = None   # the epoch of the lowest validation loss so far
    best_val: float = math.inf
    best_params: dict | None = None
    stall: int = 0                  # epochs since the best one
    stopped_early: bool = False


def _batches(model, data, train, bs, shuffle, tracks, k):
    """(x, y, lengths) of each step of an epoch: shuffled batches of windows, or the
    chunks of k steps of the training tracks (x, y) in order."""
    if tracks is not None:
        yield from ((xb, yb, None) for xb, yb in streams.chunks(*tracks, k))
        return
    n = train["x"].shape[1]
    order = shuffle.permutation(n)
    for start in range(0, n, bs):
        yield batch(model, data, train, order[start:start + bs])


def build_optimizer(cfg, params):
    return optim.OPTIMIZERS[str(cfg.optimizer.name)](params, **optimizer_params(cfg.optimizer))


def fit(cfg, data, checkpoint=None, on_epoch=None, on_resume=None, progress=None):
    """Train cfg's model on data; return a Result.

    Each epoch ends with the validation score. With train.keep_best the returned
    model holds the weights of the epoch with the lowest validation loss; with
    train.patience > 0 training stops after that many epochs without a new best.
    With train.tbptt = K > 0 (text, sine, series) the training split is read as
    batch_size contiguous tracks, K steps at a time, the hidden state carried from
    chunk to chunk and reset at each epoch's start, a prediction at every step
    (``streams``); validation is scored the same way.
    checkpoint: a file path; written after every epoch, and resumed from if it
    exists (it must belong to this config and data: checkpoint.run_key). Epochs
    start from a zero state, so an epoch's end holds no carried state to save.
    on_epoch(row, model): called with each epoch's history row as it finishes.
    on_resume(history): called once with the history restored from the checkpoint.
    progress: show a progress bar (default: when stderr is a terminal).
    """
    stream = stream_of(cfg.train)
    if stream:
        streams.check_tracks(data.splits, cfg.train.batch_size, data.readout == "last")
    model = build_model(cfg, data)
    opt = build_optimizer(cfg, model.params)
    shuffle = np.random.default_rng([cfg.seed, 3])
    key = ckpt.run_key(cfg, data)
    state = Progress()
    if checkpoint is not None and Path(checkpoint).exists():
        saved = ckpt.load(checkpoint, key)
        model.load_params(saved["params"])
        opt.load_state_dict(saved["optimizer"])
        shuffle.bit_generator.state = saved["shuffle_rng"]
        model.rnn._dropout_rng.bit_generator.state = saved["dropout_rng"]
        state = Progress(**saved["progress"])
        if on_resume is not None:
            on_resume(state.history)

    def snapshot():
        ckpt.save(checkpoint, dict(
            key=key, params=model.params, optimizer=opt.state_dict(),
            shuffle_rng=shuffle.bit_generator.state,
            dropout_rng=model.rnn._dropout_rng.bit_generator.state,
            progress=dataclasses.asdict(state)))

    train = data.splits["train"]
    n, bs = train["x"].shape[1], cfg.train.batch_size
    tracks = None
    if stream:  # cut once: every epoch reads the same tracks
        x, y = streams.tracks(train, bs)
        tracks = (inputs(model, x), y)
    batches = math.ceil(tracks[0].shape[0] / cfg.train.tbptt) if stream else math.ceil(n / bs)
    epochs = cfg.train.epochs
    show = sys.stderr.isatty() if progress is None else progress
    running = state.outcome == "finished" and not state.stopped_early
    bar = tqdm(total=(epochs - state.epoch - 1) * batches, disable=not show or not running,
               desc=f"{cfg.model.cell} {data.task}", unit="batch", leave=False)
    for epoch in range(state.epoch + 1, epochs if running else 0):
        t0 = time.perf_counter()
        epoch_loss, epoch_weight, epoch_norms, carried = 0.0, 0, [], None
        steps = _batches(model, data, train, bs, shuffle, tracks, cfg.train.tbptt)
        for step, (xb, yb, lb) in enumerate(steps):
            with np.errstate(over="ignore", invalid="ignore"):
                pred = model.forward(xb, training=True, lengths=lb, state0=carried,
                                     readout="all" if stream else None)
                carried = model.state if stream else None
                loss, dpred, _ = loss_fn(data, pred, yb, lb)
                try:
                    grads = model.backward(dpred) if math.isfinite(loss) else None
                except FloatingPointError:
                    grads = None
            norm = optim.grad_norm(grads) if grads is not None else math.nan
            state.step_norms.append(norm)
            if not (math.isfinite(loss) and math.isfinite(norm)):
                state.outcome, state.diverged_at = "diverged", {"epoch": epoch, "step": step}
                break
            if cfg.clip.kind == "norm":
                optim.clip_grad_norm(grads, cfg.clip.threshold)
            elif cfg.clip.kind == "value":
                optim.clip_grad_value(grads, cfg.clip.threshold)
            opt.step(grads)
            epoch_norms.append(norm)
            weight = yb.size if stream or data.readout == "all" else len(yb)
            epoch_loss += loss * weight
            epoch_weight += weight
            state.seen += xb.shape[1]
            bar.update()
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        seconds = time.perf_counter() - t0
        state.train_time += seconds
        if state.outcome != "finished":
            if checkpoint is not None:
                snapshot()
            break
        if (epoch + 1) % cfg.train.diagnose_every == 0 or epoch == epochs - 1:
            state.dh_norms[epoch] = model.rnn.dh_norms.astype(np.float64)
        val_loss, val_metric, _ = score(model, data, "val", cfg.train.eval_batch_size, stream)
        row = dict(epoch=epoch, train_loss=epoch_loss / epoch_weight, val_loss=val_loss,
                   val_metric=val_metric, grad_norm=float(np.mean(epoch_norms)),
                   grad_norm_max=float(np.max(epoch_norms)), seconds=seconds)
        for k, v in row.items():
            state.history[k].append(v)
        state.epoch = epoch
        if math.isfinite(val_loss) and val_loss < state.best_val:
            state.best_epoch, state.best_val, state.stall = epoch, val_loss, 0
            state.best_params = {k: v.copy() for k, v in model.params.items()}
        else:
            state.stall += 1
        state.stopped_early = 0 < cfg.train.patience <= state.stall
        if checkpoint is not None:
            snapshot()
        if on_epoch is not None:
            on_epoch(row, model)
        if state.stopped_early:
            break
    bar.close()
    if cfg.train.keep_best and state.best_params is not None:
        model.load_params(state.best_params)
    metrics = dict(epochs_run=len(state.history["epoch"]), wall_time_s=state.train_time,
                   sequences_per_s=state.seen / state.train_time if state.train_time > 0 else 0.0,
                   diverged=int(state.outcome == "diverged"),
                   best_epoch=-1 if state.best_epoch is None else state.best_epoch,
                   stopped_early=int(state.stopped_early))
    return Result(model, state.history, state.step_norms, state.dh_norms, metrics,
                  state.outcome, state.diverged_at)
