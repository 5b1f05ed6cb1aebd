"""Compare runs: a tidy table of MLflow runs, and a figure of test loss.

Takes the DataFrame that ``mlflow.search_runs`` returns; no I/O here.
"""
import numpy as np
import pandas as pd

from . import plots

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


def runs_table(runs):
    """One row per run, the columns above (missing ones left empty), sorted for reading."""
    table = pd.DataFrame({new: runs[old] if old in runs else np.nan
                          for old, new in COLUMNS.items()})
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
    """runs.csv, runs.md and comparison.png in out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "runs.csv", out_dir / "runs.md", out_dir / "comparison.png"]
    table.to_csv(paths[0], index=False)
    paths[1].write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    plots.save(comparison_figure(table), paths[2])
    return paths
