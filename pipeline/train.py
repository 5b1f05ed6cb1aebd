"""Stage `train`, and the Hydra app behind sweeps.

    python -m pipeline.train --params params.yaml        # the DVC stage
    python -m pipeline.train model.cell=gru              # one run in its own outputs/ dir
    python -m pipeline.train -m model.cell=rnn,lstm,gru model.num_layers=1,2 \\
        optimizer=sgd,adam clip=none,norm                 # a sweep, one job per combination

The DVC stage reads params.yaml and writes paths.model and paths.train.
A Hydra job is self-contained: it takes the DVC data set when its parameters
match, or generates its own, then trains and evaluates in its own output dir
and never writes DVC outputs. Every run is recorded in MLflow; a sweep's
jobs are children of one parent run (see pipeline/sweep.py).
"""
import os
import sys
from pathlib import Path

from . import cli, experiment, tasks, threads, tracking
from .config import from_node, task_params


@cli.one_line_errors
def stage(params_file):
    cfg = cli.load_params_file(params_file)
    data = tasks.load(cfg.paths.dataset, made_by=experiment.GENERATE)
    threads.set_num_threads(os.cpu_count() or 1)
    with tracking.run(cfg, run_name=f"dvc {cfg.model.cell} {cfg.task.name}",
                      tags={"source": "dvc repro"}) as tracker:
        experiment.train_and_record(cfg, data, cfg.paths.train, cfg.paths.model, tracker)


def job_threads(hydra_cfg):
    """Threads for this job: the CPUs Ray gave its task, else the cores / parallel jobs."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:
            return max(1, int(cpus))
    cores = os.cpu_count() or 1
    n_jobs = hydra_cfg.launcher.get("n_jobs") if hydra_cfg.mode.name == "MULTIRUN" else 1
    return max(1, cores // (cores if not n_jobs or n_jobs < 0 else n_jobs))


def job(node):
    """One Hydra (multi)run job, in HydraConfig's output dir.

    The config was checked before the sweep fanned out (pipeline/sweep.py);
    what fails after that is recorded as a FAILED run, and the sweep goes on.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    sweep = hydra_cfg.mode == RunMode.MULTIRUN
    out = Path(hydra_cfg.runtime.output_dir)
    try:
        cfg = from_node(node)
        threads.set_num_threads(job_threads(hydra_cfg))
        parent = tracking.sweep_parent(cfg.experiment, str(Path(hydra_cfg.sweep.dir).resolve())) \
            if sweep else None
        with tracking.run(cfg, run_name=hydra_cfg.job.override_dirname or "defaults",
                          parent=parent,
                          tags={"source": tracking.JOB_SOURCE, "output_dir": str(out)}) as tracker:
            data = tasks.load_or_make(cfg.task.name, task_params(cfg.task),
                                      tracking.repo_root() / cfg.paths.dataset)
            result = experiment.train_and_record(cfg, data, out, out / "model.npz", tracker,
                                                 figures_dir=out)
            experiment.record_evaluation(data, result.metrics["test_loss"],
                                         result.metrics["test_metric"], result.predictions,
                                         out, out / "metrics.json", figure=False)
    except cli.EXPECTED_ERRORS as exc:
        if sweep:
            raise  # recorded as this job's failure; the other jobs go on
        cli.fail(str(exc).splitlines()[0])
    return result.metrics["test_loss"]


def hydra_main():
    import hydra

    cli.check_group_choices(sys.argv[1:])
    hydra.main(config_path="../conf", config_name="config", version_base=None)(job)()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--params"]:
        if len(sys.argv) != 3:
            cli.fail("usage: python -m pipeline.train --params params.yaml")
        stage(sys.argv[2])
    else:
        hydra_main()
