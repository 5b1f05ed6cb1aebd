"""What every benchmark mode shares: the configs, the PyTorch twin of our layer, threads."""
import sys

import numpy as np

from ..kernels import runtime
from ..nn.recurrent import Recurrent
from .timing import pin

# (B, T, D, H, layers, bidirectional)
CONFIGS = {
    "c1": (32, 100, 1, 32, 1, False),
    "c2": (32, 100, 64, 128, 2, False),
    "c3": (64, 50, 128, 512, 1, False),
    "c4": (32, 100, 64, 128, 2, True),
}


def import_torch():
    try:
        import torch
    except ImportError:
        sys.exit("the benchmark compares with PyTorch: pip install torch==2.13.0"
                 " (or pip install -e '.[test]')")
    return torch


def twins(cell, config, dtype, torch):
    """Our layer and a torch module with the same weights, an input x and its torch copy."""
    B, T, D, H, layers, bidirectional = config[:6]
    layer = Recurrent(cell, D, H, num_layers=layers, bidirectional=bidirectional,
                      dtype=dtype, seed=0)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        D, H, num_layers=layers, bidirectional=bidirectional).to(tdtype)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(layer.params[name]))
    x = np.random.default_rng(1).standard_normal((T, B, D)).astype(dtype)
    return layer, module, x, torch.from_numpy(x.copy()).requires_grad_()


def set_threads(n, torch):
    """n threads for every peer, and the process pinned to n cores."""
    pin(n)
    torch.set_num_threads(n)
    runtime.set_num_threads(n)
