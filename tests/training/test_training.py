"""The training loop: each task learns, runs repeat bit for bit, resume, divergence."""
import dataclasses
import math

import numpy as np
import pytest

from pipeline import data as tasks
from pipeline.training import loop as training
from pipeline.training.scoring import score, score_test_split
from pipeline.training.config import (AdamConfig, AddingConfig, ClipConfig, Config, CopyConfig,
                             ModelConfig, SGDConfig, SineConfig, TextConfig, TrainConfig)


def small(task, **model):
    """A config and data set that train in about a second."""
    if task == "sine":
        t, data = SineConfig(length=10), tasks.make('sine', length=10, n_points=800)
        m = ModelConfig(cell="lstm", hidden_size=16, dtype="float64")
    elif task == "adding":
        t = AddingConfig(length=20)
        data = tasks.make('adding', length=20, n_train=2000, n_val=200, n_test=200)
        m = ModelConfig(cell="lstm", hidden_size=32)
    elif task == "copy":
        t = CopyConfig(length=5)
        data = tasks.make('copy', length=5, n_copy=3, n_train=2000, n_val=200, n_test=200)
        m = ModelConfig(cell="lstm", hidden_size=32, embedding_dim=8)
    else:
        t, data = TextConfig(length=32), tasks.make('text', length=32, max_chars=30000)
        m = ModelConfig(cell="gru", hidden_size=64)
    m = dataclasses.replace(m, **model)
    cfg = Config(model=m, optimizer=AdamConfig(lr=0.01), task=t,
                 train=TrainConfig(epochs=6, batch_size=32))
    return cfg, data


def _test_loss(result, data):
    return score_test_split(result.model, data, 256)[0]["test_loss"]


@pytest.mark.parametrize("task", ["sine", "adding", "copy", "text"])
def test_each_task_learns(task):
    cfg, data = small(task)
    r = training.fit(cfg, data, progress=False)
    assert r.outcome == "finished"
    loss = _test_loss(r, data)
    if task == "sine":
        assert loss < 0.5 * data.baseline           # well below persistence
    elif task == "adding":
        assert loss < 0.05 < 1 / 6                   # the constant-1 baseline
    else:
        assert loss < 0.8 * data.baseline            # memoryless / unigram entropy
    assert r.history["val_loss"][-1] < r.history["val_loss"][0]


def test_same_seed_gives_bit_identical_results():
    cfg, data = small("copy", dropout=0.2, num_layers=2)
    a, b = training.fit(cfg, data, progress=False), training.fit(cfg, data, progress=False)
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])
    assert a.step_grad_norms == b.step_grad_norms
    assert {k: v for k, v in a.metrics.items() if "time" not in k and "per_s" not in k} == \
        {k: v for k, v in b.metrics.items() if "time" not in k and "per_s" not in k}
    assert _test_loss(a, data) == _test_loss(b, data)
    c = training.fit(dataclasses.replace(cfg, seed=1), data, progress=False)
    assert _test_loss(c, data) != _test_loss(a, data)


class Interrupt(Exception):
    pass


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    cfg, data = small("copy", dropout=0.2, num_layers=2)
    whole = training.fit(cfg, data, checkpoint=tmp_path / "whole.pkl", progress=False)

    def stop_after_two(row, model):
        if row["epoch"] == 1:
            raise Interrupt

    ckpt = tmp_path / "resumed.pkl"
    with pytest.raises(Interrupt):
        training.fit(cfg, data, checkpoint=ckpt, on_epoch=stop_after_two, progress=False)
    resumed = training.fit(cfg, data, checkpoint=ckpt, progress=False)
    for name in whole.model.params:
        np.testing.assert_array_equal(whole.model.params[name], resumed.model.params[name])
    for key in ("train_loss", "val_loss", "val_metric", "grad_norm"):
        assert whole.history[key] == resumed.history[key]
    assert _test_loss(whole, data) == _test_loss(resumed, data)
    assert whole.step_grad_norms == resumed.step_grad_norms


def test_checkpoint_of_another_config_is_refused(tmp_path):
    cfg, data = small("sine")
    training.fit(dataclasses.replace(cfg, train=TrainConfig(epochs=1)), data,
                 checkpoint=tmp_path / "c.pkl", progress=False)
    with pytest.raises(ValueError, match="c.pkl belongs to another config"):
        training.fit(cfg, data, checkpoint=tmp_path / "c.pkl", progress=False)


def test_divergence_is_an_outcome_and_clipping_prevents_it():
    data = tasks.make('adding', length=50, n_train=640, n_val=64, n_test=64, seed=1)
    base = Config(model=ModelConfig(cell="rnn", nonlinearity="relu", init="irnn",
                                    hidden_size=32, dtype="float64"),
                  optimizer=SGDConfig(lr=0.5, momentum=0.9), task=AddingConfig(length=50),
                  train=TrainConfig(epochs=3, batch_size=32), seed=0)
    r = training.fit(base, data, progress=False)
    assert r.outcome == "diverged" and r.metrics["diverged"] == 1
    assert set(r.diverged_at) == {"epoch", "step"}
    assert not math.isfinite(r.step_grad_norms[-1])
    assert all(np.isfinite(p).all() for p in r.model.params.values())
    clipped = training.fit(dataclasses.replace(base, clip=ClipConfig(kind="norm", threshold=1.0),
                                               optimizer=SGDConfig(lr=0.01, momentum=0.9)),
                           data, progress=False)
    assert clipped.outcome == "finished"


def test_records_grad_norms_dh_curves_and_throughput():
    cfg, data = small("sine")
    cfg = dataclasses.replace(cfg, train=TrainConfig(epochs=4, batch_size=64, diagnose_every=2))
    r = training.fit(cfg, data, progress=False)
    batches = math.ceil(data.splits["train"]["x"].shape[1] / 64)
    assert len(r.step_grad_norms) == 4 * batches
    assert sorted(r.dh_norms) == [1, 3] and r.dh_norms[3].shape == (1, 1, 10)
    assert r.metrics["sequences_per_s"] > 0 and r.metrics["wall_time_s"] > 0
    metrics, predictions = score_test_split(r.model, data, 100)
    assert predictions["pred"].shape == predictions["y"].shape
    assert set(metrics) == {"test_loss", "test_mse", "baseline", "baseline_persistence_mse",
                            "baseline_train_mean_mse"}


def test_the_model_is_the_best_validation_epoch_and_patience_stops_early():
    cfg, data = small("sine")
    cfg = dataclasses.replace(cfg, optimizer=AdamConfig(lr=0.05),
                              train=TrainConfig(epochs=8, batch_size=32, patience=0))
    r = training.fit(cfg, data, progress=False)
    best = int(np.argmin(r.history["val_loss"]))
    assert r.metrics["best_epoch"] == best
    val_now, _, _ = score(r.model, data, "val", 256)
    assert val_now == pytest.approx(min(r.history["val_loss"]), rel=1e-12)
    last = training.fit(dataclasses.replace(cfg, train=TrainConfig(
        epochs=8, batch_size=32, keep_best=False)), data, progress=False)
    assert score(last.model, data, "val", 256)[0] == pytest.approx(r.history["val_loss"][-1],
                                                                   rel=1e-12)
    patient = training.fit(dataclasses.replace(cfg, train=TrainConfig(
        epochs=50, batch_size=32, patience=2)), data, progress=False)
    stall = len(patient.history["epoch"]) - 1 - patient.metrics["best_epoch"]
    assert patient.metrics["stopped_early"] == 1 and stall == 2
    assert len(patient.history["epoch"]) < 50


def test_sequences_of_different_lengths_train_and_padding_changes_nothing():
    from pipeline.training.config import TscConfig

    data = tasks.make("tsc", dataset="JapaneseVowels")
    cfg = Config(model=ModelConfig(cell="gru", hidden_size=32), optimizer=AdamConfig(lr=0.005),
                 task=TscConfig(), train=TrainConfig(epochs=6, batch_size=32))
    r = training.fit(cfg, data, progress=False)
    metrics, _ = score_test_split(r.model, data, 64)
    assert metrics["test_accuracy"] > 0.8 > metrics["baseline_majority_accuracy"]
    # more padding at the end of every sequence changes no prediction
    test = data.splits["test"]
    x = test["x"].astype(r.model.dtype)
    padded = np.concatenate([x, np.full((7,) + x.shape[1:], 9.0, x.dtype)])
    np.testing.assert_array_equal(r.model.forward(padded, lengths=test["lengths"]),
                                  r.model.forward(x, lengths=test["lengths"]))
