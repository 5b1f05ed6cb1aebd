"""The whole model (embedding + stack + readout + loss) against finite differences and
against the same model in PyTorch, with and without sequence lengths."""
import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from oracle import TORCH_DTYPES, numerical_grad, rel_err, torch_twin
from pipeline.nn import losses
from pipeline.nn.model import Model

T, B = 5, 3
LENGTHS = np.array([3, 5, 1])
CASES = ["tokens", "gru-bi", "rnn", "lstm-bi", "rnn-all"]


def _problem(case, lengths=None):
    """model, input, target, and loss_grad(pred) -> (loss, dL/dpred), as the training loop
    does it: the loss of a readout-"all" model masked with length_mask."""
    rng = np.random.default_rng(0)
    mask = None if lengths is None else losses.length_mask(lengths, T)
    if case == "tokens":
        model = Model("lstm", 4, 3, 6, num_layers=2, vocab_size=7, readout="all", seed=1)
        x, y = rng.integers(0, 7, (T, B)), rng.integers(0, 6, (T, B))
        mask = rng.random((T, B)) > 0.3 if lengths is None else mask
        return model, x, y, lambda pred: losses.cross_entropy(pred, y, mask)
    cell, bi = {"gru-bi": ("gru", True), "rnn": ("rnn", False), "lstm-bi": ("lstm", True),
                "rnn-all": ("rnn", True)}[case]
    readout = "all" if case == "rnn-all" else "last"
    model = Model(cell, 2, 3, 2, num_layers=2, bidirectional=bi, readout=readout, seed=2)
    x = rng.standard_normal((T, B, 2))
    y = rng.standard_normal((T, B, 2) if readout == "all" else (B, 2))
    return model, x, y, lambda pred: losses.mse(pred, y, mask if readout == "all" else None)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_model_gradients_match_finite_differences(case, lengths):
    model, x, _, loss_grad = _problem(case, lengths)
    loss, dpred = loss_grad(model.forward(x, lengths=lengths))
    grads = model.backward(dpred)
    assert set(grads) == set(model.params)
    f = lambda: loss_grad(model.forward(x, lengths=lengths))[0]  # noqa: E731
    for name, p in model.params.items():
        assert rel_err(grads[name], numerical_grad(f, p, eps=1e-5)) < 1e-6, name


def torch_model_loss(model, x, y, lengths):
    """The same model in torch on packed sequences; returns the loss and the grads by name."""
    dtype = TORCH_DTYPES[model.dtype.type]
    rnn, dirs = torch_twin(model.rnn), model.rnn.dirs
    params = {f"rnn.{n}": p for n, p in rnn.named_parameters()}
    readout = torch.nn.Linear(dirs * model.rnn.hidden_size, model.output_size).to(dtype)
    params.update({f"readout.{n}": p for n, p in readout.named_parameters()})
    if model.vocab_size is not None:
        emb = torch.nn.Embedding(model.vocab_size, model.rnn.input_size).to(dtype)
        params["embedding.weight"] = emb.weight
    with torch.no_grad():
        for name in ("readout.weight", "readout.bias", "embedding.weight"):
            if name in params:
                params[name].copy_(torch.from_numpy(model.params[name]))
    inp = torch.from_numpy(x) if model.vocab_size is None else emb(torch.from_numpy(x))
    lt = torch.as_tensor(lengths)
    out, state = rnn(pack_padded_sequence(inp, lt, enforce_sorted=False))
    h_n = state[0] if model.rnn.cell == "lstm" else state
    if model.readout == "last":
        pred = readout(torch.cat(list(h_n[-dirs:]), dim=1))
        loss = torch.nn.functional.mse_loss(pred, torch.from_numpy(y))
    else:
        pred = readout(pad_packed_sequence(out, total_length=x.shape[0])[0])
        mask = torch.from_numpy(losses.length_mask(lengths, x.shape[0]))
        if model.vocab_size is not None:
            loss = torch.nn.functional.cross_entropy(pred[mask], torch.from_numpy(y)[mask])
        else:
            loss = torch.nn.functional.mse_loss(pred[mask], torch.from_numpy(y)[mask])
    loss.backward()
    return loss.item(), {n: p.grad.numpy() for n, p in params.items()}


@pytest.mark.parametrize("case", CASES)
def test_model_with_lengths_matches_torch_packed_sequences(case):
    model, x, y, loss_grad = _problem(case, LENGTHS)
    loss, dpred = loss_grad(model.forward(x, training=True, lengths=LENGTHS))
    grads = model.backward(dpred)
    ref, tgrads = torch_model_loss(model, x, y, LENGTHS)
    assert loss == pytest.approx(ref, rel=1e-12)
    assert set(tgrads) == set(grads)
    for name in grads:
        assert rel_err(grads[name], tgrads[name]) < 1e-10, name


def test_a_pass_may_read_out_every_step_of_a_last_readout_model():
    """forward(readout="all") of a "last" model (a forecaster trained on a stream) is the
    "all" model's pass with the same weights, gradients and all, and the next pass
    without the argument reads the last state again."""
    last = Model("lstm", 2, 3, 1, num_layers=2, readout="last", seed=5)
    every = Model("lstm", 2, 3, 1, num_layers=2, readout="all", seed=5)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((T, B, 2)), rng.standard_normal((T, B, 1))
    pred = last.forward(x, readout="all")
    np.testing.assert_array_equal(pred, every.forward(x))
    loss, dpred = losses.mse(pred, y)
    grads, ref = last.backward(dpred), every.backward(losses.mse(every.forward(x), y)[1])
    for name in grads:
        np.testing.assert_array_equal(grads[name], ref[name])
    f = lambda: losses.mse(last.forward(x, readout="all"), y)[0]  # noqa: E731
    for name, p in last.params.items():
        assert rel_err(grads[name], numerical_grad(f, p, eps=1e-5)) < 1e-6, name
    assert last.forward(x).shape == (B, 1)
    with pytest.raises(ValueError, match="unknown readout 'first'"):
        last.forward(x, readout="first")


def test_last_readout_of_a_bidirectional_model_is_h_n():
    """The forward direction at each sequence's last step, the reverse one at t = 0."""
    model = Model("gru", 2, 3, 2, bidirectional=True, readout="last", seed=4)
    x = np.random.default_rng(1).standard_normal((T, B, 2))
    pred = model.forward(x, lengths=LENGTHS)
    y, _ = model.rnn.forward(x, lengths=LENGTHS)
    h = np.stack([np.concatenate([y[n - 1, b, :3], y[0, b, 3:]]) for b, n in enumerate(LENGTHS)])
    np.testing.assert_allclose(
        pred, h @ model.params["readout.weight"].T + model.params["readout.bias"], rtol=1e-13)


def test_length_mask():
    np.testing.assert_array_equal(losses.length_mask(np.array([2, 0, 3]), 3),
                                  [[True, False, True], [True, False, True],
                                   [False, False, True]])


def test_masked_mse_matches_torch():
    rng = np.random.default_rng(3)
    pred, target = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    mask = losses.length_mask([4, 1, 2], 4)
    loss, grad = losses.mse(pred, target, mask)
    pt = torch.tensor(pred, requires_grad=True)
    m = torch.from_numpy(mask)
    ref = torch.nn.functional.mse_loss(pt[m], torch.from_numpy(target)[m])
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-14)
    assert rel_err(grad, pt.grad.numpy()) < 1e-14
    assert losses.mse(pred, target)[0] == pytest.approx(float(np.mean((pred - target) ** 2)))


@pytest.mark.parametrize("fn", [losses.mse, losses.cross_entropy])
def test_a_mask_that_counts_nothing_or_misfits_is_named(fn):
    pred = np.zeros((2, 3, 4))
    target = np.zeros((2, 3, 4)) if fn is losses.mse else np.zeros((2, 3), int)
    with pytest.raises(ValueError, match="leaves no position"):
        fn(pred, target, np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 2\), expected \(2, 3\)"):
        fn(pred, target, np.ones((3, 2), bool))


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
