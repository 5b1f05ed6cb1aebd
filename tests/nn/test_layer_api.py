"""The layer's contract: parameters, loading, initialisation and bad input."""
import numpy as np
import pytest
import torch

from oracle import torch_twin
from pipeline.nn import Recurrent


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (3, True)])
def test_params_are_named_and_shaped_as_torch(cell, num_layers, bidirectional):
    layer = Recurrent(cell, 5, 7, num_layers=num_layers, bidirectional=bidirectional)
    module = torch_twin(layer)
    assert [(n, tuple(p.shape)) for n, p in module.named_parameters()] == \
        [(n, p.shape) for n, p in layer.params.items()]


def test_defaults():
    layer = Recurrent("lstm", 3, 4)
    assert (layer.num_layers, layer.bidirectional, layer.nonlinearity, layer.dropout,
            layer.dtype, layer.seed) == (1, False, "tanh", 0.0, np.float64, 0)


def test_default_init_is_torch_uniform_and_seeded():
    a, b = Recurrent("gru", 3, 16, seed=4), Recurrent("gru", 3, 16, seed=4)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        assert np.abs(a.params[name]).max() <= 1 / 4
    assert not np.array_equal(a.params["weight_hh_l0"], Recurrent("gru", 3, 16, seed=5).params["weight_hh_l0"])


def test_named_inits():
    H = 5
    orth = Recurrent("lstm", 3, H, init="orthogonal+forget_bias")
    w = orth.params["weight_hh_l0"]
    for g in range(4):
        block = w[g * H:(g + 1) * H]
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
    assert np.all(orth.params["bias_ih_l0"][H:2 * H] + orth.params["bias_hh_l0"][H:2 * H] == 1)
    irnn = Recurrent("rnn", 3, H, nonlinearity="relu", init="irnn")
    np.testing.assert_array_equal(irnn.params["weight_hh_l0"], np.eye(H))
    assert not irnn.params["bias_ih_l0"].any() and not irnn.params["bias_hh_l0"].any()


def test_load_params_copies_in_place_casts_and_accepts_partial_dicts():
    layer = Recurrent("gru", 3, 4, dtype=np.float32)
    held = layer.params["weight_hh_l0"]
    other = layer.params["bias_ih_l0"].copy()
    new = np.arange(48, dtype=np.float64).reshape(12, 4)
    layer.load_params({"weight_hh_l0": new})
    assert layer.params["weight_hh_l0"] is held and held.dtype == np.float32
    np.testing.assert_array_equal(held, new.astype(np.float32))
    np.testing.assert_array_equal(layer.params["bias_ih_l0"], other)


@pytest.mark.parametrize("bad,match", [
    ({"weight_hh_l9": np.zeros((12, 4))}, "unknown parameter 'weight_hh_l9'"),
    ({"weight_hh_l0": np.zeros((4, 12))}, r"'weight_hh_l0' has shape \(4, 12\), expected \(12, 4\)"),
])
def test_load_params_rejects_bad_keys_and_changes_nothing(bad, match):
    layer = Recurrent("gru", 3, 4)
    before = {k: v.copy() for k, v in layer.params.items()}
    with pytest.raises(ValueError, match=match):
        layer.load_params({"bias_ih_l0": np.ones(12), **bad})
    for k in before:
        np.testing.assert_array_equal(layer.params[k], before[k])


def test_weights_port_back_to_torch():
    layer = Recurrent("lstm", 3, 4, num_layers=2, seed=9)
    module = torch_twin(layer)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    np.testing.assert_allclose(layer.forward(x)[0], module(torch.from_numpy(x))[0].detach().numpy(),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    (dict(cell="tcn"), "cell must be one of rnn, lstm, gru, got 'tcn'"),
    (dict(nonlinearity="sigmoid"), "nonlinearity must be one of tanh, relu, got 'sigmoid'"),
    (dict(init="xavier"), "init must be one of uniform, orthogonal, forget_bias, irnn"),
    (dict(init="irnn"), "init 'irnn' applies to cell rnn"),
    (dict(hidden_size=0), "hidden_size must be an integer >= 1, got 0"),
    (dict(input_size=2.5), "input_size must be an integer >= 1"),
    (dict(num_layers=0), "num_layers must be an integer >= 1"),
    (dict(dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (dict(dropout=-0.1), r"dropout must be a number in \[0, 1\)"),
    (dict(dtype=np.int32), "dtype must be float32 or float64"),
])
def test_bad_construction_names_the_problem(kwargs, match):
    args = dict(cell="lstm", input_size=3, hidden_size=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Recurrent(**args)


@pytest.mark.parametrize("make_x,match", [
    (lambda: np.zeros((5, 3)), r"x must have shape \(\*, \*, 3\), got \(5, 3\)"),
    (lambda: np.zeros((5, 2, 4)), r"x must have shape \(\*, \*, 3\), got \(5, 2, 4\)"),
    (lambda: np.zeros((5, 2, 3), np.float32), "x has dtype float32, expected float64"),
    (lambda: np.full((5, 2, 3), np.nan), "x contains NaN or inf"),
    (lambda: np.full((5, 2, 3), np.inf), "x contains NaN or inf"),
    (lambda: np.zeros((0, 2, 3)), "at least one step"),
    (lambda: [[[0.0] * 3]], "x must be a numpy array"),
])
def test_bad_input_gets_a_value_error_not_a_numba_traceback(make_x, match):
    layer = Recurrent("gru", 3, 4)
    with pytest.raises(ValueError, match=match):
        layer.forward(make_x())


def test_bad_state_and_dy():
    layer = Recurrent("lstm", 3, 4, num_layers=2)
    x = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=r"state0\[0\] must have shape \(2, 2, 4\)"):
        layer.forward(x, (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match="tuple"):
        layer.forward(x, np.zeros((2, 2, 4)))
    layer.forward(x)
    with pytest.raises(ValueError, match=r"dy must have shape \(5, 2, 4\)"):
        layer.backward(np.zeros((5, 2, 8)))
    with pytest.raises(ValueError, match="dy has dtype float32"):
        layer.backward(np.zeros((5, 2, 4), np.float32))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="forward"):
        Recurrent("rnn", 3, 4).backward(np.zeros((1, 1, 4)))


@pytest.mark.parametrize("lengths,match", [
    (np.array([5, 5]), r"lengths must have shape \(3,\) \(one per sequence\), got \(2,\)"),
    (np.array([[5, 5, 5]]), r"lengths must have shape \(3,\)"),
    (5, r"lengths must have shape \(3,\)"),
    (np.array([5.0, 5.0, 5.0]), "lengths must be integers, got dtype float64"),
    (np.array([True, True, True]), "lengths must be integers, got dtype bool"),
    (np.array([5, 0, 3]), r"lengths must lie in \[1, 5\] \(T = x.shape\[0\]\), got \[0, 5\]"),
    (np.array([5, 6, 3]), r"lengths must lie in \[1, 5\]"),
    (np.array([-1, 2, 3]), r"lengths must lie in \[1, 5\]"),
])
def test_bad_lengths_get_a_value_error_naming_lengths(lengths, match):
    layer = Recurrent("gru", 3, 4)
    with pytest.raises(ValueError, match=match):
        layer.forward(np.zeros((5, 3, 3)), lengths=lengths)


def test_lengths_may_be_a_list_in_any_order():
    layer = Recurrent("lstm", 3, 4, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((5, 3, 3))
    y, _ = layer.forward(x, lengths=[2, 5, 3])
    y2, _ = layer.forward(x, lengths=np.array([2, 5, 3], np.int32))
    np.testing.assert_array_equal(y, y2)
    assert y.shape == (5, 3, 8) and not y[2:, 0].any() and y[4, 1].any()
