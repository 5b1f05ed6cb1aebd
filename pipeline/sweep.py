"""The Hydra callback around a sweep (hydra.callbacks.sweep in conf/config.yaml).

Before any job starts, in the launching process:
1. every job's config is composed and checked: a bad value stops the sweep
   with one line naming the key, before anything runs;
2. the Numba cache is warmed for the sweep's cells and dtypes, so jobs load
   kernels instead of compiling them at once and racing on the cache;
3. the MLflow store and experiment are created (a fresh SQLite store races
   too) and a parent run opened, tagged with the sweep folder; each job
   finds it there and logs a child run under it.
At the end the parent run is closed: FINISHED, or FAILED if a job failed or
the sweep stopped (an atexit hook, since Hydra skips on_multirun_end then).
A child still RUNNING then (its process was killed) is marked FAILED, and a
job that left no run at all (killed before it logged, or never started) gets
a FAILED child run under its own name, so every job of the sweep shows.
"""
import atexit
import os
import signal
import socket
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from . import cli, faults, tracking
from .training.config import ConfigError


def job_overrides(task_overrides):
    """Every job's override list, expanded by Hydra's own basic sweeper."""
    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    return BasicSweeper.split_arguments(parsed, None)[0]


class SweepCallback(Callback):
    def __init__(self):
        self.parent = None
        self.client = None
        self.jobs = {}  # each job's child-run name (as pipeline.train names it) -> config

    def on_multirun_start(self, config, config_name=None, **kwargs):
        jobs = job_overrides(config.hydra.overrides.task)
        loader = GlobalHydra.instance().config_loader()
        cfgs = []
        for overrides in jobs:
            try:
                node = loader.load_configuration(config_name, overrides, RunMode.RUN)
                cfgs.append(cli.from_node(node))
            except ConfigError as exc:
                cli.fail(f"{exc} (job {' '.join(overrides)})")
            self.jobs[node.hydra.job.override_dirname or "defaults"] = cfgs[-1]
        from .nn.recurrent import warm_up
        warm_up(cells=sorted({str(c.model.cell) for c in cfgs}),
                dtypes=sorted({str(c.model.dtype) for c in cfgs}), nthreads=os.cpu_count() or 1)

        experiment_id = tracking.setup(cfgs[0].tracking.experiment)
        self.client = tracking.client()
        sweep_dir = str(Path(str(config.hydra.sweep.dir)).resolve())
        run = self.client.create_run(experiment_id, run_name=f"sweep {Path(sweep_dir).name}",
                                     tags={"source": tracking.SWEEP_SOURCE, "sweep_dir": sweep_dir,
                                           "jobs": str(len(jobs)),
                                           "overrides": " ".join(config.hydra.overrides.task),
                                           "git_commit": tracking.git_commit(),
                                           "host": socket.gethostname(),
                                           "pid": str(os.getpid())})
        self.parent = run.info.run_id
        atexit.register(self._close, "FAILED")

    def on_multirun_end(self, config, **kwargs):
        self._close("FINISHED")

    def _close(self, status):
        if self.parent is None:
            return
        experiment = self.client.get_run(self.parent).info.experiment_id
        children = self.client.search_runs(
            [experiment], filter_string=f"tags.mlflow.parentRunId = '{self.parent}'")
        for child in children:
            if child.info.status == "RUNNING":  # its job died without closing it
                tracking.set_tags(self.client, child.info.run_id,
                                  {"failure": "the job's process died"})
                self.client.set_terminated(child.info.run_id, "FAILED")
        logged = {c.info.run_name for c in children}
        missing = [name for name in self.jobs if name not in logged]
        for name in missing:  # with its params, so it sits beside the others in the UI
            run = self.client.create_run(experiment, run_name=name, tags={
                "mlflow.parentRunId": self.parent, "source": tracking.JOB_SOURCE,
                "failure": "the job logged nothing: its process died first, or it never started"})
            tracking.log_params(self.client, run.info.run_id, self.jobs[name])
            self.client.set_terminated(run.info.run_id, "FAILED")
        failed = missing or any(c.info.status in ("RUNNING", "FAILED") for c in children)
        if faults.received:  # the launching process itself was stopped by a signal
            status = "KILLED"
            tracking.set_tags(self.client, self.parent, {
                "killed_by": signal.Signals(faults.received[0]).name})
        self.client.set_terminated(self.parent, status if faults.received or not failed
                                   else "FAILED")
        self.parent = None
