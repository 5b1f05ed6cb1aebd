"""Checkpoints: the whole state of a training run, written atomically, resumed exactly."""
import hashlib
import json
import os
import pickle
from pathlib import Path

from .config import plain


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file."""


def run_key(cfg, data):
    """What a checkpoint must match to be resumed: the config and the data."""
    text = json.dumps(plain(cfg), sort_keys=True, default=str) + data.fingerprint
    return hashlib.sha256(text.encode()).hexdigest()


def save(path, state):
    """Write state to path through a temporary file, so a kill leaves the old one whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load(path, key):
    """The state saved at path, if it belongs to the run named by key."""
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}); delete"
                              " it to start the run afresh") from None
    if state.get("key") != key:
        raise CheckpointError(f"checkpoint {path} belongs to another config or data set;"
                              " delete it or write this run's checkpoint elsewhere")
    return state
