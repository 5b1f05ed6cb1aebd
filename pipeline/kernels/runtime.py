"""What the kernels need from their process: full-width vectors, a cache that sees shared
helpers, one BLAS thread.

Not a kernel: this module uses the standard library and threadpoolctl, and
``pipeline/kernels/__init__.py`` calls ``install_cache_locator`` and
``pin_blas`` explicitly, before any kernel module is imported.

Cache. Numba stamps a cached function with the hash of its own source file
only, so a kernel whose helper (``activations.py``, ``blas.py``,
``driver.py``) changed would keep loading stale machine code. Every function
defined in ``pipeline/kernels`` is stamped with the hash of the whole package
instead: any edit there recompiles every kernel once.

Vectors. On AVX-512 CPUs LLVM's tuning for most Intel models (and Numba's
host CPU name under a hypervisor) prefers 256-bit vectors, to dodge the clock
drop of older Xeons. The kernels' loops then run at half the FMA width the
core has: the step GEMM reached 110 GF/s float32 and 48 GF/s float64 against
a 2048-square GEMM's 184 and 87 on a Xeon with AVX-512 (Sapphire Rapids
class); with 512-bit vectors 157 and 80. ``use_full_vector_width`` lifts the
preference for the process's Numba code. It must run before Numba creates
its code generator (the first ``@njit`` of the process); later it changes
nothing, and ``vector_bits`` says which width the process got. The setting is
part of every cache entry's key, so the two kinds of entries never mix.

Threads. The kernels parallelise themselves with Numba's pool (batch-row
slices of a step, slices of the large GEMMs) and call BLAS inside those
slices, so the BLAS they call, SciPy's OpenBLAS reached through numba, must
stay single-threaded: two pools taking turns on the same cores made
two-thread runs many times slower. That library is not numpy's copy and
loads on first use, so ``pin_blas`` loads it first.
"""
import functools
import hashlib
from pathlib import Path

import numba
from numba.core import caching
from numba.core.codegen import get_host_cpu_features
from threadpoolctl import ThreadpoolController, threadpool_limits

KERNELS = Path(__file__).resolve().parent


# ----- the cache locator --------------------------------------------------------
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


def install_cache_locator():
    """Put the kernel locators ahead of numba's own (same search order)."""
    ours = [_UserProvided, _InTree, _UserWide]
    classes = caching.CacheImpl._locator_classes
    if classes[:len(ours)] != ours:
        classes[:0] = ours


# ----- vector width --------------------------------------------------------------
NO_256_PREFERENCE = "-prefer-256-bit"


def use_full_vector_width():
    """Let LLVM use 512-bit vectors where the CPU has AVX-512 (NUMBA_CPU_FEATURES wins)."""
    if numba.config.CPU_FEATURES is not None:
        return
    features = get_host_cpu_features()
    if "+avx512f" in features.split(","):
        numba.config.CPU_FEATURES = f"{features},{NO_256_PREFERENCE}"


def vector_bits():
    """The widest vectors the process's Numba code uses: 512, 256 or 128."""
    from numba.core.registry import cpu_target
    features = cpu_target.target_context.codegen()._tm_features.split(",")
    if "+avx512f" in features and NO_256_PREFERENCE in features:
        return 512
    return 256 if "+avx" in features or "+avx512f" in features else 128


# ----- threads ------------------------------------------------------------------
def _kernel_blas():
    """Controller of the BLAS the kernels call (SciPy's), loading it if needed."""
    import scipy.linalg.cython_blas  # noqa: F401  (numba's BLAS; loads the library)
    blas = ThreadpoolController().select(user_api="blas")
    return blas.select(filepath=[lib.filepath for lib in blas.lib_controllers
                                 if "scipy" in lib.filepath and "numpy" not in lib.filepath])


def pin_blas():
    """Keep the kernels' BLAS on one thread; Numba's pool does their parallel work."""
    _kernel_blas().limit(limits=1)


def set_num_threads(n):
    """Give the kernels n threads (process-wide), and every other BLAS n threads too.

    Numba can only go down from NUMBA_NUM_THREADS (which joblib's workers set
    to their share of the cores), so n is capped there.
    """
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    threadpool_limits(n, user_api="blas")
    pin_blas()


def blas_info():
    """Each BLAS loaded as 'file: kernel x threads'."""
    _kernel_blas()
    return ", ".join(f"{lib.filepath.rsplit('/', 1)[-1]}: {lib.architecture} x{lib.num_threads}"
                     for lib in ThreadpoolController().select(user_api="blas").lib_controllers)
