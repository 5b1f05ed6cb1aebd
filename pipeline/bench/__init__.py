"""Benchmark of the recurrent kernels against PyTorch and a NumPy reference."""
