"""Compare runs: a tidy table of MLflow runs, a figure of test loss, and the seed
statistics (one row per configuration, cells compared pairwise).

Takes the DataFrame that ``mlflow.search_runs`` returns; no I/O here but the
files ``save_report`` and ``save_summary`` write.
"""
import numpy as np
import pandas as pd

from . import plots
from .analysis import stats

PARAM = "params."
SEED = "seed"
CELL = "model.cell"
METRICS = ("test_mse", "test_accuracy")   # the task's own test metric, whichever it logged
CLIP_COLUMNS = ("clip_fraction", "preclip_norm_q99")

COLUMNS = {
    "tags.mlflow.runName": "run",
    "params.task.name": "task",
    "params.model.cell": "cell",
    "params.model.num_layers": "layers",
    "params.model.hidden_size": "hidden",
    "params.optimizer.name": "optimizer",
    "params.optimizer.lr": "lr",
    "params.clip.kind": "clip",
    "tags.outcome": "outcome",
    "status": "status",
    "metrics.test_loss": "test_loss",
    "metrics.test_metric": "test_metric",
    "metrics.baseline": "baseline",
    "metrics.epochs_run": "epochs",
    "metrics.wall_time_s": "wall_time_s",
    "metrics.sequences_per_s": "sequences_per_s",
}


def baseline_columns(runs):
    """Every named baseline the runs logged (baseline_persistence_mse, ...): the score of
    a naive predictor on the same test split."""
    return sorted(c.removeprefix("metrics.") for c in runs.columns
                  if c.startswith("metrics.baseline_"))


def runs_table(runs):
    """One row per run, the columns above and every named baseline (missing ones left
    empty), sorted for reading."""
    columns = dict(COLUMNS, **{f"metrics.{b}": b for b in baseline_columns(runs)})
    table = pd.DataFrame({new: runs[old] if old in runs else np.nan
                          for old, new in columns.items()})
    table["layers"] = pd.to_numeric(table["layers"], errors="coerce")
    return table.sort_values(["task", "optimizer", "clip", "cell", "layers"],
                             na_position="last").reset_index(drop=True)


def comparison_figure(table):
    """Test loss by cell (bars) and depth (groups), faceted by optimizer and clipping."""
    import matplotlib.pyplot as plt

    done = table.dropna(subset=["test_loss"])
    optimizers = sorted(done["optimizer"].dropna().unique()) or ["-"]
    clips = sorted(done["clip"].dropna().unique()) or ["-"]
    cells = sorted(done["cell"].dropna().unique())
    depths = sorted(done["layers"].dropna().unique())
    fig, axes = plt.subplots(len(clips), len(optimizers), squeeze=False, sharey=True,
                             figsize=(3.2 * len(optimizers) + 1, 2.6 * len(clips) + 0.6))
    width = 0.8 / max(1, len(cells))
    for i, clip in enumerate(clips):
        for j, opt in enumerate(optimizers):
            ax = axes[i][j]
            sub = done[(done["clip"] == clip) & (done["optimizer"] == opt)]
            for k, cell in enumerate(cells):
                vals = [sub[(sub["cell"] == cell) & (sub["layers"] == d)]["test_loss"].mean()
                        for d in depths]
                ax.bar(np.arange(len(depths)) + k * width, vals, width, label=cell)
            ax.set_xticks(np.arange(len(depths)) + width * (len(cells) - 1) / 2)
            ax.set_xticklabels([f"{int(d)} layer{'s' if d > 1 else ''}" for d in depths])
            ax.set_title(f"{opt}, clip {clip}", fontsize="medium")
            ax.set_yscale("log")
            if j == 0:
                ax.set_ylabel("test loss")
    axes[0][-1].legend(fontsize="small")
    fig.suptitle("Test loss by cell and depth")
    fig.tight_layout()
    return fig


def save_report(table, out_dir):
    """runs.csv and runs.md in out_dir (comparison_figure draws comparison.png); returns
    their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "runs.csv", out_dir / "runs.md"]
    table.to_csv(paths[0], index=False)
    paths[1].write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    return paths


def swept_keys(runs):
    """The parameters that differ between the runs, the seed left out, in a reading order
    (the cell first). A group's member that its choice decides is left out: with
    optimizer=sgd,adam swept, `optimizer.name` stays and `optimizer.momentum` (sgd's
    only) or the default `optimizer.lr` of each go, unless they vary within a choice."""
    values = _param_values(runs)
    keys = [k for k in values.columns if k != SEED and values[k].nunique() > 1]
    keys = [k for k in keys if not any(
        _decides(values, choice, k) for choice in CHOICE_KEYS.get(k.split(".")[0], ())
        if choice in keys and choice != k)]
    return sorted(keys, key=lambda k: (k != CELL, k))


CHOICE_KEYS = {"optimizer": ("optimizer.name",), "clip": ("clip.kind",),  # config groups
               "task": ("task.name",)}
ABSENT = "-"   # a parameter a run does not have (momentum, for an Adam run)


def _param_values(runs):
    """The runs' parameters as text, keyed without the `params.` prefix; absent: ABSENT."""
    cols = [c for c in runs.columns if c.startswith(PARAM)]
    return pd.DataFrame({c[len(PARAM):]: runs[c].astype(object).where(runs[c].notna(), ABSENT)
                         .astype(str) for c in cols}, index=runs.index)


def _decides(values, choice, key):
    """True if every value of `choice` goes with one value of `key` only."""
    return bool((values.groupby(choice)[key].nunique() <= 1).all())


def metric_name(runs):
    found = [m for m in METRICS if f"metrics.{m}" in runs and runs[f"metrics.{m}"].notna().any()]
    return found[0] if found else None


def seed_table(runs):
    """One row per finished run: run_id, run, the swept keys, seed, outcome, test_loss,
    the task's metric, baseline and the clipping statistics."""
    done = runs[runs["status"] == "FINISHED"] if "status" in runs else runs
    keys, metric = swept_keys(done), metric_name(done)
    table = pd.DataFrame({"run_id": done["run_id"],
                          "run": done.get("tags.mlflow.runName", done["run_id"])})
    values = _param_values(done)
    for key in keys:
        table[key] = values[key]
    table[SEED] = pd.to_numeric(done.get(PARAM + SEED, 0), errors="coerce")
    table["outcome"] = done.get("tags.outcome", "finished")
    for name in ("test_loss", metric, "baseline", *baseline_columns(done), *CLIP_COLUMNS):
        if name is not None:
            table[name] = pd.to_numeric(done.get(f"metrics.{name}", np.nan), errors="coerce")
    return table.sort_values([*keys, SEED]).reset_index(drop=True), keys, metric


def summary(table, keys, metric):
    """One row per configuration: n_seeds, n_diverged, <value>_mean/_std/_ci95 for the
    test loss and the task's metric, the baseline, and the clipping statistics' means."""
    values = ["test_loss"] + ([metric] if metric and metric != "test_loss" else [])
    out = stats.summarize(table, keys, values, seed=SEED)
    grouped = table.groupby(keys, dropna=False, sort=True) if keys else [((), table)]
    extra = []
    for _, group in grouped:
        row = {"n_diverged": int((group["outcome"] == "diverged").sum()),
               "baseline": group["baseline"].mean()}
        row.update({b: group[b].mean() for b in group.columns if b.startswith("baseline_")})
        row.update({f"{c}_mean": group[c].mean() for c in CLIP_COLUMNS if c in group})
        extra.append(row)
    out = pd.concat([out, pd.DataFrame(extra)], axis=1)
    first = [*keys, "n_seeds", "n_diverged"]
    return out[first + [c for c in out.columns if c not in first]]


def pairwise(table, keys, value="test_loss"):
    """The cells (or the first swept key) compared pairwise at each shared setting of the
    other swept keys: Welch's t-test over seeds and Cohen's d."""
    if not keys:
        return pd.DataFrame()
    by = CELL if CELL in keys else keys[0]
    pairs = stats.compare_pairs(table, by, [k for k in keys if k != by], value, seed=SEED)
    if len(pairs):  # a test needs two seeds a side (a search's trials have one each)
        pairs = pairs[(pairs["n_a"] >= 2) & (pairs["n_b"] >= 2)]
    return pairs.rename(columns={"a": f"{by} a", "b": f"{by} b"})


def summary_markdown(title, summ, pairs, metric, figures):
    """summary.md: the configurations, the pairwise tests, the figures."""
    fmt = dict(index=False, floatfmt=".4g")
    lines = [f"# {title}", "",
             "One row per configuration (every parameter but the seed). `_mean` and `_std` are"
             " over seeds; `_ci95` is the half-width of the 95 % t-interval of the mean"
             " (t_{0.975, n-1} s / sqrt(n)).", "", summ.to_markdown(**fmt), ""]
    if len(pairs):
        lines += ["## Pairwise comparisons (test loss)", "",
                  "Welch's t-test over seeds (unequal variances); `cohen_d` = (mean_a - mean_b)"
                  " / sqrt((s_a^2 + s_b^2) / 2). With few seeds a large p-value means the"
                  " sweep cannot tell the two apart, not that they are equal.", "",
                  pairs.to_markdown(**fmt), ""]
    if figures:
        lines += ["## Figures", ""] + [f"- `{f}`" for f in figures] + [""]
    lines += [f"The task's metric: `{metric}`." if metric else ""]
    return "\n".join(lines)


def description_markdown(title, summ, pairs, keys, metric):
    """The short form for the parent run's description in the MLflow UI: each
    configuration's n_seeds and mean ± 95 % half-width, and the pairwise p-values."""
    values = ["test_loss"] + ([metric] if metric and metric != "test_loss" else [])
    short = summ[[*keys, "n_seeds"]].copy()
    for v in values:
        short[v] = [f"{m:.4g} ± {h:.2g}" for m, h in zip(summ[f"{v}_mean"], summ[f"{v}_ci95"])]
    if "clip_fraction_mean" in summ:
        short["clipped steps"] = [f"{f:.0%}" if np.isfinite(f) else "-"
                                  for f in summ["clip_fraction_mean"]]
    lines = [f"**{title}**: mean ± half-width of the 95 % t-interval over seeds.", "",
             short.to_markdown(index=False), ""]
    if len(pairs):
        cols = [c for c in pairs.columns if c not in ("n_a", "n_b", "t", "mean_a", "mean_b")]
        lines += ["Welch's t-test on the test loss:", "",
                  pairs[cols].to_markdown(index=False, floatfmt=".3g"), ""]
    lines.append("Full tables and figures: Artifacts, folder `report`.")
    return "\n".join(lines)
