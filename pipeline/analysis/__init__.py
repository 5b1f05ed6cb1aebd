"""The research instrument: seed statistics, the gradient-flow study, clipping statistics.

    from pipeline.analysis import stats, gradflow, clipping

``stats``: configurations summarised over seeds (mean, std, t-interval) and
cells compared pairwise (Welch's t-test, effect size). ``gradflow``:
‖∂L/∂h_t‖ against the distance T - t at initialisation (cells, spectral
radius) and for a trained model, with the fitted decay rate. ``clipping``:
what a run's pre-clip gradient norms say about clipping. Plain values and
arrays in, tables out; nothing here knows about Hydra, MLflow or DVC.
"""
