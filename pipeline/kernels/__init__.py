"""The Numba kernels: forward and backward through time, arrays in and arrays out.

Every kernel module imports only numpy, numba and math. The two things the
kernels need from their process are set up here, explicitly, before any
kernel is compiled or loaded from the cache (see ``runtime``).
"""
from . import runtime

runtime.install_cache_locator()
runtime.pin_blas()
