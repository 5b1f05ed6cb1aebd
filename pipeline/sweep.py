"""The Hydra callback around a sweep (hydra.callbacks.sweep in conf/config.yaml).

Before any job starts, in the launching process:
1. every job's config is composed and checked: a bad value stops the sweep
   with one line naming the key, before anything runs;
2. the cores are divided among the parallel jobs (PIPELINE_JOB_THREADS);
3. the Numba cache is warmed for the sweep's cells and dtypes, so jobs load
   kernels instead of compiling them at once and racing on the cache;
4. the MLflow store and experiment are created (a fresh SQLite store races
   too) and a parent run opened; jobs log child runs under it.
At the end the parent run is closed: FINISHED, or FAILED if a job failed or
the sweep stopped (an atexit hook, since Hydra skips on_multirun_end then).
"""
import atexit
import itertools
import os

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from . import cli, tracking
from .config import ConfigError, from_node
from .train import JOB_THREADS_ENV


def job_overrides(task_overrides):
    """Every job's override list, as the basic sweeper expands a sweep."""
    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    choices = []
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([f"{key}={o.get_value_element_as_str()}"])
    return [list(c) for c in itertools.product(*choices)]


class SweepCallback(Callback):
    def __init__(self):
        self.parent = None
        self.client = None

    def on_multirun_start(self, config, config_name=None, **kwargs):
        jobs = job_overrides(config.hydra.overrides.task)
        loader = GlobalHydra.instance().config_loader()
        cfgs = []
        for overrides in jobs:
            try:
                node = loader.load_configuration(config_name, overrides, RunMode.RUN)
                cfgs.append(from_node(node))
            except ConfigError as exc:
                cli.fail(f"{exc} (job {' '.join(overrides)})")
        n_jobs = config.hydra.launcher.get("n_jobs", 1) or 1
        cores = os.cpu_count() or 1
        parallel = min(len(jobs), cores if n_jobs < 0 else n_jobs)
        per_job = max(1, cores // max(1, parallel))
        os.environ[JOB_THREADS_ENV] = str(per_job)

        from .nn import warm_up
        warm_up(cells=sorted({c.model.cell for c in cfgs}),
                dtypes=sorted({c.model.dtype for c in cfgs}), nthreads=per_job)

        os.environ["MLFLOW_TRACKING_URI"] = tracking.tracking_uri()
        experiment_id = tracking.setup(cfgs[0].experiment)
        from mlflow.tracking import MlflowClient
        self.client = MlflowClient(tracking.tracking_uri())
        sweep_dir = str(config.hydra.sweep.dir)
        run = self.client.create_run(experiment_id, run_name=f"sweep {os.path.basename(sweep_dir)}",
                                     tags={"source": "hydra sweep", "sweep_dir": sweep_dir,
                                           "jobs": str(len(jobs)),
                                           "overrides": " ".join(config.hydra.overrides.task),
                                           "git_commit": tracking.git_commit()})
        self.parent = run.info.run_id
        os.environ[tracking.PARENT_RUN_ENV] = self.parent
        atexit.register(self._close, "FAILED")

    def on_multirun_end(self, config, **kwargs):
        self._close("FINISHED")

    def _close(self, status):
        if self.parent is not None:
            failed = self.client.search_runs(
                [self.client.get_run(self.parent).info.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{self.parent}' and "
                              "attributes.status = 'FAILED'")
            self.client.set_terminated(self.parent, "FAILED" if failed else status)
            self.parent = None
            os.environ.pop(tracking.PARENT_RUN_ENV, None)
