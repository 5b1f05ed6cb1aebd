"""Seed statistics: intervals, summaries by configuration, pairwise comparisons, clipping."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pipeline.analysis import clipping, stats


def test_ci_halfwidth_is_the_t_interval():
    v = [1.0, 2.0, 4.0]
    expected = sps.t.ppf(0.975, 2) * np.std(v, ddof=1) / math.sqrt(3)
    assert stats.ci_halfwidth(v) == pytest.approx(expected)
    assert math.isnan(stats.ci_halfwidth([1.0])) and math.isnan(stats.ci_halfwidth([1.0, math.nan]))


def runs():
    rng = np.random.default_rng(0)
    rows = []
    for cell, centre in (("rnn", 1.0), ("lstm", 0.1)):
        for clip in ("none", "norm"):
            for seed in range(3):
                rows.append(dict(cell=cell, clip=clip, seed=seed,
                                 test_loss=centre + 0.01 * rng.standard_normal()))
    return pd.DataFrame(rows)


def test_summary_has_one_row_per_configuration_with_interval_columns():
    s = stats.summarize(runs(), ["cell", "clip"], ["test_loss"])
    assert len(s) == 4 and (s["n_seeds"] == 3).all()
    assert {"test_loss_mean", "test_loss_std", "test_loss_ci95"} <= set(s.columns)
    lstm = s[(s["cell"] == "lstm") & (s["clip"] == "none")].iloc[0]
    assert lstm["test_loss_mean"] == pytest.approx(0.1, abs=0.03)
    assert lstm["test_loss_ci95"] > lstm["test_loss_std"] > 0   # t_{0.975,2}/sqrt(3) = 2.48


def test_pairwise_welch_finds_a_real_difference_and_not_a_null_one():
    pairs = stats.compare_pairs(runs(), "cell", ["clip"], "test_loss")
    assert len(pairs) == 2 and set(pairs["a"]) == {"lstm"} and set(pairs["b"]) == {"rnn"}
    assert (pairs["p_value"] < 1e-3).all() and (pairs["cohen_d"] < -10).all()
    same = pd.DataFrame(dict(cell=["a"] * 3 + ["b"] * 3, seed=list(range(3)) * 2,
                             v=[1.0, 2.0, 3.0, 1.1, 2.1, 2.9]))
    p = stats.compare_pairs(same, "cell", [], "v")["p_value"].iloc[0]
    assert p > 0.5
    _, p2 = sps.ttest_ind([1.0, 2.0, 3.0], [1.1, 2.1, 2.9], equal_var=False)
    assert p == pytest.approx(p2)


def test_mean_band_cuts_to_the_shortest_curve():
    mean, half = stats.mean_band([[1, 2, 3], [3, 4], [2, 3, 9]])
    assert mean.tolist() == [2, 3] and half[0] > 0


def test_clip_fraction_follows_torchs_rule_and_quantiles_ignore_a_diverged_step():
    norms = [0.5, 2.0, 3.0, 0.1, math.inf]
    s = clipping.summary(norms, "norm", 1.0)
    assert s["clip_fraction"] == 0.5
    assert s["preclip_norm_max"] == 3.0 and s["preclip_norm_q50"] == pytest.approx(1.25)
    assert clipping.summary(norms, "none", 1.0)["clip_fraction"] == 0.0
    assert math.isnan(clipping.summary(norms, "value", 1.0)["clip_fraction"])
