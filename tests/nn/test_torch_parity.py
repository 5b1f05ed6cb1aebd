"""Outputs, final states and every gradient against torch.nn.RNN/LSTM/GRU."""
import numba
import numpy as np
import pytest
import torch

import pipeline.nn.recurrent as nn_module
from oracle import TORCH_DTYPES, as_tuple, random_problem, rel_err, torch_twin
from pipeline.kernels import runtime as threads
from pipeline.nn import Recurrent

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
TOL = {np.float64: 1e-10, np.float32: 1e-4}


def torch_run(module, x, state0, dy, dstate, cell):
    """y, state, dx, dstate0 and parameter grads from torch, for L = <y,dy> + <state,dstate>."""
    xt = torch.from_numpy(x).requires_grad_()
    st = [torch.from_numpy(s).requires_grad_() for s in as_tuple(state0)]
    y, state = module(xt, tuple(st) if cell == "lstm" else st[0])
    total = (y * torch.from_numpy(dy)).sum()
    for s, ds in zip(as_tuple(state), as_tuple(dstate)):
        total = total + (s * torch.from_numpy(ds)).sum()
    total.backward()
    grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    return (y.detach().numpy(), [s.detach().numpy() for s in as_tuple(state)],
            xt.grad.numpy(), [s.grad.numpy() for s in st], grads)


def compare(layer, T, B, seed=0):
    module = torch_twin(layer)
    x, state0, dy, dstate = random_problem(layer, T, B, seed)
    y, state = layer.forward(x, state0)
    dx, dstate0, grads = layer.backward(dy, dstate)
    ty, tstate, tdx, tdstate0, tgrads = torch_run(module, x, state0, dy, dstate, layer.cell)
    errors = {"y": rel_err(y, ty), "dx": rel_err(dx, tdx)}
    for i, (a, b) in enumerate(zip(as_tuple(state), tstate)):
        errors[f"state[{i}]"] = rel_err(a, b)
    for i, (a, b) in enumerate(zip(as_tuple(dstate0), tdstate0)):
        errors[f"dstate0[{i}]"] = rel_err(a, b)
    for name in tgrads:
        errors[name] = rel_err(grads[name], tgrads[name])
    dtypes = {a.dtype for a in [y, dx, *as_tuple(state), *as_tuple(dstate0), *grads.values()]}
    return errors, dtypes


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (1, True),
                                                      (3, True)])
def test_matches_torch(dtype, cell, nonlinearity, num_layers, bidirectional):
    layer = Recurrent(cell, 5, 7, num_layers=num_layers, bidirectional=bidirectional,
                      nonlinearity=nonlinearity, dtype=dtype, seed=1)
    for T, B in [(9, 6), (1, 1)]:
        errors, dtypes = compare(layer, T, B)
        worst = max(errors, key=errors.get)
        assert errors[worst] < TOL[dtype], (worst, errors[worst])
        assert dtypes == {np.dtype(dtype)}, "a float32 model must stay float32"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_threaded_steps_match_torch(monkeypatch, dtype, cell):
    """Batch-row slices on two threads, rows not a multiple of the tile, still exact."""
    monkeypatch.setattr(nn_module, "PARALLEL_MIN_GATE_VALUES", 0)
    before = numba.get_num_threads()
    threads.set_num_threads(2)
    try:
        layer = Recurrent(cell, 4, 6, num_layers=2, bidirectional=True, dtype=dtype, seed=5)
        assert layer._threads(11) == 2
        errors, _ = compare(layer, 7, 11)
    finally:
        threads.set_num_threads(before)
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOL[dtype], (worst, errors[worst])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_dropout_with_the_same_mask_matches_torch(dtype, cell):
    """Torch draws its own mask, so the oracle is a stack of one-layer modules with ours."""
    L, H = 3, 6
    layer = Recurrent(cell, 4, H, num_layers=L, bidirectional=True, dropout=0.4,
                      dtype=dtype, seed=7)
    x, state0, dy, dstate = random_problem(layer, 8, 5)
    y, state = layer.forward(x, state0, training=True)
    dx, dstate0, grads = layer.backward(dy, dstate)
    assert len(layer.dropout_masks) == L - 1
    kept = np.mean([np.mean(m > 0) for m in layer.dropout_masks])
    assert 0.4 < kept < 0.8

    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    tdtype = TORCH_DTYPES[dtype]
    xt = torch.from_numpy(x).requires_grad_()
    st = [torch.from_numpy(s).requires_grad_() for s in as_tuple(state0)]
    inp, finals, modules = xt, [], []
    for k in range(L):
        m = cls(inp.shape[2], H, bidirectional=True).to(tdtype)
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.copy_(torch.from_numpy(layer.params[name.replace("_l0", f"_l{k}")]))
        s = [part[2 * k:2 * k + 2] for part in st]
        out, fin = m(inp, tuple(s) if cell == "lstm" else s[0])
        finals.append(as_tuple(fin))
        modules.append(m)
        inp = out * torch.from_numpy(layer.dropout_masks[k]) if k < L - 1 else out
    total = (inp * torch.from_numpy(dy)).sum()
    for i, ds in enumerate(as_tuple(dstate)):
        total = total + (torch.cat([f[i] for f in finals]) * torch.from_numpy(ds)).sum()
    total.backward()
    tol = TOL[dtype]
    assert rel_err(y, inp.detach().numpy()) < tol
    assert rel_err(dx, xt.grad.numpy()) < tol
    for i, s in enumerate(st):
        assert rel_err(as_tuple(dstate0)[i], s.grad.numpy()) < tol
        assert rel_err(as_tuple(state)[i], torch.cat([f[i] for f in finals]).detach().numpy()) < tol
    for k, m in enumerate(modules):
        for name, p in m.named_parameters():
            assert rel_err(grads[name.replace("_l0", f"_l{k}")], p.grad.numpy()) < tol, name


def test_dropout_is_off_in_evaluation_and_seeded_in_training():
    a = Recurrent("gru", 3, 4, num_layers=2, dropout=0.5, seed=11)
    b = Recurrent("gru", 3, 4, num_layers=2, dropout=0.5, seed=11)
    plain = Recurrent("gru", 3, 4, num_layers=2, dropout=0.0, seed=11)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    np.testing.assert_array_equal(a.forward(x)[0], plain.forward(x)[0])
    assert a.dropout_masks == []
    ya, yb = a.forward(x, training=True)[0], b.forward(x, training=True)[0]
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, plain.forward(x)[0])
    assert not np.array_equal(a.forward(x, training=True)[0], ya), "a fresh mask per call"
