"""The kernels' helpers against plain NumPy: activations, GEMM wrappers."""
import numpy as np
import pytest
from numba import njit

from pipeline.kernels.activations import fexp, sigmoid, tanh
from pipeline.kernels.blas import MR, gemm, gemm_packed, packed


@njit(error_model="numpy")
def _apply(x, which):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = fexp(x[i]) if which == 0 else (sigmoid(x[i]) if which == 1 else tanh(x[i]))
    return out


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-15), (np.float32, 5e-7)])
def test_activations_are_accurate_and_keep_their_dtype(dtype, tol):
    x = np.concatenate([np.linspace(-30, 30, 20001), np.linspace(-1e-6, 1e-6, 101),
                        np.linspace(-0.7, 0.7, 1001)]).astype(dtype)
    ref = x.astype(np.float64)
    for which, exact in [(0, np.exp(np.clip(ref, -80, 80))), (1, 1 / (1 + np.exp(-ref))),
                         (2, np.tanh(ref))]:
        arg = np.clip(x, -80, 80) if which == 0 else x
        got = _apply(arg, which)
        assert got.dtype == dtype
        rel = np.abs(got - exact) / np.maximum(np.abs(exact), np.finfo(dtype).tiny)
        assert rel.max() < 4 * tol, which


def test_activations_saturate_without_overflow():
    x = np.array([-1e4, -800.0, 800.0, 1e4])
    assert np.array_equal(_apply(x, 2), [-1.0, -1.0, 1.0, 1.0])
    s = _apply(x, 1)
    assert s[0] < 1e-300 and s[-1] == 1.0 and np.all(np.isfinite(s))


@njit
def _gemm(ta, tb, alpha, a, b, beta, c):
    gemm(ta, tb, alpha, a, b, beta, c)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_on_strided_rows(ta, tb):
    rng = np.random.default_rng(0)
    wide = rng.standard_normal((7, 20))
    a = wide[:, 2:7] if not ta else wide[:5, 3:10]       # (7, 5) or (5, 7) with row stride 20
    b = rng.standard_normal((5, 4)) if not tb else rng.standard_normal((4, 5))
    c_full = rng.standard_normal((7, 9))
    before = c_full.copy()
    c = c_full[:, 1:5]
    expect = 0.5 * c + 2.0 * ((a.T if ta else a) @ (b.T if tb else b))
    _gemm(ta, tb, 2.0, a, b, 0.5, c)
    np.testing.assert_allclose(c, expect, rtol=1e-13)
    # the columns around the strided view are untouched
    np.testing.assert_array_equal(c_full[:, [0, 5, 6, 7, 8]], before[:, [0, 5, 6, 7, 8]])


def test_gemm_rejects_misaligned_shapes():
    with pytest.raises(ValueError, match="shapes do not align"):
        _gemm(False, False, 1.0, np.zeros((2, 3)), np.zeros((4, 2)), 0.0, np.zeros((2, 2)))


@njit(error_model="numpy")
def _packed(w):
    return packed(w)


@njit(error_model="numpy")
def _gemm_packed(a, wp, n, c, accumulate, r0, r1):
    gemm_packed(a, wp, n, c, accumulate, r0, r1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B,K,N", [(1, 1, 1), (5, 7, 33), (32, 128, 512), (9, 40, 64),
                                   (MR + 3, 17, 50)])
def test_packed_gemm_matches_numpy(dtype, B, K, N):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((B, K)).astype(dtype)
    w = rng.standard_normal((N, K)).astype(dtype)
    wp = _packed(w)
    np.testing.assert_array_equal(wp, packed(w))  # the NumPy statement of the layout
    c = rng.standard_normal((B, N + 3)).astype(dtype)
    before = c.copy()
    _gemm_packed(a, wp, N, c[:, :N], True, 0, B)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(c[:, :N], before[:, :N] + a @ w.T, rtol=tol, atol=tol * K)
    np.testing.assert_array_equal(c[:, N:], before[:, N:])
    r0, r1 = min(1, B - 1), B
    out = np.zeros((B, N), dtype)
    _gemm_packed(a, wp, N, out, False, r0, r1)
    np.testing.assert_allclose(out[r0:r1], a[r0:r1] @ w.T, rtol=tol, atol=tol * K)
    assert not out[:r0].any()
    expect = out.copy()
    gemm_packed(a, wp, N, expect, False, r0, r1)  # the NumPy statement of the product
    np.testing.assert_allclose(out, expect, rtol=tol, atol=tol * K)


def test_kernel_cache_is_stamped_with_the_whole_kernels_package():
    """A change to a shared helper (activations, blas, bptt, a cell) must invalidate every kernel."""
    import inspect

    from numba.core import caching

    from pipeline.kernels import driver
    from pipeline.kernels import runtime as jitcache

    impl = caching.FunctionCache(driver.forward.py_func)._impl
    assert impl.locator.get_source_stamp() == jitcache.kernels_stamp()
    other = caching.FunctionCache(_apply.py_func)._impl  # outside pipeline/kernels
    assert other.locator.get_source_stamp() != jitcache.kernels_stamp()
    assert inspect.getfile(driver.forward.py_func).endswith("kernels/driver.py")


CACHE_PROBE = """
import json, numpy as np
from pipeline.kernels import bptt, driver
from pipeline.nn import Recurrent
layer = Recurrent("rnn", 3, 4, bidirectional=True, nonlinearity="relu")
y, _ = layer.forward(np.ones((4, 2, 3)), lengths=[4, 2])
layer.backward(np.ones_like(y))
print(json.dumps({
    "hits": [len(f.stats.cache_hits) for f in (driver.forward, driver.backward)],
    "misses": [len(f.stats.cache_misses) for f in (driver.forward, driver.backward)],
    "parallel": [len(f.signatures) for f in (driver._forward_parallel, driver._backward_parallel,
                                             bptt._project_parallel, bptt._grads_parallel)]}))
"""


def test_kernels_compile_once_per_cell_and_load_from_the_cache_after(tmp_path):
    """Cell and thread choice are in the argument types, so a second process loads every
    entry from Numba's disk cache; one thread compiles nothing parallel."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [json.loads(subprocess.run([sys.executable, "-c", CACHE_PROBE], env=env, check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(2)]
    assert runs[0]["misses"] == [1, 1] and runs[0]["hits"] == [0, 0]
    assert runs[1]["hits"] == [1, 1] and runs[1]["misses"] == [0, 0]
    assert runs[0]["parallel"] == runs[1]["parallel"] == [0, 0, 0, 0]


def test_cells_are_chosen_by_name():
    from pipeline.kernels.cells import ROWS, Cell

    assert sorted(ROWS) == ["gru", "lstm", "rnn_relu", "rnn_tanh"]
    with pytest.raises(ValueError, match="cell must be one of rnn_tanh, rnn_relu, lstm, gru"):
        Cell("rnn")


def test_kernels_use_the_full_vector_width_of_the_cpu():
    """LLVM's 256-bit preference on AVX-512 CPUs is lifted (unless NUMBA_CPU_FEATURES says)."""
    import os

    from numba.core.codegen import get_host_cpu_features

    from pipeline.kernels import runtime

    wide = "+avx512f" in get_host_cpu_features().split(",")
    if os.environ.get("NUMBA_CPU_FEATURES"):
        pytest.skip("NUMBA_CPU_FEATURES is set: the user's choice stands")
    assert runtime.vector_bits() == (512 if wide else 256)
