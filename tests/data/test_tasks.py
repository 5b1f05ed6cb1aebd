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
    assert ds.baseline == pytest.approx(math.log(3), rel=0.01)


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
    raw = series_module._load_series(dataset)
    n_train = round(raw.size * 0.7)
    assert ds.meta["mean"] == pytest.approx(raw[:n_train].mean())


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
