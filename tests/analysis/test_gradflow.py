"""The gradient-flow study at small sizes: the physics it exists to show, and its tables."""
import math

import numpy as np
import pytest

from pipeline import data
from pipeline.analysis import gradflow
from pipeline.nn.model import Model

SIZES = dict(length=60, batch=8, hidden=16, seeds=[0, 1, 2, 3])


@pytest.fixture(scope="module")
def table():
    configs = gradflow.probes(["rnn", "lstm", "gru"], ["tanh", "relu"], ["uniform", "forget_bias"],
                              [0.5, 1.0, 1.5])
    return gradflow.study(configs, **SIZES)


def relative_at(table, config, distance):
    rows = table[(table["config"] == config) & (table["distance"] == distance)]
    assert len(rows) == len(SIZES["seeds"]), config
    return rows["relative"].to_numpy()


def test_tanh_rnn_at_rho_half_vanishes_within_fifty_steps(table):
    assert (relative_at(table, "rnn tanh rho=0.5", 50) < 1e-6).all()


def test_lstm_keeps_more_gradient_than_the_tanh_rnn_at_the_same_distance(table):
    """Both at PyTorch's default init; seeds differ a lot at these sizes, so the plain LSTM
    is compared by the geometric mean over seeds and the decay rate, and the LSTM with
    its forget gate biased open (b_f = 1) seed by seed."""
    def geo(config, d):
        return np.exp(np.log(relative_at(table, config, d)).mean())

    assert geo("lstm", 50) > geo("rnn tanh", 50)
    rates = gradflow.decay_rates(table).set_index("config")["slope_per_step"]
    assert rates["lstm"] > rates["rnn tanh"]
    for d in (30, 50):
        assert (relative_at(table, "lstm forget_bias", d) > relative_at(table, "rnn tanh", d)).all()


def test_relu_rnn_above_radius_one_grows(table):
    """relu passes about half the units, so growth needs rho well above 1 and a single
    seed at H = 16 can still shrink: the geometric mean over seeds and the slope grow."""
    ratios = relative_at(table, "rnn relu rho=1.5", 50)
    assert np.exp(np.log(ratios).mean()) > 10 and (ratios > 1).sum() >= 3
    rates = gradflow.decay_rates(table).set_index("config")
    assert rates.loc["rnn relu rho=1.5", "slope_per_step"] > 0
    assert rates.loc["rnn tanh rho=0.5", "slope_per_step"] < math.log(0.6)


def test_the_radius_is_what_the_probe_asks_for():
    probe = gradflow.Probe("rnn", "tanh", "orthogonal", 0.9)
    norms = gradflow.at_init(probe, length=5, batch=2, hidden=6, seed=0)
    assert norms.shape == (5,) and np.isfinite(norms).all()
    # deeper: an orthogonal matrix scaled to 0.9 has every singular value 0.9
    from pipeline.nn import Recurrent
    layer = Recurrent("rnn", 2, 6, init="orthogonal", dtype=np.float64)
    w = layer.params["weight_hh_l0"]
    scaled = 0.9 / max(abs(np.linalg.eigvals(w))) * w
    assert np.allclose(np.linalg.svd(scaled, compute_uv=False), 0.9)


def test_the_table_has_the_study_columns_and_distance_zero_is_the_last_step(table):
    assert tuple(table.columns) == gradflow.COLUMNS
    first = table[table["distance"] == 0]
    assert np.allclose(first["relative"], 1.0)
    assert table["distance"].max() == SIZES["length"] - 1
    assert set(table["config"]) == {"rnn tanh", "rnn relu", "lstm", "lstm forget_bias", "gru",
                                    *(f"rnn {nl} rho={r:g}" for nl in ("tanh", "relu")
                                      for r in (0.5, 1.0, 1.5))}


def test_decay_rate_of_an_exact_geometric_curve_is_its_log_factor():
    curve = gradflow.rows(0.8 ** np.arange(40), "c", "rnn", "tanh", "orthogonal", 0.8, 0, 0)
    rates = gradflow.decay_rates(curve)
    assert rates["slope_per_step"].iloc[0] == pytest.approx(math.log(0.8))
    assert rates["factor_per_step"].iloc[0] == pytest.approx(0.8)
    assert rates["ratio_at_50"].isna().all()  # the curve is shorter than 50 steps


def test_a_trained_model_is_measured_on_its_own_task_per_layer():
    ds = data.make("copy", length=6, n_symbols=3, n_copy=2, n_train=4, n_val=2, n_test=5)
    model = Model("gru", 4, 5, ds.output_size, num_layers=2, vocab_size=ds.vocab_size,
                  readout="all")
    out = gradflow.study_trained(model, ds, batch=3, seeds=[0, 1], label="gru", cell="gru",
                                 nonlinearity="-", init="uniform")
    assert set(out["config"]) == {"gru layer 0", "gru layer 1"}
    assert len(out) == 2 * 2 * (6 + 2 * 2)
    assert np.isfinite(out["grad_norm"]).all() and (out["grad_norm"] >= 0).all()
