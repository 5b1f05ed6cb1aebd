"""Stage `train`, and the Hydra app behind single runs and sweeps.

    python -m pipeline.train --params params.yaml        # the DVC stage
    python -m pipeline.train model.cell=gru              # one run in its own outputs/ dir
    python -m pipeline.train -m model.cell=rnn,lstm,gru model.num_layers=1,2 \\
        optimizer=sgd,adam clip=none,norm                 # a sweep, one job per combination

The DVC stage reads params.yaml and writes paths.model and paths.train; the
`evaluate` stage scores it. A Hydra job is self-contained: it takes the DVC
data set when its parameters match, or generates its own, then trains and
evaluates in its own output dir and never writes DVC outputs. Every run is
recorded in MLflow; a sweep's jobs are children of one parent run (sweep.py).
"""
import gc
import sys
from pathlib import Path

if __name__ == "__main__":  # the program: no collections while it imports (main enables)
    gc.disable()
from . import cli, data, experiment, faults, jobs, outputs, tracking  # noqa: E402
from .training.config import task_params  # noqa: E402


@cli.one_line_errors
def stage(params_file):
    cfg = cli.load_params_file(params_file)
    ds = data.load(cfg.paths.dataset, made_by=experiment.GENERATE)
    outputs.check_writable(Path(cfg.paths.model).parent, cfg.paths.train,
                           Path(cfg.paths.checkpoint).parent)
    jobs.use_all_cores()
    with tracking.run(cfg, run_name=f"dvc {cfg.model.cell} {cfg.task.name}",
                      tags={"source": "dvc repro"}) as tracker:
        checkpoint = jobs.prepare_checkpoint(cfg, ds, cfg.paths.checkpoint, tracker)
        experiment.train(cfg, ds, cfg.paths.train, cfg.paths.model, tracker,
                         checkpoint=checkpoint)


@jobs.hydra_task
def hydra_job(ctx, cfg):
    """One Hydra (multi)run job in its own output dir (ctx.out); returns its test loss."""
    outputs.check_writable(ctx.out)
    jobs.set_job_threads(ctx)
    with tracking.run(cfg, run_name=ctx.run_name, parent=ctx.parent(cfg),
                      tags={"source": tracking.JOB_SOURCE, "output_dir": str(ctx.out)}) as tracker:
        ds = data.load_or_make(str(cfg.task.name), task_params(cfg.task),
                               cli.project_root() / cfg.paths.dataset)
        checkpoint = jobs.prepare_checkpoint(cfg, ds, ctx.out / "checkpoint.pkl", tracker)
        result = experiment.train(cfg, ds, ctx.out, ctx.out / "model.npz", tracker,
                                  figures_dir=ctx.out, figures=not ctx.sweep,
                                  checkpoint=checkpoint)
        metrics = experiment.evaluate(cfg, ds, result.model, ctx.out, ctx.out / "metrics.json",
                                      tracker, figures=not ctx.sweep)
    return metrics["test_loss"]


def main():
    cli.freeze_imports()
    if sys.argv[1:2] == ["--params"]:
        if len(sys.argv) != 3:
            cli.fail("usage: python -m pipeline.train --params params.yaml")
        return stage(sys.argv[2])
    import hydra

    cli.check_group_choices(sys.argv[1:])
    try:
        with faults.stop_on_signals():  # the launching process of a sweep, too
            hydra.main(config_path=str(cli.conf_dir()), config_name="config",
                       version_base=None)(hydra_job)()
    except faults.Stopped as stop:
        cli.stopped(stop)


if __name__ == "__main__":
    main()
