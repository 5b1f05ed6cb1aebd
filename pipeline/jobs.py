"""Where a run stands: a Hydra job's folder, name and parent run, and the threads it may use."""
import dataclasses
import functools
import os
import shutil
import sys
from pathlib import Path

from . import cli, faults, tracking
from .kernels.runtime import set_num_threads
from .training import checkpoint as ckpt


@dataclasses.dataclass
class HydraJob:
    out: Path          # the job's own output folder
    sweep: bool        # a multirun job (one of a sweep)
    sweep_dir: Path    # the sweep's folder (multirun), else the run's folder
    run_name: str      # the job's overrides, "defaults" if none
    launcher: dict     # hydra.launcher (n_jobs for joblib)

    def parent(self, cfg):
        """The sweep's parent run id (found in the store by the sweep folder), else None."""
        if not self.sweep:
            return None
        return tracking.sweep_parent(cfg.tracking.experiment, str(self.sweep_dir.resolve()))


# How a run's name says each override: a key's short form (None: the value alone),
# in this order; other keys read `last.part=value`, and the seed comes last.
SHORT_NAMES = {
    "task": None, "model.cell": None, "model.nonlinearity": None, "model.num_layers": "L",
    "model.hidden_size": "H", "model.bidirectional": "bi=", "model.init": "init=",
    "optimizer": None, "optimizer.lr": "lr=", "clip": "clip=", "clip.threshold": "clip<=",
}
SEED_PREFIX = "s"


def _short_value(value):
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() else f"{number:.3g}"


def run_name(overrides):
    """A short readable name for a job's overrides, e.g. ["model.cell=lstm",
    "model.num_layers=2", "optimizer=adam", "clip=norm", "seed=1"] -> "lstm L2 adam
    clip=norm s1". The whole string is kept as the run's `overrides` tag."""
    pairs = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    order = [k for k in SHORT_NAMES if k in pairs]
    order += sorted(k for k in pairs if k not in SHORT_NAMES and k != "seed")
    parts = []
    for key in order:
        value, form = _short_value(pairs[key]), SHORT_NAMES.get(key, "")
        parts.append(value if form is None else f"{form}{value}" if form
                     else f"{key.rsplit('.', 1)[-1]}={value}")
    if "seed" in pairs:
        parts.append(f"{SEED_PREFIX}{pairs['seed']}")
    return " ".join(parts) or "defaults"


def hydra_context():
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    sweep = hc.mode == RunMode.MULTIRUN
    return HydraJob(out=Path(hc.runtime.output_dir), sweep=sweep,
                    sweep_dir=Path(hc.sweep.dir if sweep else hc.run.dir),
                    run_name=run_name(hc.overrides.task),
                    launcher=dict(hc.launcher) if sweep else {})


def hydra_task(job):
    """A Hydra task function from job(ctx, cfg): the config checked, signals stopping it.

    In a sweep the configs were checked before the fan-out (sweep.py), and what
    fails here is recorded as a FAILED run while the other jobs go on; a single
    run says what went wrong in one line instead.
    """
    @functools.wraps(job)
    def task(node):
        ctx = hydra_context()
        try:
            with faults.stop_on_signals():
                return job(ctx, cli.from_node(node))
        except cli.EXPECTED_ERRORS as exc:
            if ctx.sweep:
                raise
            cli.fail(str(exc).splitlines()[0])
        except faults.Stopped as stop:
            if ctx.sweep:
                raise
            cli.stopped(stop)
    return task


def job_threads(job):
    """Threads for this job: the CPUs Ray gave its task, else the cores / parallel jobs."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:
            return max(1, int(cpus))
    cores = os.cpu_count() or 1
    n_jobs = job.launcher.get("n_jobs") if job.sweep else 1
    return max(1, cores // (cores if not n_jobs or n_jobs < 0 else n_jobs))


def planned_threads(launcher):
    """The threads each job of a sweep will get, known in the launching process: the CPUs
    a Ray task asks for, else the cores shared by joblib's parallel jobs."""
    if "ray" in launcher:
        return max(1, int(launcher.ray.remote.get("num_cpus") or 1))
    return job_threads(HydraJob(out=Path(), sweep=True, sweep_dir=Path(), run_name="",
                                launcher=dict(launcher)))


def set_job_threads(job):
    set_num_threads(job_threads(job))


def use_all_cores():
    set_num_threads(os.cpu_count() or 1)


def prepare_checkpoint(cfg, data, path, tracker):
    """Where this run checkpoints; a stopped run of the same config and data resumes.

    A checkpoint already at `path` resumes if it belongs to this config and data
    (the DVC stage's fixed path) and is dropped if not. Else the newest run with
    the same run key, if it was stopped or failed, lends its checkpoint (copied
    here): the new run is tagged `resumed_from` it, and it `resumed_by` the new one.
    """
    key = ckpt.run_key(cfg, data)
    path = Path(path).resolve()
    if path.is_file() and not ckpt.matches(path, key):
        path.unlink()
    tags = {"run_key": key, "checkpoint": str(path)}
    previous = tracking.resumable_run(cfg.tracking.experiment, key, exclude=tracker.run_id)
    if previous is not None:
        run_id, source = previous
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, path.with_name(path.name + ".tmp"))
            path.with_name(path.name + ".tmp").replace(path)
        tags["resumed_from"] = run_id
        tracking.set_tags(tracker.client, run_id, {"resumed_by": tracker.run_id})
    tracker.set_tags(tags)
    return path
