"""Outputs, final states and every gradient against torch.nn.RNN/LSTM/GRU, padded
and packed (sequences of different lengths)."""
import numba
import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import pipeline.nn.recurrent as nn_module
from oracle import TORCH_DTYPES, as_tuple, random_problem, rel_err, torch_run, torch_twin
from pipeline.kernels import runtime as threads
from pipeline.nn import Recurrent

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
TOL = {np.float64: 1e-10, np.float32: 1e-4}


def compare(layer, T, B, seed=0, lengths=None):
    module = torch_twin(layer)
    x, state0, dy, dstate = random_problem(layer, T, B, seed)
    y, state = layer.forward(x, state0, lengths=lengths)
    dx, dstate0, grads = layer.backward(dy, dstate)
    ty, tstate, tdx, tdstate0, tgrads = torch_run(module, x, state0, dy, dstate, layer.cell,
                                                  lengths)
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


# (T, B, lengths): any order, ties, a length-1 sequence, B = 1, max(lengths) < T
PACKED = [(9, 6, [3, 9, 1, 5, 5, 8]), (6, 4, [2, 5, 3, 5]), (7, 1, [4]), (1, 1, [1])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequences_match_torch(dtype, cell, nonlinearity, num_layers, bidirectional):
    """lengths against pack_padded_sequence(enforce_sorted=False) + pad_packed_sequence."""
    layer = Recurrent(cell, 5, 7, num_layers=num_layers, bidirectional=bidirectional,
                      nonlinearity=nonlinearity, dtype=dtype, seed=1)
    for T, B, lengths in PACKED:
        errors, dtypes = compare(layer, T, B, lengths=np.array(lengths))
        worst = max(errors, key=errors.get)
        assert errors[worst] < TOL[dtype], (T, B, lengths, worst, errors[worst])
        assert dtypes == {np.dtype(dtype)}


def test_padded_steps_are_zero_and_never_read():
    layer = Recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, seed=2)
    x, state0, dy, dstate = random_problem(layer, 6, 3)
    lengths = np.array([2, 6, 4])
    y, state = layer.forward(x, state0, lengths=lengths)
    dx, dstate0, grads = layer.backward(dy, dstate)
    x2, dy2 = x.copy(), dy.copy()
    for b, n in enumerate(lengths):
        assert not y[n:, b].any() and not dx[n:, b].any()
        x2[n:, b], dy2[n:, b] = 1e3, -7.0
    y2, state2 = layer.forward(x2, state0, lengths=lengths)
    dx2, dstate02, grads2 = layer.backward(dy2, dstate)
    for a, b in [(y, y2), (dx, dx2), *zip(state, state2), *zip(dstate0, dstate02),
                 *((grads[k], grads2[k]) for k in grads)]:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_full_lengths_are_the_unpacked_path_bit_for_bit(cell):
    layer = Recurrent(cell, 3, 4, num_layers=2, bidirectional=True, seed=3)
    x, state0, dy, dstate = random_problem(layer, 5, 3)
    plain = layer.forward(x, state0), layer.backward(dy, dstate), layer.dh_norms
    full = layer.forward(x, state0, lengths=[5, 5, 5]), layer.backward(dy, dstate), layer.dh_norms
    for a, b in zip(_leaves(plain), _leaves(full)):
        np.testing.assert_array_equal(a, b)


def _leaves(tree):
    if isinstance(tree, dict):
        return [a for k in sorted(tree) for a in _leaves(tree[k])]
    if isinstance(tree, (tuple, list)):
        return [a for t in tree for a in _leaves(t)]
    return [tree]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("lengths", [None, [7, 2, 5, 7, 1, 6, 3, 3, 7, 4, 2]])
def test_threaded_steps_match_torch(monkeypatch, dtype, cell, lengths):
    """Batch-row slices on two threads, rows not a multiple of the tile, still exact."""
    monkeypatch.setattr(nn_module, "PARALLEL_MIN_GATE_VALUES", 0)
    before = numba.get_num_threads()
    threads.set_num_threads(2)
    try:
        layer = Recurrent(cell, 4, 6, num_layers=2, bidirectional=True, dtype=dtype, seed=5)
        assert layer._threads(11) == 2
        errors, _ = compare(layer, 7, 11, lengths=None if lengths is None else np.array(lengths))
    finally:
        threads.set_num_threads(before)
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOL[dtype], (worst, errors[worst])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("lengths", [None, [3, 8, 1, 5, 8]])
def test_dropout_with_the_same_mask_matches_torch(dtype, cell, lengths):
    """Torch draws its own mask, so the oracle is a stack of one-layer modules with ours."""
    L, H = 3, 6
    layer = Recurrent(cell, 4, H, num_layers=L, bidirectional=True, dropout=0.4,
                      dtype=dtype, seed=7)
    x, state0, dy, dstate = random_problem(layer, 8, 5)
    y, state = layer.forward(x, state0, training=True, lengths=lengths)
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
        packed = inp if lengths is None else pack_padded_sequence(
            inp, torch.tensor(lengths), enforce_sorted=False)
        out, fin = m(packed, tuple(s) if cell == "lstm" else s[0])
        if lengths is not None:
            out = pad_packed_sequence(out, total_length=8)[0]
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
