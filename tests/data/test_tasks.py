"""Task generators: shapes, splits, baselines, fingerprints, files."""
import math

import numpy as np
import pytest

from pipeline import data as tasks
from pipeline.data import series as series_module
from pipeline.data.series import series
from pipeline.data.synthetic import adding, copy, sine
from pipeline.data.text import text


def test_sine_windows_predict_the_next_value():
    ds = sine(length=12, n_points=400, noise=0.05, seed=1)
    x, y = ds.splits["train"]["x"], ds.splits["train"]["y"]
    assert x.shape[0] == 12 and x.shape[2] == 1 and y.shape == (x.shape[1], 1)
    np.testing.assert_array_equal(x[1:, 0, 0], x[:-1, 1, 0])   # consecutive windows overlap
    assert y[0, 0] == x[-1, 1, 0]                                # the target is the next value
    assert np.abs(ds.splits["test"]["y"] - ds.splits["test"]["clean"]).max() <= 0.05
    assert ds.meta["noise_variance"] == pytest.approx(0.05 ** 2 / 3)


def test_adding_has_one_marker_per_half_and_the_marked_sum():
    ds = adding(length=30, n_train=50, n_val=5, n_test=400, seed=2)
    x, y = ds.splits["train"]["x"], ds.splits["train"]["y"]
    marks = x[:, :, 1]
    assert np.all(marks[:15].sum(0) == 1) and np.all(marks[15:].sum(0) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(0))
    assert ds.baseline == pytest.approx(1 / 6, abs=0.03)


def test_copy_layout_and_memoryless_baseline():
    ds = copy(length=7, n_symbols=8, n_copy=4, n_train=20, n_val=2, n_test=2, seed=0)
    x, y = ds.splits["train"]["x"], ds.splits["train"]["y"]
    assert x.shape == (7 + 8, 20)
    np.testing.assert_array_equal(y[-4:], x[:4])
    assert np.all(x[4:4 + 7 - 1] == 0) and np.all(x[4 + 6] == 9) and np.all(y[:-4] == 0)
    assert ds.baseline == pytest.approx(4 * math.log(8) / 15)
    assert ds.vocab_size == 10 and ds.output_size == 9


def test_text_vocab_comes_from_training_and_targets_are_shifted(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("abc" * 20 + "xyz" * 4, "utf-8")
    ds = text(path=str(f), length=3)
    x, y = ds.splits["train"]["x"], ds.splits["train"]["y"]
    np.testing.assert_array_equal(x[1:], y[:-1])
    assert ds.meta["vocab"] == "abc" and ds.vocab_size == 4
    assert ds.splits["test"]["y"].max() == 3     # x, y, z are unknown to training


def test_text_default_corpus_ships_offline():
    ds = text(length=32, max_chars=5000)
    assert ds.meta["source"] == "pydoc_data.topics" and ds.vocab_size > 30


def test_text_bad_path_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="task.path .*nope.txt does not exist"):
        text(path=str(tmp_path / "nope.txt"))
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(ValueError, match="not UTF-8"):
        text(path=str(bad))


@pytest.mark.parametrize("dataset", series_module.SERIES)
def test_series_is_normalised_with_training_statistics_only(dataset):
    ds = series(dataset=dataset, length=10)
    train = np.concatenate([ds.splits["train"]["x"][:, 0, 0], ds.splits["train"]["y"][:, 0]])
    assert abs(train.mean()) < 0.1 and abs(train.std() - 1) < 0.1
    raw = series_module._load_shipped(dataset)
    n_train = round(raw.size * 0.7)
    target = np.diff(raw[:n_train]) if ds.meta["differenced"] else raw[:n_train]
    assert ds.meta["scale"][0] == pytest.approx(target.mean())


def test_fingerprint_is_deterministic_and_sensitive():
    a, b = adding(length=10, n_train=20, seed=3), adding(length=10, n_train=20, seed=3)
    c = adding(length=10, n_train=20, seed=4)
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_save_and_load_round_trip(tmp_path):
    ds = copy(length=5, n_copy=2, n_train=10, n_val=2, n_test=2)
    tasks.save(ds, tmp_path / "d.npz")
    back = tasks.load(tmp_path / "d.npz")
    assert back.fingerprint == ds.fingerprint and back.header() == ds.header()


def test_missing_and_corrupt_files_name_the_file_and_its_maker(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"d.npz is missing: it is made by `python -m pipeline.generate`"):
        tasks.load(tmp_path / "d.npz")
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="d.npz is corrupt.*pipeline.generate"):
        tasks.load(tmp_path / "d.npz")


def test_unknown_task_and_bad_values():
    with pytest.raises(ValueError, match="unknown task 'mnist'"):
        tasks.make("mnist")
    with pytest.raises(ValueError, match="task.length must be an integer >= 2"):
        adding(length=1)
    with pytest.raises(ValueError, match="unknown task.dataset 'gdp'"):
        series(dataset="gdp")


# ----- baselines: real predictors on the test split ---------------------------------
def test_every_task_names_its_baselines_and_the_primary_is_the_strongest_loss():
    for name, kw in [("sine", dict(n_points=400, length=10)),
                     ("adding", dict(length=10, n_train=20, n_val=5, n_test=50)),
                     ("copy", dict(length=5, n_copy=2, n_train=10, n_val=2, n_test=2)),
                     ("text", dict(length=16, max_chars=5000)),
                     ("series", dict(dataset="sunspots", length=10)),
                     ("tsc", dict(dataset="ItalyPowerDemand"))]:
        ds = tasks.make(name, **kw)
        assert ds.baselines and all(k.startswith("baseline_") for k in ds.baselines)
        losses = {k: v for k, v in ds.baselines.items() if k.endswith(("_mse", "_xent"))}
        assert ds.baseline == min(losses.values()) and ds.baseline_name in losses


def test_sine_baselines_are_persistence_and_the_training_mean():
    ds = sine(length=12, n_points=400, seed=1)
    test, train = ds.splits["test"], ds.splits["train"]
    assert ds.baselines["baseline_persistence_mse"] == pytest.approx(
        np.mean((test["x"][-1] - test["y"]) ** 2))
    assert ds.baselines["baseline_train_mean_mse"] == pytest.approx(
        np.mean((train["y"].mean() - test["y"]) ** 2))


def test_text_baseline_is_the_training_unigram_on_the_test_split(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("aab" * 40 + "abc" * 10, "utf-8")
    ds = text(path=str(f), length=4)
    train_y, test_y = ds.splits["train"]["y"].ravel(), ds.splits["test"]["y"].ravel()
    counts = np.bincount(train_y, minlength=ds.vocab_size) + 1.0
    expect = -np.log(counts / counts.sum())[test_y].mean()
    assert ds.baselines["baseline_unigram_xent"] == pytest.approx(expect)
    # not the training entropy: that is no predictor's loss on the test split
    p = np.bincount(train_y) / train_y.size
    assert ds.baselines["baseline_unigram_xent"] != pytest.approx(-(p * np.log(p)).sum())


# ----- series: shipped, your own CSV, differencing -----------------------------------
def test_a_trending_series_is_differenced_and_a_cycle_is_not():
    co2 = series(dataset="co2", length=12)
    spots = series(dataset="sunspots", length=12)
    assert co2.meta["differenced"] and not spots.meta["differenced"]
    test = co2.splits["test"]
    mean, std = co2.meta["scale"]
    # persistence predicts no change: its normalised target is -mean/std
    assert co2.baselines["baseline_persistence_mse"] == pytest.approx(
        np.mean(((0 - mean) / std - test["y"]) ** 2))
    raw = series_module._load_shipped("co2")
    original = test["level"] + test["y"] * std + mean
    assert np.allclose(original[:, 0], raw[-original.shape[0]:])


def test_own_csv_series(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(400)
    f = tmp_path / "load.csv"
    f.write_text("day,load\n" + "\n".join(f"{i},{v}" for i, v in
                                            zip(t, 0.05 * t + np.sin(t / 5) + rng.normal(0, .1, 400))))
    ds = tasks.make("series", path=str(f), column="load", length=8)
    assert ds.meta["source"] == "load.csv:load" and ds.meta["differenced"]
    never = tasks.make("series", path=str(f), column="load", length=8, difference="never")
    assert not never.meta["differenced"]


@pytest.mark.parametrize("content,column,message", [
    ("a,b\n1,2\n", "c", "task.column 'c' is not a column of .*: expected one of a, b"),
    ("a,b\n1,2\n3,x\n", "b", "task.column 'b' of .* has 1 missing or non-numeric values"
                             " \\(first at data row 2: 'x'\\)"),
])
def test_bad_csv_names_the_key(tmp_path, content, column, message):
    f = tmp_path / "s.csv"
    f.write_text(content)
    with pytest.raises(tasks.TaskError, match=message):
        series(path=str(f), column=column)


# ----- time-series classification ----------------------------------------------------
def test_tsc_keeps_lengths_normalises_with_training_and_stratifies():
    ds = tasks.make("tsc", dataset="JapaneseVowels")
    tr, va, te = (ds.splits[s] for s in ("train", "val", "test"))
    assert tr["x"].shape[2] == 12 and te["x"].shape[1] == 370
    assert tr["lengths"].min() < tr["lengths"].max() <= tr["x"].shape[0]
    for split in (tr, va, te):   # zero after each sequence's end
        T = split["x"].shape[0]
        pad = np.arange(T)[:, None] >= split["lengths"][None, :]
        assert not split["x"][pad].any()
    valid = tr["x"][np.arange(tr["x"].shape[0])[:, None] < tr["lengths"][None, :]]
    np.testing.assert_allclose(valid.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(valid.std(0), 1, atol=1e-9)
    # every class in both training and validation, in proportion
    assert set(np.unique(va["y"])) == set(np.unique(tr["y"])) == set(range(9))
    assert ds.baselines["baseline_majority_accuracy"] == pytest.approx(
        np.mean(te["y"] == np.bincount(tr["y"]).argmax()))
    again = tasks.make("tsc", dataset="JapaneseVowels")
    assert again.fingerprint == ds.fingerprint
    other = tasks.make("tsc", dataset="JapaneseVowels", seed=1)
    assert other.fingerprint != ds.fingerprint


def test_tsc_reads_your_own_ts_files(tmp_path):
    from pipeline.data import tsc
    for part in ("TRAIN", "TEST"):
        src = tsc.archive_dir() / "ItalyPowerDemand" / f"ItalyPowerDemand_{part}.ts"
        (tmp_path / f"Mine_{part}.ts").write_text(src.read_text())
    mine = tasks.make("tsc", path=str(tmp_path / "Mine"))
    shipped = tasks.make("tsc", dataset="ItalyPowerDemand")
    assert mine.meta["source"] == "Mine"
    np.testing.assert_array_equal(mine.splits["test"]["x"], shipped.splits["test"]["x"])


def test_tsc_bad_input_names_the_key(tmp_path):
    with pytest.raises(tasks.TaskError, match="task.dataset 'NoSuchSet' is not shipped with"
                                              " sktime: expected one of .*JapaneseVowels"):
        tasks.make("tsc", dataset="NoSuchSet")
    (tmp_path / "Half_TRAIN.ts").write_text("x")
    with pytest.raises(FileNotFoundError, match="task.path .*Half: .*Half_TEST.ts does not"
                                                " exist"):
        tasks.make("tsc", path=str(tmp_path / "Half"))
    (tmp_path / "Half_TEST.ts").write_text("not a ts file")
    with pytest.raises(tasks.TaskError, match="Half_TRAIN.ts is not a readable .ts file"):
        tasks.make("tsc", path=str(tmp_path / "Half"))
