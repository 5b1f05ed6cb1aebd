"""Training: the config schemas, the fit loop, checkpoints and scoring.

    from pipeline.training.config import Config        # numba-free
    from pipeline.training.loop import fit
    from pipeline.training.scoring import score_test_split

Nothing is imported here, so that reading a config loads no kernels.
"""
