"""Backward through time against central finite differences, in float64."""

import numpy as np
import pytest

from oracle import as_tuple, loss, numerical_grad, random_problem, rel_err
from pipeline.nn import Recurrent

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
TOL = 1e-6


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("T,B,lengths", [(4, 3, None), (1, 1, None), (4, 3, (2, 4, 1)),
                                         (3, 1, (2,))])
def test_backward_matches_finite_differences(cell, nonlinearity, num_layers, bidirectional, T, B,
                                             lengths):
    layer = Recurrent(cell, 2, 3, num_layers=num_layers, bidirectional=bidirectional,
                      nonlinearity=nonlinearity, seed=3)
    x, state0, dy, dstate = random_problem(layer, T, B, seed=4)
    if nonlinearity == "relu":
        # Keep pre-activations away from the kink, where differences are meaningless.
        x = x + np.sign(x) * 0.5
    layer.forward(x, state0, lengths=lengths)
    dx, dstate0, grads = layer.backward(dy, dstate)

    def f():
        return loss(layer, x, state0, dy, dstate, lengths)

    checks = [("x", x, dx)]
    checks += [(f"state0[{i}]", s, g) for i, (s, g) in enumerate(zip(as_tuple(state0),
                                                                      as_tuple(dstate0)))]
    checks += [(name, layer.params[name], grads[name]) for name in layer.params]
    for name, array, analytic in checks:
        numeric = numerical_grad(f, array)
        assert rel_err(analytic, numeric) < TOL, name


def test_gradient_with_respect_to_zero_state_is_returned():
    layer = Recurrent("lstm", 2, 3, seed=1)
    x, _, dy, _ = random_problem(layer, 5, 2)
    layer.forward(x)  # state0 None: zeros
    _, (dh0, dc0), _ = layer.backward(dy)
    zeros = (np.zeros((1, 2, 3)), np.zeros((1, 2, 3)))
    numeric = numerical_grad(lambda: loss(layer, x, zeros, dy, (np.zeros((1, 2, 3)),) * 2),
                             zeros[0])
    assert dh0.shape == (1, 2, 3) and dc0.shape == (1, 2, 3)
    assert rel_err(dh0, numeric) < TOL
    assert np.abs(dc0).max() > 0


@pytest.mark.parametrize("part", [0, 1])
def test_lstm_dstate_parts_may_be_none(part):
    layer = Recurrent("lstm", 2, 3, seed=2)
    x, state0, dy, dstate = random_problem(layer, 4, 2)
    layer.forward(x, state0)
    full = layer.backward(dy, dstate)
    partial = list(dstate)
    partial[part] = None
    zeroed = list(dstate)
    zeroed[part] = np.zeros_like(dstate[part])
    a, b = layer.backward(dy, tuple(partial)), layer.backward(dy, tuple(zeroed))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], full[0])


def test_dh_norms_are_the_norms_of_the_total_hidden_gradient():
    """A one-layer rnn with dy only at the last step: dL/dh_t is computable by hand."""
    layer = Recurrent("rnn", 2, 3, seed=0)
    x, _, _, _ = random_problem(layer, 6, 2)
    y, _ = layer.forward(x)
    dy = np.zeros_like(y)
    dy[-1] = 1.0
    layer.backward(dy)
    norms = layer.dh_norms
    assert norms.shape == (1, 1, 6)
    w = layer.params["weight_hh_l0"]
    dh = dy[-1]
    for t in range(5, -1, -1):
        assert norms[0, 0, t] == pytest.approx(np.linalg.norm(dh), rel=1e-12)
        dh = (dh * (1 - y[t] ** 2)) @ w


def test_dh_norms_cover_every_layer_and_direction():
    layer = Recurrent("gru", 2, 3, num_layers=2, bidirectional=True)
    x, _, dy, _ = random_problem(layer, 5, 2)
    layer.forward(x)
    layer.backward(dy)
    assert layer.dh_norms.shape == (2, 2, 5)
    assert np.all(layer.dh_norms > 0)


def test_dh_norms_cover_the_running_sequences_only():
    """With lengths, step t's norm is over the sequences still running; past them all, 0."""
    layer = Recurrent("gru", 2, 3, bidirectional=True, seed=1)
    x, _, dy, _ = random_problem(layer, 6, 3)
    lengths = np.array([4, 2, 4])
    layer.forward(x, lengths=lengths)
    layer.backward(dy)
    norms = layer.dh_norms
    alone = Recurrent("gru", 2, 3, bidirectional=True, seed=1)
    parts = []
    for b, n in enumerate(lengths):  # each sequence on its own, unpadded
        alone.forward(x[:n, b:b + 1])
        alone.backward(dy[:n, b:b + 1])
        parts.append(np.pad(alone.dh_norms, ((0, 0), (0, 0), (0, 6 - n))))
    expect = np.sqrt(np.sum(np.square(parts), axis=0))
    np.testing.assert_allclose(norms, expect, rtol=1e-12)
    assert not norms[..., 4:].any()


def test_dh_norms_before_backward_raises():
    with pytest.raises(RuntimeError, match="backward"):
        Recurrent("gru", 2, 3).dh_norms
