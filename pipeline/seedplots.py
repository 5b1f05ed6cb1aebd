"""Figures of a sweep over seeds: curves with bands, the test metric with its interval,
and the distribution of pre-clip gradient norms.

Each function takes the per-run table of ``compare.seed_table`` (run_id, the swept
keys, seed, metrics), the swept keys, and per-run arrays keyed by run_id; it
returns a matplotlib Figure (``plots.save`` writes it).
"""
import itertools

import numpy as np

from . import plots
from .analysis import stats

plt = plots.plt
CELL = "model.cell"
MAX_FACETS = 12


def _split(keys):
    """(the key lines are drawn by, the keys facets are made of)."""
    by = CELL if CELL in keys else (keys[0] if keys else None)
    return by, [k for k in keys if k != by]


def _facets(table, facet_keys):
    if not facet_keys:
        return [((), table)]
    groups = list(table.groupby(facet_keys, sort=True))[:MAX_FACETS]
    return [(k if isinstance(k, tuple) else (k,), g) for k, g in groups]


def _grid(n, width=4.2, height=3.2):
    width = max(width, 5.6) if n == 1 else width
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 0.4, height * rows + 0.7),
                             squeeze=False, sharey=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _label(keys, values):
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values)) or "all runs"


def curves(table, keys, series, xlabel, ylabel, title):
    """One line per level of the cell, a facet per setting of the other swept keys; log y.
    The line is the geometric mean over seeds and the band its 95 % t-interval, both
    taken on log10 of the values, which span decades (a band of the plain mean would
    dip below zero)."""
    by, facet_keys = _split(keys)
    facets = _facets(table, facet_keys)
    fig, axes = _grid(len(facets))
    colours = dict(zip(sorted(table[by].unique()) if by else [None],
                       itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])))
    for ax, (values, group) in zip(axes, facets):
        levels = group.groupby(by, sort=True) if by else [(None, group)]
        for level, runs in levels:
            found = [np.asarray(series[r], float) for r in runs["run_id"] if len(series.get(r, []))]
            if not found:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = [np.log10(np.where(c > 0, c, np.nan)) for c in found]
            mean, half = stats.mean_band(logs)
            x = np.arange(mean.size)
            ax.plot(x, 10 ** mean, color=colours[level], lw=1.5,
                    label=f"{level} (n={len(found)})" if by else f"n={len(found)}")
            ax.fill_between(x, 10 ** (mean - half), 10 ** (mean + half), color=colours[level],
                            alpha=0.2, lw=0)
        ax.set(yscale="log", xlabel=xlabel, title=_label(facet_keys, values))
        ax.title.set_fontsize("small")
        ax.legend(fontsize="x-small")
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def intervals(table, keys, metric):
    """The test metric of every configuration: each seed a dot, the mean with its 95 %
    t-interval as a bar; one facet per setting of the other swept keys."""
    by, facet_keys = _split(keys)
    facets = _facets(table, facet_keys)
    fig, axes = _grid(len(facets), width=3.6)
    for ax, (values, group) in zip(axes, facets):
        levels = list(group.groupby(by, sort=True)) if by else [("all", group)]
        for i, (level, runs) in enumerate(levels):
            v = runs[metric].to_numpy(float)
            v = v[np.isfinite(v)]
            if not v.size:
                continue
            ax.plot(np.full(v.size, i) + np.linspace(-0.12, 0.12, v.size), v, "o", ms=3.5,
                    color="0.45", zorder=3)
            half = stats.ci_halfwidth(v)
            ax.errorbar(i, v.mean(), yerr=None if np.isnan(half) else half, fmt="s", ms=6,
                        capsize=6, lw=1.8, color=f"C{i}", zorder=4)
        baseline = group["baseline"].mean() if "baseline" in group else np.nan
        if np.isfinite(baseline):
            ax.axhline(baseline, color="0.5", ls=":", lw=1, label="task baseline")
            ax.legend(fontsize="x-small")
        ax.set_xticks(range(len(levels)))
        ax.set_xticklabels([str(level) for level, _ in levels])
        ax.set_xlim(-0.6, len(levels) - 0.4)
        ax.set(yscale="log", title=_label(facet_keys, values))
        ax.title.set_fontsize("small")
    axes[0].set_ylabel(f"{metric} (mean ± 95 % t-interval; dots: seeds)")
    fig.suptitle(f"Test metric by {by or 'run'}", fontsize="medium")
    fig.tight_layout()
    return fig


def clipping(table, keys, step_norms, thresholds):
    """Pre-clip global gradient norm of every step, pooled over a configuration's seeds:
    a box (quartiles), whiskers at the 1st and 99th percentiles, every step beyond them
    a dot (the exploding steps are the upper tail), the clip threshold as a tick, and the
    share of clipped steps under each box."""
    groups = list(table.groupby(keys, sort=True)) if keys else [((), table)]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(groups) + 2), 4.4))
    data, labels = [], []
    for i, (values, runs) in enumerate(groups):
        values = values if isinstance(values, tuple) else (values,)
        steps = [np.asarray(step_norms.get(r, []), float) for r in runs["run_id"]]
        pooled = np.concatenate(steps) if steps else np.array([])
        pooled = pooled[np.isfinite(pooled) & (pooled > 0)]
        data.append(pooled if pooled.size else np.array([np.nan]))
        frac = runs["clip_fraction"].mean() if "clip_fraction" in runs else np.nan
        labels.append("\n".join(str(v) for v in values)
                      + (f"\nclipped {frac:.0%}" if np.isfinite(frac) else ""))
        t = thresholds.get(values)
        if t is not None:
            ax.plot([i + 0.6, i + 1.4], [t, t], color="C3", lw=1.2,
                    label="clip threshold" if "clip threshold" not in
                    ax.get_legend_handles_labels()[1] else None)
    ax.boxplot(data, whis=(1, 99), showfliers=True, widths=0.55,
               flierprops=dict(marker=".", ms=3, alpha=0.5, markeredgecolor="C1"))
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize="x-small")
    ax.set(yscale="log", ylabel="global gradient norm before clipping (every step)",
           title="Pre-clip gradient norm of every step (whiskers: 1-99 %)")
    ax.title.set_fontsize("medium")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig
