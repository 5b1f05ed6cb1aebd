"""Statistics over seeds: one row per configuration, and cells compared pairwise.

A configuration is everything but the seed. With n seeds a value's interval
is the half-width of Student's t-interval, t_{0.975, n-1} s / sqrt(n); cells
are compared with Welch's t-test (unequal variances) and Cohen's d with the
two variances averaged, d = (m_a - m_b) / sqrt((s_a^2 + s_b^2) / 2).
"""
import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95


def ci_halfwidth(values, confidence=CONFIDENCE):
    """Half-width of the t-interval of the mean of values (NaN with fewer than two)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))


def summarize(table, keys, values, seed="seed"):
    """One row per configuration (the columns `keys`): n_seeds, then for each of `values`
    <name>_mean, <name>_std (ddof 1) and <name>_ci95 over the finite values of its seeds."""
    rows = []
    groups = table.groupby(list(keys), dropna=False, sort=True) if keys else [((), table)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key), n_seeds=int(group[seed].nunique()))
        for name in values:
            v = pd.to_numeric(group[name], errors="coerce").to_numpy(float)
            v = v[np.isfinite(v)]
            row[f"{name}_mean"] = float(v.mean()) if v.size else math.nan
            row[f"{name}_std"] = float(v.std(ddof=1)) if v.size > 1 else math.nan
            row[f"{name}_ci95"] = ci_halfwidth(v)
        rows.append(row)
    return pd.DataFrame(rows)


def welch(a, b):
    """Welch's t-test of two samples: (t, p, Cohen's d); NaN where undefined."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan, math.nan
    spread = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    d = (a.mean() - b.mean()) / spread if spread > 0 else math.nan
    if spread == 0:
        return math.nan, math.nan, d
    t, p = stats.ttest_ind(a, b, equal_var=False)
    return float(t), float(p), float(d)


def compare_pairs(table, by, within, value, seed="seed"):
    """Every pair of levels of `by` (the cells) at each shared setting of `within`, on `value`.

    Columns: the settings, a, b, n_a, n_b, mean_a, mean_b, diff (a - b), t, p_value,
    cohen_d. Pairs are taken in sorted order; rows where a level is missing are skipped.
    """
    rows = []
    groups = table.groupby(list(within), dropna=False, sort=True) if within else [((), table)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        levels = sorted(group[by].dropna().unique(), key=str)
        for a, b in itertools.combinations(levels, 2):
            va = pd.to_numeric(group.loc[group[by] == a, value], errors="coerce").to_numpy(float)
            vb = pd.to_numeric(group.loc[group[by] == b, value], errors="coerce").to_numpy(float)
            t, p, d = welch(va, vb)
            rows.append(dict(zip(within, key), a=a, b=b, n_a=int(np.isfinite(va).sum()),
                             n_b=int(np.isfinite(vb).sum()), mean_a=np.nanmean(va),
                             mean_b=np.nanmean(vb), diff=np.nanmean(va) - np.nanmean(vb),
                             t=t, p_value=p, cohen_d=d))
    return pd.DataFrame(rows)


def mean_band(curves, confidence=CONFIDENCE):
    """Mean and t-interval half-width, step by step, of equal-length curves (n, steps).

    Curves of different lengths (a run that stopped early) are cut to the shortest.
    """
    n = min(len(c) for c in curves)
    a = np.array([np.asarray(c, float)[:n] for c in curves])   # (seeds, steps)
    mean = np.nanmean(a, axis=0)
    if a.shape[0] < 2:
        return mean, np.full(n, np.nan)
    half = stats.t.ppf(0.5 + confidence / 2, a.shape[0] - 1) * np.nanstd(a, axis=0, ddof=1) \
        / math.sqrt(a.shape[0])
    return mean, half
