"""Generation: truncated BPTT, sampling, forecasts, and the model served through MLflow."""
import dataclasses
import json
import subprocess

import numpy as np
import pytest

from pipeline import data as tasks
from pipeline.inference import rollout, sampling
from pipeline.training import bundle, streams
from pipeline.training.config import (AdamConfig, Config, ModelConfig, SeriesConfig,
                                      TextConfig, TrainConfig)
from pipeline.training.loop import fit
from pipeline.training.scoring import build_model, score, score_test_split
from projects import environment, py, tool


def text_setup(tbptt=0, epochs=2):
    cfg = Config(model=ModelConfig(cell="gru", hidden_size=32, dtype="float64"),
                 optimizer=AdamConfig(lr=0.01), task=TextConfig(length=16, max_chars=12000),
                 train=TrainConfig(epochs=epochs, batch_size=8, tbptt=tbptt))
    return cfg, tasks.make("text", length=16, max_chars=12000)


def test_streams_rebuild_the_corpus_and_cut_it_into_contiguous_tracks():
    _, ds = text_setup()
    inputs, targets = streams.stream(ds.splits["train"])
    np.testing.assert_array_equal(inputs[1:], targets[:-1])
    x, y = streams.tracks(ds.splits["train"], 4)
    L = inputs.size // 4
    np.testing.assert_array_equal(x[:, 1], inputs[L:2 * L])
    assert [c[0].shape[0] for c in streams.chunks(x, y, 100)][-1] == L - 100 * (L // 100) or \
        L % 100 == 0


def test_carried_state_equals_one_long_forward_when_k_covers_the_chunk():
    """Chunks of K steps with the state carried give what one long pass gives."""
    cfg, ds = text_setup()
    model = build_model(cfg, ds)
    x, _ = streams.tracks(ds.splits["val"], 3)
    whole = model.forward(x)
    state, parts = None, []
    for xb, _ in streams.chunks(x, x, 7):
        parts.append(model.forward(xb, state0=state))
        state = model.state
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-12, atol=1e-12)


def assert_resumes_exactly(cfg, ds, whole, tmp_path, stop_after):
    """A run stopped after epoch stop_after and resumed from its checkpoint ends as the
    uninterrupted run `whole` did, bit for bit."""
    class Stop(Exception):
        pass

    def stop(row, model):
        if row["epoch"] == stop_after:
            raise Stop

    with pytest.raises(Stop):
        fit(cfg, ds, checkpoint=tmp_path / "c.pkl", on_epoch=stop, progress=False)
    resumed = fit(cfg, ds, checkpoint=tmp_path / "c.pkl", progress=False)
    for name in whole.model.params:
        np.testing.assert_array_equal(whole.model.params[name], resumed.model.params[name])
    for key in ("train_loss", "val_loss", "grad_norm"):
        assert resumed.history[key] == whole.history[key]


def test_tbptt_trains_resumes_exactly_and_scores_streamed(tmp_path):
    cfg, ds = text_setup(tbptt=16, epochs=3)
    whole = fit(cfg, ds, progress=False)
    assert whole.history["val_loss"][-1] < whole.history["val_loss"][0]

    assert_resumes_exactly(cfg, ds, whole, tmp_path, stop_after=0)
    streamed, _ = score_test_split(whole.model, ds, 64, stream=(8, 16))
    windows, _ = score_test_split(whole.model, ds, 64)
    assert streamed["test_loss"] != windows["test_loss"]


def series_setup(tbptt=0, epochs=2, batch_size=4):
    cfg = Config(model=ModelConfig(cell="lstm", hidden_size=16, dtype="float64"),
                 optimizer=AdamConfig(lr=0.01), task=SeriesConfig(dataset="sunspots"),
                 train=TrainConfig(epochs=epochs, batch_size=batch_size, tbptt=tbptt))
    return cfg, tasks.make("series", dataset="sunspots")


def test_streams_rebuild_a_series_from_its_sliding_windows():
    _, ds = series_setup()
    arrays = ds.splits["train"]
    (T, N, _), (inputs, targets) = arrays["x"].shape, streams.stream(arrays)
    assert inputs.shape == targets.shape == (T + N - 1, 1)
    np.testing.assert_array_equal(inputs[1:], targets[:-1])
    np.testing.assert_array_equal(inputs[:T], arrays["x"][:, 0])
    np.testing.assert_array_equal(targets[-N:], arrays["y"])
    for i in (0, N // 2, N - 1):  # every window is a piece of the stream
        np.testing.assert_array_equal(inputs[i:i + T], arrays["x"][:, i])
    x, y = streams.tracks(arrays, 3)
    L = (T + N - 1) // 3
    assert x.shape == y.shape == (L, 3, 1)
    np.testing.assert_array_equal(x[:, 2], inputs[2 * L:3 * L])


def test_streamed_forecasts_score_the_windows_steps_and_k_changes_nothing():
    """One track per split from its first window: the first prediction has its window's
    context, the predictions line up with the windows (so the baselines hold), and
    carrying the state across chunks equals one long pass (K >= T)."""
    cfg, ds = series_setup()
    model = build_model(cfg, ds)
    long, long_metric, long_pred = score(model, ds, "test", 64, stream=(4, 10_000))
    short, _, short_pred = score(model, ds, "test", 64, stream=(4, 7))
    np.testing.assert_allclose(short_pred["pred"], long_pred["pred"], rtol=1e-12, atol=1e-14)
    assert short == pytest.approx(long, rel=1e-12) and long_metric == long
    _, _, windows = score(model, ds, "test", 64)
    assert long_pred["pred"].shape == windows["pred"].shape
    np.testing.assert_array_equal(long_pred["y"], windows["y"])
    np.testing.assert_array_equal(long_pred["level"], windows["level"])
    np.testing.assert_allclose(long_pred["pred"][0], windows["pred"][0], rtol=1e-12)
    assert not np.allclose(long_pred["pred"][1:], windows["pred"][1:])  # longer context


def test_tbptt_on_a_series_beats_persistence_and_resumes_exactly(tmp_path):
    cfg, ds = series_setup(tbptt=20, epochs=30)
    whole = fit(cfg, ds, progress=False)
    metrics, predictions = score_test_split(whole.model, ds, 64, stream=(4, 20))
    assert metrics["test_mse"] < metrics["baseline_persistence_mse"]
    assert predictions["pred"].shape == ds.splits["test"]["y"].shape
    assert_resumes_exactly(cfg, ds, whole, tmp_path, stop_after=4)


def test_sampling_is_reproducible_and_checks_its_arguments():
    cfg, ds = text_setup()
    model = fit(cfg, ds, progress=False).model
    vocab = ds.meta["vocab"]
    a = sampling.sample(model, vocab, prime="The ", length=80, temperature=0.8, seed=3)
    assert a == sampling.sample(model, vocab, prime="The ", length=80, temperature=0.8, seed=3)
    assert a != sampling.sample(model, vocab, prime="The ", length=80, temperature=0.8, seed=4)
    assert len(a) == 80
    with pytest.raises(ValueError, match="prime has characters outside the model's vocabulary"):
        sampling.sample(model, vocab, prime="\u4e2d", length=5)
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        sampling.sample(model, vocab, temperature=0)


def test_rollout_of_one_step_is_the_one_step_prediction_and_scores_by_horizon():
    ds = tasks.make("series", dataset="sunspots", length=10)
    cfg = Config(model=ModelConfig(cell="lstm", hidden_size=16), task=SeriesConfig(length=10),
                 train=TrainConfig(epochs=3))
    model = fit(cfg, ds, progress=False).model
    x = ds.splits["test"]["x"].astype(model.dtype)
    np.testing.assert_allclose(rollout.rollout(model, x, 1)[0], model.forward(x)[:, 0])
    table, example = rollout.horizon_errors(model, ds.splits["test"], ds.meta, 5)
    assert list(table["horizon"]) == [1, 2, 3, 4, 5]
    mean, std = ds.meta["scale"]
    assert table["persistence_mse"][0] == pytest.approx(
        ds.baselines["baseline_persistence_mse_original"], rel=0.2)
    with pytest.raises(ValueError, match="horizon must be at most"):
        rollout.horizon_errors(model, ds.splits["test"], ds.meta, 10 ** 6)


def test_more_tracks_than_a_split_has_steps_is_a_config_error_before_training():
    from pipeline.training.config import ConfigError
    cfg, ds = series_setup(tbptt=20, batch_size=500)
    with pytest.raises(ConfigError, match="train.batch_size 500 is more tracks than the train"
                       " split's 215 steps can fill .* expected at most 215"):
        fit(cfg, ds, on_epoch=lambda row, model: pytest.fail("an epoch ran"), progress=False)


def test_a_streamed_rollout_starts_from_the_state_the_stream_was_scored_with():
    cfg, ds = series_setup()
    model = build_model(cfg, ds)
    arrays = ds.splits["test"]
    _, _, scored = score(model, ds, "test", 64, stream=(4, 5))
    starts = np.array([0, 3, 7])
    steps = rollout.stream_rollout(model, arrays, starts, 3)
    np.testing.assert_allclose(steps[0], scored["pred"][starts, 0], rtol=1e-12)
    # step 2 of the forecast from window 3: the stream to its end, then its own forecast fed back
    inputs, _ = streams.stream(arrays)
    T = arrays["x"].shape[0]
    fed = np.concatenate([inputs[:3 + T], [[steps[0, 1]]]])[:, None]
    np.testing.assert_allclose(steps[1, 1], model.forward(fed, readout="all")[-1, 0, 0],
                               rtol=1e-12)
    table, _ = rollout.horizon_errors(model, arrays, ds.meta, 3, stream=True)
    windowed, _ = rollout.horizon_errors(model, arrays, ds.meta, 3)
    np.testing.assert_array_equal(table["persistence_mse"], windowed["persistence_mse"])
    assert not np.array_equal(table["model_mse"], windowed["model_mse"])  # other states


def test_bundle_rebuilds_the_model_without_the_data(tmp_path):
    ds = tasks.make("tsc", dataset="ItalyPowerDemand")
    from pipeline.training.config import TscConfig
    cfg = Config(model=ModelConfig(cell="gru", hidden_size=8), task=TscConfig(
        dataset="ItalyPowerDemand"), train=TrainConfig(epochs=1))
    model = fit(cfg, ds, progress=False).model
    bundle.save(tmp_path / "m.npz", model, cfg, ds)
    again, info = bundle.load(tmp_path / "m.npz")
    x, lengths = ds.splits["test"]["x"], ds.splits["test"]["lengths"]
    np.testing.assert_array_equal(again.forward(x.astype(again.dtype), lengths=lengths),
                                  model.forward(x.astype(model.dtype), lengths=lengths))
    assert info["data"]["meta"]["classes"] == ["1", "2"]
    np.savez(tmp_path / "weights.npz", **model.params)
    with pytest.raises(bundle.BundleError, match="holds weights only"):
        bundle.load(tmp_path / "weights.npz")


# ----- the commands, in a fresh project -------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A fresh project with one tiny Hydra run per task: tsc, text and series."""
    from projects import make_project, run
    project = make_project(tmp_path_factory.mktemp("gen") / "repo")
    for name, args in {"tsc": ["task=tsc", "task.dataset=ItalyPowerDemand"],
                       "text": ["task=text", "task.max_chars=20000", "task.length=32"],
                       "series": ["task=series", "task.dataset=co2"]}.items():
        run(py("pipeline.train", *args, f"hydra.run.dir=runs/{name}"), project)
    return project


def model_run(project, task):
    from projects import runs, store
    (found,) = [r for r in runs(store(project)) if r.data.tags.get("task") == task]
    return found


def predict(project, run_id, payload, tmp_path):
    from projects import run
    (tmp_path / "in.json").write_text(json.dumps(payload))
    run(tool("mlflow", "models", "predict", "-m", f"runs:/{run_id}/model", "-i",
             str(tmp_path / "in.json"), "-t", "json", "--env-manager", "local", "-o",
             str(tmp_path / "out.json")), project)
    return json.loads((tmp_path / "out.json").read_text())["predictions"]


@pytest.mark.slow
def test_mlflow_models_predict_returns_what_model_forward_returns(trained, tmp_path):
    model, info = bundle.load(trained / "runs" / "tsc" / "model.npz")
    ds = tasks.make("tsc", dataset="ItalyPowerDemand")
    x, lengths = ds.splits["test"]["x"][:, :6], ds.splits["test"]["lengths"][:6]
    expect = model.forward(x.astype(model.dtype), lengths=lengths)
    got = predict(trained, model_run(trained, "tsc").info.run_id,
                  {"inputs": {"x": np.swapaxes(x, 0, 1).astype(np.float32).tolist(),
                              "lengths": lengths.tolist()}}, tmp_path)
    np.testing.assert_allclose(np.array(got), expect, rtol=1e-6)


@pytest.mark.slow
def test_mlflow_models_predict_samples_text_as_the_sample_command_does(trained, tmp_path):
    from projects import run
    got = predict(trained, model_run(trained, "text").info.run_id,
                  {"dataframe_split": {"columns": ["prime", "length", "temperature", "seed"],
                                       "data": [["The ", 40, 0.7, 5]]}}, tmp_path)
    printed = run(py("pipeline.sample", "--model", "runs/text/model.npz", "--prime", "The ",
                     "--length", "40", "--temperature", "0.7", "--seed", "5"), trained).stdout
    assert printed == "The " + got[0]["text"] + "\n"
    again = run(py("pipeline.sample", "--model", "runs/text/model.npz", "--prime", "The ",
                   "--length", "40", "--temperature", "0.7", "--seed", "5"), trained).stdout
    assert again == printed


@pytest.mark.slow
def test_text_runs_log_samples_each_epoch(trained):
    from mlflow.tracking import MlflowClient
    from projects import store
    found = model_run(trained, "text")
    files = {a.path for a in MlflowClient(store(trained)).list_artifacts(found.info.run_id,
                                                                         "samples")}
    assert files == {"samples/epoch_000.txt", "samples/epoch_001.txt"}


@pytest.mark.slow
def test_forecast_writes_the_error_by_horizon_beside_persistence(trained):
    from projects import run
    out = run(py("pipeline.forecast", "--model", "runs/series/model.npz", "--horizon", "4",
                 "--out", "fc"), trained).stdout
    table = (trained / "fc" / "horizon.csv").read_text().splitlines()
    assert table[0] == "horizon,model_mse,persistence_mse" and len(table) == 5
    assert (trained / "fc" / "forecast.png").stat().st_size > 0 and "persistence" in out


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    (["pipeline.sample", "--model", "runs/text/model.npz", "--prime", "\u4e2d"],
     "--prime has characters outside the model's vocabulary: '\u4e2d'"),
    (["pipeline.sample", "--model", "runs/text/model.npz", "--temperature", "0"],
     "--temperature must be a number > 0, got 0.0"),
    (["pipeline.sample", "--model", "runs/tsc/model.npz"],
     "--model runs/tsc/model.npz is a model of task 'tsc': sampling needs a model of task text"),
    (["pipeline.forecast", "--model", "runs/series/model.npz", "--horizon", "0"],
     "--horizon must be an integer >= 1, got 0"),
    (["pipeline.forecast", "--model", "runs/text/model.npz"],
     "--model runs/text/model.npz is a model of task 'text': forecasts need one of sine, series"),
    (["pipeline.sample", "--model", "nowhere.npz"], "model file nowhere.npz is missing"),
])
def test_generation_bad_input_is_one_line_naming_the_argument(trained, args, message):
    from projects import run
    proc = run(py(*args), trained, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {message}"], proc.stderr
