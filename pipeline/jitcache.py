"""Numba's on-disk cache, made to see the helpers that kernel modules share.

Numba stamps a cached function with the hash of its own source file only, so a
kernel whose helper (``kernels/activations.py``, ``kernels/blas.py``) changed
would keep loading stale machine code. Here every function defined in
``pipeline/kernels`` is stamped with the hash of the whole package instead:
any edit there recompiles every kernel once.
"""
import functools
import hashlib
from pathlib import Path

from numba.core import caching

KERNELS = Path(__file__).resolve().parent / "kernels"


@functools.lru_cache(maxsize=None)
def kernels_stamp():
    """sha256 over the names and contents of the kernel modules."""
    digest = hashlib.sha256()
    for path in sorted(KERNELS.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class _KernelStamp:
    def get_source_stamp(self):
        return kernels_stamp()

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != KERNELS:
            return None
        return super().from_function(py_func, py_file)


class _UserProvided(_KernelStamp, caching.UserProvidedCacheLocator):
    pass


class _InTree(_KernelStamp, caching.InTreeCacheLocator):
    pass


class _UserWide(_KernelStamp, caching.UserWideCacheLocator):
    pass


def install():
    """Put the kernel locators ahead of numba's own (same search order)."""
    ours = [_UserProvided, _InTree, _UserWide]
    classes = caching.CacheImpl._locator_classes
    if classes[:len(ours)] != ours:
        classes[:0] = ours
