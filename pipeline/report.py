"""Compare an experiment's runs: tables (markdown and CSV), seed statistics, figures.

    python -m pipeline.report                     # the latest sweep of the experiment in conf/
    python -m pipeline.report --all               # every run of the experiment
    python -m pipeline.report --experiment NAME --out reports

Writes reports/<experiment>/: runs.md, runs.csv and comparison.png (every run);
summary.csv and summary.md (one row per configuration, every parameter but the
seed: n_seeds, mean, std and 95 % t-interval of the test loss and the task's
metric, the baseline, the clipping statistics; the cells compared pairwise);
val_curves.png, hidden_grad_norms.png (bands over seeds), test_metric.png (the
interval) and clipping.png (pre-clip norms). For a sweep, the same files are
logged on its parent run (folder `report`) and the summary becomes the parent's
description, so the comparison sits beside the runs in `mlflow ui`. A sweep
writes its own report into its folder when it ends (sweep.py).
"""
import argparse
from pathlib import Path

from omegaconf import OmegaConf

from . import cli, compare, plots, seedplots, tracking

REPORT_FOLDER = "report"   # the parent run's artifact folder
NOTE_TAG = "mlflow.note.content"  # a run's description in the MLflow UI (markdown)
DESCRIPTION = "description.md"   # the short summary that becomes the parent's description


def histories(client, run_ids, key):
    """{run_id: values of metric `key` by step} (runs without it are left out)."""
    out = {}
    for run_id in run_ids:
        points = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        if points:
            out[run_id] = [m.value for m in points]
    return out


def thresholds(runs, keys):
    """{configuration: clip threshold} for the configurations that clip by norm."""
    out = {}
    norm = runs[runs.get("params.clip.kind", "") == "norm"] if "params.clip.kind" in runs else runs[:0]
    for _, run in norm.iterrows():
        key = tuple(str(run[f"params.{k}"]) for k in keys)
        out[key] = float(run["params.clip.threshold"])
    return out


def draw(function, args, path):
    """One figure: function(*args), saved to path; in this process or a sweep's worker."""
    plots.save(function(*args), path)
    return path


def draw_here(figures):
    """Draw [(function, args, path)] one after the other in this process."""
    return [draw(*figure) for figure in figures]


def write(client, runs, out_dir, title, draw_all=draw_here):
    """Every file of the report for these runs (mlflow.search_runs' frame) in out_dir.
    draw_all draws the figures, [(function, args, path)]: a sweep hands them to its
    idle worker processes."""
    out_dir = Path(out_dir)
    runs_table = compare.runs_table(runs)
    paths = compare.save_report(runs_table, out_dir)
    figures = [(compare.comparison_figure, (runs_table,), out_dir / "comparison.png")]
    table, keys, metric = compare.seed_table(runs)
    if table.empty:
        return paths + draw_all(figures)
    summ = compare.summary(table, keys, metric)
    pairs = compare.pairwise(table, keys)
    ids = list(table["run_id"])
    seed_figures = {
        "val_curves.png": (seedplots.curves, (
            table, keys, histories(client, ids, "val_loss"), "epoch", "validation loss",
            "Validation loss (geometric mean over seeds, band: 95 % t-interval)")),
        "hidden_grad_norms.png": (seedplots.curves, (
            table, keys, histories(client, ids, "hidden_grad_norm"),
            "time step t (loss at the last step)", "‖∂L/∂h_t‖ (layer 0)",
            "‖∂L/∂h_t‖ at the last diagnosed epoch (geometric mean over seeds)")),
        "test_metric.png": (seedplots.intervals, (table, keys, metric or "test_loss")),
        "clipping.png": (seedplots.clipping, (
            table, keys, histories(client, ids, "step_grad_norm"), thresholds(runs, keys))),
    }
    figures += [(function, args, out_dir / name) for name, (function, args) in seed_figures.items()]
    compare_files = [out_dir / "summary.csv", out_dir / "summary.md"]
    summ.to_csv(compare_files[0], index=False)
    compare_files[1].write_text(compare.summary_markdown(title, summ, pairs, metric,
                                                         list(seed_figures)))
    (out_dir / DESCRIPTION).write_text(compare.description_markdown(title, summ, pairs, keys, metric))
    return paths + compare_files + draw_all(figures)


def report_sweep(client, parent, out_dir, draw_all=draw_here):
    """The report of the sweep whose parent run is `parent`, written to out_dir and
    logged on the parent run; returns the paths."""
    info = client.get_run(parent).info
    children = client.search_runs([info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    runs = runs_frame(children)
    paths = write(client, runs, out_dir, f"{info.run_name}: {len(runs)} runs", draw_all)
    for path in paths:
        client.log_artifact(parent, str(path), REPORT_FOLDER)
    description = Path(out_dir) / DESCRIPTION
    if description.is_file():
        tracking.set_tags(client, parent, {NOTE_TAG: description.read_text()})
    print(f"MLflow: the runs at {tracking.ui_path(info.experiment_id)}, this sweep and its"
          f" report at {tracking.ui_path(info.experiment_id, parent)} (under `mlflow ui`)")
    return paths


def runs_frame(runs):
    """MlflowClient's runs as the frame mlflow.search_runs returns."""
    import pandas as pd

    rows = []
    for r in runs:
        row = {"run_id": r.info.run_id, "status": r.info.status, "start_time": r.info.start_time,
               "tags.mlflow.runName": r.info.run_name}
        row.update({f"params.{k}": v for k, v in r.data.params.items()})
        row.update({f"metrics.{k}": v for k, v in r.data.metrics.items()})
        row.update({f"tags.{k}": v for k, v in r.data.tags.items() if k != NOTE_TAG})
        rows.append(row)
    return pd.DataFrame(rows)


@cli.one_line_errors
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.report")
    p.add_argument("--experiment", help="MLflow experiment (default: `tracking.experiment` in conf/config.yaml)")
    p.add_argument("--all", action="store_true", help="every run, not just the latest sweep")
    p.add_argument("--out", default="reports", help="folder for the report (default: reports)")
    args = p.parse_args(argv)
    name = args.experiment or OmegaConf.load(cli.conf_dir() / "config.yaml").tracking.experiment
    client = tracking.client()
    found = client.get_experiment_by_name(name)
    runs = runs_frame(client.search_runs([found.experiment_id])) if found else None
    if runs is None or runs.empty:
        raise FileNotFoundError(f"experiment {name!r} has no runs in {tracking.tracking_uri()}")
    source = runs.get("tags.source")
    sweeps = runs[source == tracking.SWEEP_SOURCE] if source is not None else runs[:0]
    out = Path(args.out) / name
    if not args.all and not sweeps.empty:
        latest = sweeps.sort_values("start_time").iloc[-1]["run_id"]
        paths = report_sweep(client, latest, out)
        label, n = f"sweep {latest} (report logged on its parent run)", \
            int((runs.get("tags.mlflow.parentRunId") == latest).sum())
    else:
        runs = runs[source != tracking.SWEEP_SOURCE] if source is not None else runs
        paths = write(client, runs, out, f"Experiment {name}: all runs")
        label, n = "all runs", len(runs)
    print(f"{name}, {label}: {n} runs -> " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    cli.freeze_imports()
    main()
