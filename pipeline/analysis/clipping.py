"""What a run's pre-clip global gradient norms say about clipping.

A step is clipped by ``clip=norm`` when its norm exceeds the threshold
(torch's rule: threshold / (norm + 1e-6) < 1). ``clip=value`` clamps entries,
which the global norm does not show, so its fraction is left undefined.
"""
import math

import numpy as np

QUANTILES = (0.5, 0.9, 0.99)
TORCH_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s term in the denominator


def summary(step_norms, kind, threshold):
    """{"clip_fraction", "preclip_norm_q50", "_q90", "_q99", "preclip_norm_max"}.

    step_norms: the pre-clip global norm of every step (non-finite ones, a
    diverged step, are left out). clip_fraction: share of steps clipped; 0 without
    clipping, NaN for clip=value.
    """
    v = np.asarray(step_norms, float)
    v = v[np.isfinite(v)]
    out = {}
    if kind == "norm":
        out["clip_fraction"] = float(np.mean(v + TORCH_EPS > threshold)) if v.size else math.nan
    else:
        out["clip_fraction"] = 0.0 if kind == "none" else math.nan
    for q in QUANTILES:
        out[f"preclip_norm_q{round(q * 100)}"] = float(np.quantile(v, q)) if v.size else math.nan
    out["preclip_norm_max"] = float(v.max()) if v.size else math.nan
    return out
