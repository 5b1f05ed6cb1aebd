"""Compare an experiment's runs: a table (markdown and CSV) and a figure.

    python -m pipeline.report                     # the latest sweep of the experiment in conf/
    python -m pipeline.report --all               # every run of the experiment
    python -m pipeline.report --experiment NAME --out reports

Writes reports/<experiment>/runs.md, runs.csv and comparison.png (test loss
by cell and depth, faceted by optimizer and clipping).
"""
import argparse
from pathlib import Path

from omegaconf import OmegaConf

from . import cli, compare, tracking


@cli.one_line_errors
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.report")
    p.add_argument("--experiment", help="MLflow experiment (default: `tracking.experiment` in conf/config.yaml)")
    p.add_argument("--all", action="store_true", help="every run, not just the latest sweep")
    p.add_argument("--out", default="reports", help="folder for the report (default: reports)")
    args = p.parse_args(argv)
    name = args.experiment or OmegaConf.load(cli.conf_dir() / "config.yaml").tracking.experiment
    import mlflow

    mlflow.set_tracking_uri(tracking.tracking_uri())
    runs = mlflow.search_runs(experiment_names=[name])
    if runs.empty:
        raise FileNotFoundError(f"experiment {name!r} has no runs in {tracking.tracking_uri()}")
    sweeps = runs[runs.get("tags.source", "") == "hydra sweep"] if "tags.source" in runs else runs[:0]
    if not args.all and not sweeps.empty:
        latest = sweeps.sort_values("start_time").iloc[-1]["run_id"]
        runs = runs[runs.get("tags.mlflow.parentRunId") == latest]
        label = f"sweep {latest}"
    else:
        runs = runs[runs.get("tags.source") != "hydra sweep"] if "tags.source" in runs else runs
        label = "all runs"
    paths = compare.save_report(compare.runs_table(runs), Path(args.out) / name)
    print(f"{name}, {label}: {len(runs)} runs -> " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
