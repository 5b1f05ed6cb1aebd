"""Where a run stands: a Hydra job's folder, name and parent run, and the threads it may use."""
import dataclasses
import os
import sys
from pathlib import Path

from . import tracking
from .kernels.runtime import set_num_threads


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


def hydra_context():
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    sweep = hc.mode == RunMode.MULTIRUN
    return HydraJob(out=Path(hc.runtime.output_dir), sweep=sweep,
                    sweep_dir=Path(hc.sweep.dir if sweep else hc.run.dir),
                    run_name=hc.job.override_dirname or "defaults",
                    launcher=dict(hc.launcher) if sweep else {})


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


def set_job_threads(job):
    set_num_threads(job_threads(job))


def use_all_cores():
    set_num_threads(os.cpu_count() or 1)
