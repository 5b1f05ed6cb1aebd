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
from .config import optimizer_params
from .scoring import build_model, inputs, loss_fn, score


@dataclasses.dataclass
class Result:
    model: Model
    history: dict            # per epoch: epoch, train_loss, val_loss, val_metric, grad_norm, ...
    step_grad_norms: list    # pre-clip global gradient norm of every step
    dh_norms: dict           # epoch -> ‖dL/dh_t‖ (layers, directions, T) of its last batch
    metrics: dict            # epochs_run, wall_time_s, sequences_per_s, diverged
    outcome: str             # "finished" or "diverged"
    diverged_at: dict | None  # {"epoch": e, "step": s} (step counts from 0 within the epoch)


def build_optimizer(cfg, params):
    return optim.OPTIMIZERS[str(cfg.optimizer.name)](params, **optimizer_params(cfg.optimizer))


def fit(cfg, data, checkpoint=None, on_epoch=None, on_resume=None, progress=None):
    """Train cfg's model on data; return a Result.

    checkpoint: a file path; written after every epoch, and resumed from if it
    exists (it must belong to this config and data: checkpoint.run_key).
    on_epoch(row): called with each epoch's history row as it finishes.
    on_resume(history): called once with the history restored from the checkpoint.
    progress: show a progress bar (default: when stderr is a terminal).
    """
    model = build_model(cfg, data)
    opt = build_optimizer(cfg, model.params)
    shuffle = np.random.default_rng([cfg.seed, 3])
    key = ckpt.run_key(cfg, data)
    history = {k: [] for k in ("epoch", "train_loss", "val_loss", "val_metric", "grad_norm",
                               "grad_norm_max", "seconds")}
    step_norms, dh_norms = [], {}
    start_epoch, outcome, diverged_at, train_time, seen = 0, "finished", None, 0.0, 0
    if checkpoint is not None and Path(checkpoint).exists():
        st = ckpt.load(checkpoint, key)
        model.load_params(st["params"])
        opt.load_state_dict(st["optimizer"])
        shuffle.bit_generator.state = st["shuffle_rng"]
        model.rnn._dropout_rng.bit_generator.state = st["dropout_rng"]
        history, step_norms, dh_norms = st["history"], st["step_grad_norms"], st["dh_norms"]
        start_epoch, outcome, diverged_at = st["epoch"] + 1, st["outcome"], st["diverged_at"]
        train_time, seen = st["train_time"], st["seen"]
        if on_resume is not None:
            on_resume(history)

    def snapshot(epoch):
        ckpt.save(checkpoint, dict(
            key=key, epoch=epoch, params=model.params, optimizer=opt.state_dict(),
            shuffle_rng=shuffle.bit_generator.state,
            dropout_rng=model.rnn._dropout_rng.bit_generator.state, history=history,
            step_grad_norms=step_norms, dh_norms=dh_norms, outcome=outcome,
            diverged_at=diverged_at, train_time=train_time, seen=seen))

    x = inputs(model, data.splits["train"]["x"])
    y = data.splits["train"]["y"]
    n, bs = x.shape[1], cfg.train.batch_size
    batches = math.ceil(n / bs)
    epochs = cfg.train.epochs
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=(epochs - start_epoch) * batches, disable=not show or outcome != "finished",
               desc=f"{cfg.model.cell} {data.task}", unit="batch", leave=False)
    for epoch in range(start_epoch, epochs):
        if outcome != "finished":
            break
        t0 = time.perf_counter()
        order = shuffle.permutation(n)
        epoch_loss, epoch_norms = 0.0, []
        for step in range(batches):
            idx = order[step * bs:(step + 1) * bs]
            xb = np.take(x, idx, axis=1)
            yb = np.take(y, idx, axis=0 if data.readout == "last" else 1)
            with np.errstate(over="ignore", invalid="ignore"):
                pred = model.forward(xb, training=True)
                loss, dpred, _ = loss_fn(data, pred, yb)
                try:
                    grads = model.backward(dpred) if math.isfinite(loss) else None
                except FloatingPointError:
                    grads = None
            norm = optim.grad_norm(grads) if grads is not None else math.nan
            if not (math.isfinite(loss) and math.isfinite(norm)):
                outcome, diverged_at = "diverged", {"epoch": epoch, "step": step}
                step_norms.append(norm)
                break
            if cfg.clip.kind == "norm":
                optim.clip_grad_norm(grads, cfg.clip.threshold)
            elif cfg.clip.kind == "value":
                optim.clip_grad_value(grads, cfg.clip.threshold)
            opt.step(grads)
            step_norms.append(norm)
            epoch_norms.append(norm)
            epoch_loss += loss * idx.size
            seen += idx.size
            bar.update()
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        seconds = time.perf_counter() - t0
        train_time += seconds
        if outcome != "finished":
            break
        if (epoch + 1) % cfg.train.diagnose_every == 0 or epoch == epochs - 1:
            dh_norms[epoch] = model.rnn.dh_norms.astype(np.float64)
        val_loss, val_metric, _ = score(model, data, "val", cfg.train.eval_batch_size)
        row = dict(epoch=epoch, train_loss=epoch_loss / n, val_loss=val_loss,
                   val_metric=val_metric, grad_norm=float(np.mean(epoch_norms)),
                   grad_norm_max=float(np.max(epoch_norms)), seconds=seconds)
        for k, v in row.items():
            history[k].append(v)
        if checkpoint is not None:
            snapshot(epoch)
        if on_epoch is not None:
            on_epoch(row)
    bar.close()
    if outcome == "diverged" and checkpoint is not None:
        snapshot(diverged_at["epoch"])

    metrics = dict(epochs_run=len(history["epoch"]), wall_time_s=train_time,
                   sequences_per_s=seen / train_time if train_time > 0 else 0.0,
                   diverged=int(outcome == "diverged"))
    return Result(model, history, step_norms, dh_norms, metrics, outcome, diverged_at)
