"""The Numba kernels: forward and backward through time, arrays in and arrays out.

    driver       the time loop of one direction of one layer, shared by every cell
    rnn, lstm, gru   each cell's row equations, forward and backward
    cells        which cell a driver runs, chosen when it compiles
    bptt         the GEMMs over all steps (input projection, dx, weight gradients)
    blas         BLAS GEMM and the packed-weight step GEMM
    activations  vectorisable sigmoid, tanh and exp

Every kernel module imports only numpy, numba and math. The three things the
kernels need from their process (full-width vectors, the cache locator, one
BLAS thread) are set up here, explicitly, before any
kernel is compiled or loaded from the cache (see ``runtime``).
"""
from . import runtime

runtime.use_full_vector_width()
runtime.install_cache_locator()
runtime.pin_blas()
