"""Recurrent networks from first principles, and the experiment pipeline around them.

Three floors, one folder each:
    kernels/              Numba kernels: forward and backward through time (numpy, numba, math)
    nn/, data/, training/, analysis/, inference/
                          the library: layer and model, data sets and tasks, the training
                          loop, the statistics and the gradient study, sampling and forecasts
    *.py                  the stages (python -m pipeline.<stage>) and their helpers, the only
                          code that touches Hydra, MLflow, DVC and paths
"""
