"""The benchmark: its NumPy per-step peer computes what PyTorch computes, and its
bounds are bounds."""
import os

import numpy as np
import pytest
import torch

from oracle import rel_err, torch_twin
from pipeline.bench import reference
from pipeline.bench.__main__ import gemm_flops, main
from pipeline.bench.peers import CONFIGS
from pipeline.nn import Recurrent


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_reference_matches_torch(cell, bidirectional):
    layer = Recurrent(cell, 3, 5, num_layers=2, bidirectional=bidirectional, seed=2)
    module = torch_twin(layer)
    x = np.random.default_rng(0).standard_normal((6, 4, 3))
    dy = np.random.default_rng(1).standard_normal((6, 4, layer.dirs * 5))
    y, tape = reference.forward(layer.params, cell, x, 2, bidirectional)
    dx, grads = reference.backward(layer.params, cell, dy, tape, 2, bidirectional)
    xt = torch.from_numpy(x).requires_grad_()
    yt, _ = module(xt)
    (yt * torch.from_numpy(dy)).sum().backward()
    assert rel_err(y, yt.detach().numpy()) < 1e-12
    assert rel_err(dx, xt.grad.numpy()) < 1e-12
    for name, p in module.named_parameters():
        assert rel_err(grads[name], p.grad.numpy()) < 1e-12, name


def test_bench_row_respects_its_own_bounds(capsys):
    """No peer beats the in-run peak: a wrong FLOP count or peak would show here."""
    rows = main(["--threads", "1", "--dtypes", "float64", "--cells", "gru",
                 "--configs", "c1", "--reps", "3"])
    (row,) = rows
    assert 0 < row["efficiency"] < 1.1
    flops = gemm_flops("gru", *CONFIGS["c1"])
    assert flops / (row["gemms_ms"] * 1e-3) / 1e9 < 1.1 * row["peak_gflops"]
    assert row["ratio_torch"] == pytest.approx(row["ours_ms"] / row["torch_ms"])
    assert set(row["cpu_wall"]) >= {"torch", "ours"}
    out = capsys.readouterr().out
    assert "512-bit" in out or "256-bit" in out
    assert "| 1 | float64 | gru | c1 |" in out
    assert gemm_flops("gru", 32, 100, 1, 32, 1, False) == 6 * 100 * 32 * 96 * (1 + 32)


def test_one_thread_rows_pin_the_process_to_one_core():
    from pipeline.bench.timing import pin

    try:
        pin(1)
        assert len(os.sched_getaffinity(0)) == 1
        for tid in os.listdir("/proc/self/task"):
            assert len(os.sched_getaffinity(int(tid))) == 1
    finally:
        pin(None)
    assert len(os.sched_getaffinity(0)) == len(pin.__globals__["_allowed_cores"]())


def test_ragged_rows_time_the_packed_path(capsys):
    rows = main(["--ragged", "--threads", "1", "--dtypes", "float64", "--cells", "rnn",
                 "--ragged-configs", "v2", "--reps", "3"])
    (row,) = rows
    assert 0.2 < row["valid"] < 1
    assert row["ours packed_ms"] > 0 and row["torch packed_ms"] > 0
    assert "| 1 | float64 | rnn | v2 |" in capsys.readouterr().out
