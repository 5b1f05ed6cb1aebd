"""The whole model (embedding + stack + readout + loss) against finite differences."""
import numpy as np
import pytest
import torch

from oracle import numerical_grad, rel_err
from pipeline.nn import losses
from pipeline.nn.model import Model


def _problem(case):
    rng = np.random.default_rng(0)
    T, B = 5, 3
    if case == "tokens":
        model = Model("lstm", 4, 3, 6, num_layers=2, vocab_size=7, readout="all", seed=1)
        x = rng.integers(0, 7, (T, B))
        y = rng.integers(0, 6, (T, B))
        mask = rng.random((T, B)) > 0.3

        def loss_grad(pred):
            return losses.cross_entropy(pred, y, mask)
    else:
        cell = "gru" if case == "gru-bi" else "rnn"
        model = Model(cell, 2, 3, 2, num_layers=2, bidirectional=case == "gru-bi",
                      readout="last", seed=2)
        x = rng.standard_normal((T, B, 2))
        y = rng.standard_normal((B, 2))

        def loss_grad(pred):
            return losses.mse(pred, y)
    return model, x, loss_grad


@pytest.mark.parametrize("case", ["tokens", "gru-bi", "rnn"])
def test_model_gradients_match_finite_differences(case):
    model, x, loss_grad = _problem(case)
    loss, dpred = loss_grad(model.forward(x))
    grads = model.backward(dpred)
    assert set(grads) == set(model.params)
    f = lambda: loss_grad(model.forward(x))[0]  # noqa: E731
    for name, p in model.params.items():
        assert rel_err(grads[name], numerical_grad(f, p, eps=1e-5)) < 1e-6, name


def test_cross_entropy_matches_torch_with_a_mask():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 3, 5)) * 3
    target = rng.integers(0, 5, (4, 3))
    mask = rng.random((4, 3)) > 0.4
    loss, grad = losses.cross_entropy(logits, target, mask)
    lt = torch.tensor(logits, requires_grad=True)
    per = torch.nn.functional.cross_entropy(lt.reshape(-1, 5), torch.tensor(target).reshape(-1),
                                            reduction="none")
    m = torch.tensor(mask.reshape(-1), dtype=torch.float64)
    ref = (per * m).sum() / m.sum()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-14)
    assert rel_err(grad, lt.grad.numpy()) < 1e-14


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0]], np.float32)
    loss, grad = losses.cross_entropy(logits, np.array([1]))
    assert loss == pytest.approx(2e4) and np.all(np.isfinite(grad)) and grad.dtype == np.float32


def test_mse_gradient():
    pred = np.array([[1.0], [3.0]])
    loss, grad = losses.mse(pred, np.array([[0.0], [1.0]]))
    assert loss == 2.5 and grad.tolist() == [[1.0], [2.0]]


def test_bad_tokens_are_named():
    model = Model("gru", 4, 3, 2, vocab_size=5, readout="all")
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 5\)"):
        model.forward(np.array([[0, 5]]))
