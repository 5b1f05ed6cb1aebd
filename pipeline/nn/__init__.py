"""The layer and the model: Recurrent (PyTorch's nn.RNN/LSTM/GRU), Model, losses, optimizers.

    from pipeline.nn import Recurrent, Model

Modules: ``spec`` (what a layer can be; plain names, no numba), ``recurrent``
(the layer on the Numba kernels), ``packing`` (sequences of different lengths
as PyTorch's packed rows), ``model`` (embedding, stack, readout), ``losses``,
``optim`` (torch.optim's optimizers and clipping).
The names below load their module on first use, so that ``pipeline.nn.spec``
can be imported (by a config check, say) without loading the kernels.
"""
import importlib

_EXPORTS = {"Recurrent": "recurrent", "load_into": "recurrent", "warm_up": "recurrent",
            "Model": "model", "GATES": "spec", "INITS": "spec", "NONLINEARITIES": "spec"}


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
