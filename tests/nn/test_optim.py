"""Optimizers and clipping against torch.optim on identical gradients."""
import itertools

import numpy as np
import pytest
import torch

from oracle import rel_err
from pipeline.nn.optim import (OPTIMIZERS, SGD, Adam, NonFiniteGradient, clip_grad_norm,
                            clip_grad_value)

TORCH = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
         "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}

CASES = [("sgd", dict(lr=0.1))]
CASES += [("sgd", dict(lr=0.05, momentum=m, dampening=d, nesterov=n, weight_decay=w))
          for m, d, n, w in itertools.product([0.9], [0.0, 0.3], [False, True], [0.0, 0.01])
          if not (n and d)]
CASES += [("adagrad", dict(lr=0.1, lr_decay=ld, weight_decay=w, initial_accumulator_value=a,
                           eps=1e-10))
          for ld, w, a in itertools.product([0.0, 0.01], [0.0, 0.01], [0.0, 0.1])]
CASES += [("rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=w, momentum=m,
                           centered=c))
          for w, m, c in itertools.product([0.0, 0.01], [0.0, 0.9], [False, True])]
CASES += [(name, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=w, amsgrad=a))
          for name in ("adam", "adamw")
          for w, a in itertools.product([0.0, 0.05], [False, True])]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(20)]
    return params, grads


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_steps_match_torch(name, kwargs):
    params, grads = _problem()
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    ours = OPTIMIZERS[name](params, **kwargs)
    theirs = TORCH[name](list(tparams.values()), **kwargs)
    for step, g in enumerate(grads):
        if step == 7:
            g = {"a": g["a"]}  # "b" has no gradient this step: skipped, as in torch
        ours.step(g)
        for k, p in tparams.items():
            p.grad = torch.from_numpy(g[k].copy()) if k in g else None
        theirs.step()
    for k in params:
        assert rel_err(params[k], tparams[k].detach().numpy()) < 1e-12, k
    assert ours.state["a"]["step"] == 20 and ours.state["b"]["step"] == 19


def test_float32_parameters_stay_float32():
    p = {"w": np.ones(3, np.float32)}
    opt = Adam(p, lr=0.1)
    opt.step({"w": np.ones(3, np.float32)})
    assert p["w"].dtype == np.float32 and opt.state["w"]["exp_avg"].dtype == np.float32


def test_state_dict_round_trip_continues_identically():
    params, grads = _problem(1)
    twin = {k: v.copy() for k, v in params.items()}
    a = Adam(params, lr=0.01, amsgrad=True)
    for g in grads[:10]:
        a.step(g)
    b = Adam(twin, lr=0.5)
    for k in twin:
        twin[k][...] = params[k]
    b.load_state_dict(a.state_dict())
    for g in grads[10:]:
        a.step(g)
        b.step(g)
    for k in params:
        np.testing.assert_array_equal(params[k], twin[k])


def test_non_finite_gradient_changes_nothing():
    params, grads = _problem(2)
    before = {k: v.copy() for k, v in params.items()}
    opt = SGD(params, lr=0.1, momentum=0.9)
    bad = {k: v.copy() for k, v in grads[0].items()}
    bad["b"][2] = np.nan
    with pytest.raises(NonFiniteGradient, match="'b'"):
        opt.step(bad)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    assert opt.state == {}


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    _, grads = _problem(3)
    g = grads[0]
    tensors = [torch.from_numpy(v.copy()) for v in g.values()]
    for t in tensors:
        t.requires_grad_()
    ps = [torch.zeros_like(t, requires_grad=True) for t in tensors]
    for p, t in zip(ps, tensors):
        p.grad = t.detach().clone()
    expected = torch.nn.utils.clip_grad_norm_(ps, max_norm)
    total = clip_grad_norm(g, max_norm)
    assert isinstance(total, float)
    assert total == pytest.approx(float(expected), rel=1e-14)
    for (k, v), p in zip(g.items(), ps):
        assert rel_err(v, p.grad.numpy()) < 1e-14


def test_clip_grad_norm_reports_non_finite_and_leaves_grads():
    g = {"a": np.array([1.0, np.inf]), "b": np.array([2.0])}
    assert clip_grad_norm(g, 1.0) == float("inf")
    assert g["b"][0] == 2.0


def test_clip_grad_value_matches_torch():
    _, grads = _problem(4)
    g = grads[0]
    ps = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in g.values()]
    for p, v in zip(ps, g.values()):
        p.grad = torch.from_numpy(v.copy())
    torch.nn.utils.clip_grad_value_(ps, 0.3)
    clip_grad_value(g, 0.3)
    for v, p in zip(g.values(), ps):
        np.testing.assert_array_equal(v, p.grad.numpy())


@pytest.mark.parametrize("kwargs,match", [(dict(lr=-1.0), "lr must be"),
                                          (dict(betas=(0.9, 1.5)), r"betas\[1\] must be"),
                                          (dict(eps=float("nan")), "eps must be")])
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Adam({"w": np.zeros(2)}, **kwargs)
