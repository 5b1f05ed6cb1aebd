"""Thread pools of the kernels.

The kernels parallelise themselves with Numba's pool (batch-row slices of a
step, slices of the large GEMMs) and call BLAS inside those slices, so the
BLAS they call, SciPy's OpenBLAS reached through numba, must stay
single-threaded: two pools taking turns on the same cores is what made
two-thread runs many times slower (see ../shared/notes/performance.md).
That library is not numpy's copy, and it loads on first use, so a limit set
before it loads would miss it: ``pin_kernel_blas`` loads it first.
"""
import numba
from threadpoolctl import ThreadpoolController, threadpool_limits


def _kernel_blas():
    """Controller of the BLAS the kernels call (SciPy's), loading it if needed."""
    import scipy.linalg.cython_blas  # noqa: F401  (numba's BLAS; loads the library)
    blas = ThreadpoolController().select(user_api="blas")
    return blas.select(filepath=[lib.filepath for lib in blas.lib_controllers
                                 if "scipy" in lib.filepath and "numpy" not in lib.filepath])


def pin_kernel_blas():
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
    pin_kernel_blas()


def blas_info():
    """Each BLAS loaded as 'file: kernel x threads'."""
    _kernel_blas()
    return ", ".join(f"{lib.filepath.rsplit('/', 1)[-1]}: {lib.architecture} x{lib.num_threads}"
                     for lib in ThreadpoolController().select(user_api="blas").lib_controllers)
