"""Checkpoints: the whole state of a training run, written atomically, resumed exactly."""
import hashlib
import json
import pickle

from ..data.files import atomic
from .config import plain


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file."""


def run_key(cfg, data):
    """What a checkpoint must match to be resumed: the config and the data."""
    text = json.dumps(plain(cfg), sort_keys=True, default=str) + data.fingerprint
    return hashlib.sha256(text.encode()).hexdigest()


def save(path, state):
    """Write state to path through a temporary file, so a kill or a full disk leaves the
    previous checkpoint whole; a failed write raises CheckpointError naming the path."""
    try:
        with atomic(path) as tmp, open(tmp, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}"
                              " (the previous checkpoint, if any, is intact)") from None


def matches(path, key):
    """True if a checkpoint at path exists and belongs to the run named by key."""
    try:
        return load(path, key) is not None
    except CheckpointError:
        return False


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
