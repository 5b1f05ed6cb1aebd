"""A trained model as one self-describing file: weights, the config, the data's header.

    bundle.save(path, model, cfg, data)
    model, info = bundle.load(path)     # info["config"], info["data"]: plain dicts

An .npz holding the parameters under their names and one JSON document
("__bundle__") with the config and the data set's header (task, sizes,
vocabulary or classes, scale, baselines; no arrays), so the model can be
rebuilt, sampled and served without the data set or this run's config file.
"""
import json
from pathlib import Path

import numpy as np

from ..data.files import atomic
from .config import plain

META = "__bundle__"


class BundleError(ValueError):
    """A model file is missing, corrupt or of the wrong kind; the message names it."""


def save(path, model, cfg, data):
    info = {"config": plain(cfg), "data": data.header(), "fingerprint": data.fingerprint}
    with atomic(path) as tmp:
        np.savez(tmp, **{META: np.array(json.dumps(info, sort_keys=True))}, **model.params)


def read(path, made_by=None):
    """(params, info) of a saved model; BundleError names the file and what is wrong."""
    path = Path(path)
    hint = f": it is made by `{made_by}`" if made_by else ""
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} is missing{hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        info = json.loads(str(arrays.pop(META)))
    except KeyError:
        raise BundleError(f"model file {path} holds weights only, not a model saved by this"
                          " pipeline (no config inside)") from None
    except Exception as exc:
        raise BundleError(f"model file {path} is corrupt ({type(exc).__name__})"
                          + (f"; remake it with `{made_by}`" if made_by else "")) from None
    return arrays, info


def build(config, header):
    """The model a config (plain dict) describes for a data set's header (plain dict)."""
    from ..nn.model import Model  # here, so that BundleError alone loads no kernels

    m = config["model"]
    tokens = header["vocab_size"] is not None
    return Model(m["cell"], m["embedding_dim"] if tokens else header["input_size"],
                 m["hidden_size"], header["output_size"], num_layers=m["num_layers"],
                 bidirectional=m["bidirectional"], nonlinearity=m["nonlinearity"],
                 dropout=m["dropout"], init=m["init"], dtype=np.dtype(m["dtype"]),
                 seed=config["seed"], vocab_size=header["vocab_size"],
                 readout=header["readout"])


def load(path, made_by=None):
    """(model with its trained weights, info)."""
    params, info = read(path, made_by)
    model = build(info["config"], info["data"])
    try:
        model.load_params(params)
    except ValueError as exc:
        raise BundleError(f"model file {path} does not match its own config ({exc})") from None
    return model, info
