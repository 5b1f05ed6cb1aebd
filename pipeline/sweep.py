"""The Hydra callback around a sweep (hydra.callbacks.sweep in conf/config.yaml).

Before any job starts, in the launching process:
1. every job's config is composed and checked: a bad value stops the sweep
   with one line naming the key, before anything runs;
2. the Numba cache is warmed for the sweep's cells and dtypes, so jobs load
   kernels instead of compiling them at once and racing on the cache (joblib's
   worker processes start and import the job's modules meanwhile: Workers);
3. the MLflow store and experiment are created (a fresh SQLite store races
   too) and a parent run opened, tagged with the sweep folder; each job
   finds it there and logs a child run under it.
At the end the parent run is closed: FINISHED, or FAILED if a job failed or
the sweep stopped (an atexit hook, since Hydra skips on_multirun_end then).
A child still RUNNING then (its process was killed) is marked FAILED, and a
job that left no run at all (killed before it logged, or never started) gets
a FAILED child run under its own name, so every job of the sweep shows.
Then the sweep's report (seed statistics, curves, clipping: pipeline.report)
is written to the sweep folder, its figures drawn by the idle workers, and
logged on the parent run.

Searches (hydra/sweeper=optuna) choose their trials as they go, so nothing is
expanded up front: the config without the swept keys is checked, the cache is
warmed for every cell the search can pick, and each job hands the sweeper its
last validation loss as the objective (on_job_end), never the test loss.
"""
import atexit
import importlib
import math
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from . import cli, faults, jobs, tracking
from .training.config import ConfigError

GRID_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
JOB_MODULES = ("pipeline.train", "hydra_plugins.hydra_joblib_launcher._core",
               "mlflow.store.tracking.sqlalchemy_store", "mlflow.pyfunc")  # store, model log


def import_job_modules():
    """In a joblib worker: import what a job runs, before its first job arrives."""
    import gc

    gc.disable()  # until freeze_imports
    for name in JOB_MODULES:
        importlib.import_module(name)
    cli.freeze_imports()


class Workers:
    """The joblib launcher's worker processes, started before Hydra's launcher asks for
    them: they import the job's modules (about 2.5 s a process) while this process
    warms the cache and opens the store, and they draw the report's figures once the
    jobs are done. Hydra's launcher reuses them: loky's reusable executor, given the
    same arguments as the launcher gives it."""

    def __init__(self, launcher):
        from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
        from joblib import effective_n_jobs
        from omegaconf import OmegaConf

        cfg = {k: v for k, v in OmegaConf.to_container(launcher).items() if k != "_target_"}
        cfg["backend"] = "loky"  # as the launcher does
        process_joblib_cfg(cfg)
        self.cfg = cfg
        self.n = effective_n_jobs(cfg.get("n_jobs"))
        self.thread = threading.Thread(target=self._start, name="start joblib workers",
                                       daemon=True)
        self.thread.start()

    def __getstate__(self):  # Hydra sends the callbacks to every job process: no thread
        return {**self.__dict__, "thread": None}

    @classmethod
    def of(cls, launcher):
        return cls(launcher) if launcher.get("_target_") == JOBLIB else None

    def map(self, function, calls):
        from joblib import Parallel, delayed

        return Parallel(**self.cfg)(delayed(function)(*args) for args in calls)

    def _start(self):
        try:
            self.map(import_job_modules, [()] * self.n)
        except Exception:  # noqa: BLE001 - only a head start: the jobs import what they need
            pass

    def join(self):
        self.thread.join()

    def draw_all(self, figures):
        """The report's figures, [(function, args, path)], drawn in the idle workers."""
        from . import report

        return self.map(report.draw, figures)


def job_overrides(task_overrides):
    """Every job's override list, expanded by Hydra's own basic sweeper."""
    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    return BasicSweeper.split_arguments(parsed, None)[0]


def is_grid(config):
    return config.hydra.sweeper.get("_target_") == GRID_SWEEPER


def search_choices(config, key):
    """The values a search may give `key` (choice sweeps on the command line or in
    hydra.sweeper.params); empty when it is not searched."""
    params = dict(config.hydra.sweeper.get("params") or {})
    found = []
    texts = [o for o in config.hydra.overrides.task if o.split("=", 1)[0] == key]
    texts += [f"{key}={params[key]}"] if key in params else []
    for text in texts:
        override = OverridesParser.create().parse_override(text)
        if override.is_sweep_override():
            found += [str(v) for v in override.sweep_string_iterator()]
    return found


def objective(out_dir, epochs):
    """What a search minimises: the last epoch's validation loss from the job's
    history.csv; inf for a run that diverged or stopped early."""
    import pandas as pd

    try:
        history = pd.read_csv(Path(out_dir) / "history.csv")
    except (OSError, ValueError):
        return math.inf
    last = history["val_loss"].iloc[-1] if len(history) == epochs else math.nan
    return float(last) if math.isfinite(last) else math.inf


class SweepCallback(Callback):
    def __init__(self):
        self.parent = None
        self.client = None
        self.jobs = {}  # each job's override string (its runs' `overrides` tag) -> config
        self.sweep_dir = None
        self.workers = None

    def on_multirun_start(self, config, config_name=None, **kwargs):
        task = list(config.hydra.overrides.task)
        if is_grid(config):
            planned = job_overrides(task)
        else:  # a search: its trials are not known yet; check what is fixed
            parser = OverridesParser.create()
            planned = [[o for o in task if not parser.parse_override(o).is_sweep_override()]]
        loader = GlobalHydra.instance().config_loader()
        cfgs = []
        for overrides in planned:
            try:
                node = loader.load_configuration(config_name, overrides, RunMode.RUN)
                cfgs.append(cli.from_node(node))
            except ConfigError as exc:
                cli.fail(f"{exc} (job {' '.join(overrides)})")
            if is_grid(config):
                self.jobs[" ".join(overrides) or "defaults"] = cfgs[-1]
        self.workers = Workers.of(config.hydra.launcher)  # the configs are good: go
        cells = {str(c.model.cell) for c in cfgs} | set(search_choices(config, "model.cell"))
        dtypes = {str(c.model.dtype) for c in cfgs} | set(search_choices(config, "model.dtype"))
        from .nn.recurrent import warm_up
        warm_up(cells=sorted(cells), dtypes=sorted(dtypes),
                nthreads=jobs.planned_threads(config.hydra.launcher))

        experiment_id = tracking.setup(cfgs[0].tracking.experiment)
        self.client = tracking.client()
        sweep_dir = str(Path(str(config.hydra.sweep.dir)).resolve())
        run = self.client.create_run(experiment_id, run_name=f"sweep {Path(sweep_dir).name}",
                                     tags={"source": tracking.SWEEP_SOURCE, "sweep_dir": sweep_dir,
                                           "jobs": str(len(planned)) if is_grid(config) else
                                           str(config.hydra.sweeper.get("n_trials", "?")),
                                           "overrides": " ".join(config.hydra.overrides.task),
                                           "git_commit": tracking.git_commit(),
                                           "host": socket.gethostname(),
                                           "pid": str(os.getpid())})
        self.parent = run.info.run_id
        self.sweep_dir = Path(sweep_dir)
        atexit.register(self._close, "FAILED")
        from . import report  # noqa: F401 - for the end, while the workers start
        if self.workers is not None:
            self.workers.join()
        cli.freeze_imports()  # and the store, the kernels, the configs and the report

    def on_job_end(self, config, job_return, **kwargs):
        """In the job's process: a search gets the validation loss, not the test loss."""
        from hydra.core.utils import JobStatus

        if is_grid(config) or job_return.status != JobStatus.COMPLETED:
            return
        job_return.return_value = objective(config.hydra.runtime.output_dir,
                                            config.train.epochs)

    def on_multirun_end(self, config, **kwargs):
        parent = self.parent
        self._close("FINISHED")
        if parent is not None:
            self._report(parent)

    def _report(self, parent):
        """The sweep's report, in its folder and on its parent run; a report that fails
        is said on stderr and does not fail the sweep, whose runs are all recorded."""
        from . import report

        draw_all = report.draw_here if self.workers is None else self.workers.draw_all
        try:
            report.report_sweep(self.client, parent, self.sweep_dir / "report", draw_all)
        except Exception as exc:  # noqa: BLE001 - the sweep itself is done and recorded
            print(f"warning: the sweep's report failed ({type(exc).__name__}: {exc});"
                  " run `python -m pipeline.report`", file=sys.stderr)

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
        logged = {c.data.tags.get(tracking.OVERRIDES_TAG, c.info.run_name) for c in children}
        missing = [key for key in self.jobs if key not in logged]
        for key in missing:  # with its params, so it sits beside the others in the UI
            run = self.client.create_run(experiment, run_name=jobs.run_name(key.split()), tags={
                "mlflow.parentRunId": self.parent, "source": tracking.JOB_SOURCE,
                tracking.OVERRIDES_TAG: key,
                "failure": "the job logged nothing: its process died first, or it never started"})
            tracking.log_params(self.client, run.info.run_id, self.jobs[key])
            self.client.set_terminated(run.info.run_id, "FAILED")
        failed = missing or any(c.info.status in ("RUNNING", "FAILED") for c in children)
        if faults.received:  # the launching process itself was stopped by a signal
            status = "KILLED"
            tracking.set_tags(self.client, self.parent, {
                "killed_by": signal.Signals(faults.received[0]).name})
        self.client.set_terminated(self.parent, status if faults.received or not failed
                                   else "FAILED")
        self.parent = None
