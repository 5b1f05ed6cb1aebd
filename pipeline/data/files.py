"""Writing files so that a kill never leaves one half-written."""
import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic(path):
    """Yield a temporary path beside `path` (same suffix); when the block ends, flush it to
    disk and rename it over `path`. If the block raises, `path` is untouched and the
    temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
