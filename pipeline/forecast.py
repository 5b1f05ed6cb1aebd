"""Multi-step forecasts of a trained series model, against persistence, on the test split.

    python -m pipeline.forecast --model PATH [--horizon H] [--out DIR]

PATH: a model file of task sine or series (data/model.npz, or model.npz in a
Hydra run's folder). The data set is rebuilt from the config the model carries.
Writes DIR/horizon.csv (MSE by horizon in original units: the model's recursive
forecast and persistence) and DIR/forecast.png; prints the table. A model trained
with truncated BPTT (train.tbptt > 0) forecasts from the state after the test
split so far, as it was scored; any other from each window alone.
"""
import argparse
from pathlib import Path

from . import cli, data, outputs, plots
from .inference.rollout import horizon_errors
from .training import bundle

FORECAST_TASKS = ("sine", "series")


@cli.one_line_errors
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.forecast", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a trained model file (model.npz)")
    p.add_argument("--horizon", type=int, default=12, help="steps ahead (default 12)")
    p.add_argument("--out", default="reports/forecast", help="folder for the table and figure")
    args = p.parse_args(argv)
    if args.horizon < 1:
        cli.fail(f"--horizon must be an integer >= 1, got {args.horizon}")
    model, info = bundle.load(args.model)
    task = info["config"]["task"]
    if task["name"] not in FORECAST_TASKS:
        cli.fail(f"--model {args.model} is a model of task {task['name']!r}: forecasts need"
                 f" one of {', '.join(FORECAST_TASKS)}")
    ds = data.make(task["name"], **{k: v for k, v in task.items() if k != "name"})
    try:
        table, example = horizon_errors(model, ds.splits["test"], ds.meta, args.horizon,
                                        stream=bool(info["config"]["train"]["tbptt"]))
    except ValueError as exc:
        cli.fail(f"--{exc}")
    out = Path(args.out)
    outputs.check_writable(out)
    outputs.write_csv(table, out / "horizon.csv")
    plots.save(plots.forecast(table, example), out / "forecast.png")
    print(f"{'h':>3} {'model MSE':>12} {'persistence MSE':>16}  (original units, test split)")
    for h, m, b in zip(table["horizon"], table["model_mse"], table["persistence_mse"]):
        print(f"{h:>3} {m:>12.5g} {b:>16.5g}")
    print(f"-> {out / 'horizon.csv'}, {out / 'forecast.png'}")


if __name__ == "__main__":
    cli.freeze_imports()
    main()
