"""The benchmark's JAX peer computes what PyTorch computes (skipped without the bench extra)."""
import numpy as np
import pytest
import torch

from oracle import rel_err, torch_twin
from pipeline.bench import jax_peer
from pipeline.nn import Recurrent

pytest.importorskip("jax")


@pytest.mark.parametrize("cell,relu", [("rnn", False), ("rnn", True), ("lstm", False),
                                       ("gru", False)])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_jax_peer_matches_torch(cell, relu, bidirectional):
    layer = Recurrent(cell, 3, 5, num_layers=2, bidirectional=bidirectional, seed=2,
                      nonlinearity="relu" if relu else "tanh")
    module = torch_twin(layer)
    x = np.random.default_rng(0).standard_normal((6, 4, 3))
    loss, grads, dx = jax_peer.runner(layer.params, cell, x, 2, bidirectional, relu)(keep=True)
    xt = torch.from_numpy(x).requires_grad_()
    yt, _ = module(xt)
    yt.sum().backward()
    assert rel_err(loss, yt.sum().item()) < 1e-12
    assert rel_err(dx, xt.grad.numpy()) < 1e-12
    for name, p in module.named_parameters():
        assert rel_err(grads[name], p.grad.numpy()) < 1e-12, name
