"""The training loop: mini-batches, epochs, validation, test, checkpoints.

    result = fit(cfg, data, checkpoint="run/ckpt.pkl")

cfg is a plain config object (``config.Config`` or an OmegaConf node of the
same shape); data a ``tasks.Dataset``. The same config and seed give
bit-identical results, and a run resumed from its checkpoint ends exactly as
one that was never interrupted. A non-finite loss or gradient is an outcome,
not a crash: the run stops, the weights stay those of the last good step,
and the result says ``diverged`` with the epoch and step.
"""
import dataclasses
import hashlib
import json
import math
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import losses, optim
from .config import optimizer_params
from .model import Model


@dataclasses.dataclass
class Result:
    model: Model
    history: dict            # per epoch: epoch, train_loss, val_loss, val_metric, grad_norm, ...
    step_grad_norms: list    # pre-clip global gradient norm of every step
    dh_norms: dict           # epoch -> ‖dL/dh_t‖ (layers, directions, T) of its last batch
    metrics: dict            # test_loss, test_metric, baseline, wall_time_s, sequences_per_s, ...
    outcome: str             # "finished" or "diverged"
    diverged_at: dict | None  # {"epoch": e, "step": s} (step counts from 0 within the epoch)
    predictions: dict        # test split: "pred", "y" (and "clean" where the task has it)


def build_model(cfg, data):
    m = cfg.model
    tokens = data.vocab_size is not None
    return Model(m.cell, m.embedding_dim if tokens else data.input_size, m.hidden_size,
                 data.output_size, num_layers=m.num_layers, bidirectional=m.bidirectional,
                 nonlinearity=m.nonlinearity, dropout=m.dropout, init=m.init,
                 dtype=np.dtype(m.dtype), seed=cfg.seed,
                 vocab_size=data.vocab_size if tokens else None, readout=data.readout)


def build_optimizer(cfg, params):
    return optim.OPTIMIZERS[cfg.optimizer.name](params, **optimizer_params(cfg.optimizer))


def loss_fn(data, pred, y):
    """(loss, dL/dpred, metric): MSE for regression; cross-entropy and accuracy otherwise."""
    if data.kind == "regression":
        loss, grad = losses.mse(pred, y)
        return loss, grad, loss
    loss, grad = losses.cross_entropy(pred, y)
    return loss, grad, losses.accuracy(pred, y)


def _inputs(model, x):
    return x if model.vocab_size is not None else x.astype(model.dtype)


@np.errstate(over="ignore", invalid="ignore")
def evaluate(model, data, split, batch_size):
    """Mean loss and metric over a split (weighted by sequences), and the predictions."""
    x, y = _inputs(model, data.splits[split]["x"]), data.splits[split]["y"]
    n = x.shape[1]
    total_loss = total_metric = 0.0
    preds = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        pred = model.forward(np.take(x, idx, axis=1))
        yb = np.take(y, idx, axis=0 if data.readout == "last" else 1)
        loss, _, metric = loss_fn(data, pred, yb)
        total_loss += loss * idx.size
        total_metric += metric * idx.size
        preds.append(pred)
    return total_loss / n, total_metric / n, np.concatenate(preds, axis=0 if data.readout == "last" else 1)


def run_key(cfg, data):
    """What a checkpoint must match to be resumed: the config and the data."""
    cfg_dict = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else _plain(cfg)
    text = json.dumps(cfg_dict, sort_keys=True, default=str) + data.fingerprint
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(node):
    try:
        from omegaconf import OmegaConf
        return OmegaConf.to_container(node, resolve=True)
    except (ImportError, ValueError):
        return dict(node)


def _save_checkpoint(path, state):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)


def _load_checkpoint(path, key):
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except Exception as exc:
        raise ValueError(f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it"
                         " to start the run afresh") from None
    if state.get("key") != key:
        raise ValueError(f"checkpoint {path} belongs to another config or data set; delete it"
                         " or write this run's checkpoint elsewhere")
    return state


def fit(cfg, data, checkpoint=None, on_epoch=None, progress=None):
    """Train cfg's model on data; return a Result.

    checkpoint: a file path; written after every epoch, and resumed from if it
    exists. on_epoch(record): called with each epoch's history row.
    progress: show a progress bar (default: when stderr is a terminal).
    """
    model = build_model(cfg, data)
    opt = build_optimizer(cfg, model.params)
    shuffle = np.random.default_rng([cfg.seed, 3])
    key = run_key(cfg, data)
    history = {k: [] for k in ("epoch", "train_loss", "val_loss", "val_metric", "grad_norm",
                               "grad_norm_max", "seconds")}
    step_norms, dh_norms = [], {}
    start_epoch, outcome, diverged_at, train_time, seen = 0, "finished", None, 0.0, 0
    if checkpoint is not None and Path(checkpoint).exists():
        st = _load_checkpoint(checkpoint, key)
        model.load_params(st["params"])
        opt.load_state_dict(st["optimizer"])
        shuffle.bit_generator.state = st["shuffle_rng"]
        model.rnn._dropout_rng.bit_generator.state = st["dropout_rng"]
        history, step_norms, dh_norms = st["history"], st["step_grad_norms"], st["dh_norms"]
        start_epoch, outcome, diverged_at = st["epoch"] + 1, st["outcome"], st["diverged_at"]
        train_time, seen = st["train_time"], st["seen"]

    def snapshot(epoch):
        _save_checkpoint(checkpoint, dict(
            key=key, epoch=epoch, params=model.params, optimizer=opt.state_dict(),
            shuffle_rng=shuffle.bit_generator.state,
            dropout_rng=model.rnn._dropout_rng.bit_generator.state, history=history,
            step_grad_norms=step_norms, dh_norms=dh_norms, outcome=outcome,
            diverged_at=diverged_at, train_time=train_time, seen=seen))

    x = _inputs(model, data.splits["train"]["x"])
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
        val_loss, val_metric, _ = evaluate(model, data, "val", cfg.train.eval_batch_size)
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

    test_loss, test_metric, pred = evaluate(model, data, "test", cfg.train.eval_batch_size)
    predictions = {"pred": pred, **{k: v for k, v in data.splits["test"].items() if k != "x"}}
    metrics = dict(test_loss=test_loss, test_metric=test_metric, baseline=data.baseline,
                   epochs_run=len(history["epoch"]), wall_time_s=train_time,
                   sequences_per_s=seen / train_time if train_time > 0 else 0.0,
                   diverged=int(outcome == "diverged"))
    if data.kind == "classification":
        metrics["test_accuracy"] = test_metric
    return Result(model, history, step_norms, dh_norms, metrics, outcome, diverged_at,
                  predictions)
