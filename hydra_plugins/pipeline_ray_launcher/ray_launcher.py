"""Sweep jobs on a Ray cluster: hydra-ray-launcher, with three changes.

Selected by ``hydra/launcher=ray`` (conf/hydra/launcher/ray.yaml points
here; Hydra loads launchers only from the hydra_plugins package); the
cluster address is ``hydra.launcher.ray.init.address``. Needs the
``distributed`` extra: ``pip install -e '.[distributed]'``.

- Jobs are collected one by one, so a job whose worker dies is returned as
  FAILED while the other jobs run to the end (the plugin stops at the first
  failed ``ray.get`` and the jobs still running are lost with the driver).
- What a job needs from the launching host travels with it: the sweep
  folder as an absolute path, MLFLOW_TRACKING_URI in Ray's runtime_env, and
  the tracking server's credentials (MLFLOW_TRACKING_USERNAME and
  MLFLOW_TRACKING_PASSWORD) with the job's own arguments, set in the worker's
  environment while the job runs. Ray writes a runtime_env into the worker's
  command line and runtime_env_agent.log (ray-project/ray#28276), so it can
  carry no password. Nothing relies on environment variables that exist only
  on this host.
- Connecting to an existing cluster does not pass object_store_memory,
  which Ray refuses there.
"""
import logging
import os
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, setup_globals
from omegaconf import OmegaConf, open_dict

from pipeline import tracking

try:
    import ray
    from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray
    from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher as _PluginLauncher
except ImportError:  # the distributed extra is not installed
    ray = None
    from hydra.plugins.launcher import Launcher as _PluginLauncher

log = logging.getLogger(__name__)
LOCAL_OBJECT_STORE_BYTES = 78_643_200  # the plugin's default for a Ray started here
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")  # MLflow's basic auth


def _start(init_cfg):
    if ray.is_initialized():
        return
    init = OmegaConf.to_container(init_cfg, resolve=True) or {}
    if not init.get("address"):
        init.setdefault("object_store_memory", LOCAL_OBJECT_STORE_BYTES)
    env = init.setdefault("runtime_env", {}).setdefault("env_vars", {})
    env.setdefault("MLFLOW_TRACKING_URI", tracking.tracking_uri())
    log.info(f"Initializing ray with {init}")
    ray.init(**init)


class _WithCredentials:
    """The job's function, run with the tracking credentials in its environment.

    Pickled with the job's arguments; the values never reach a log, a config
    or a command line. The worker's environment is restored afterwards.
    """

    def __init__(self, task_function, env):
        self.task_function, self.env = task_function, env

    def __call__(self, cfg):
        before = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        try:
            return self.task_function(cfg)
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def __repr__(self):
        return f"{self.task_function!r} with {', '.join(self.env)} set"


def _failed(error, overrides):
    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error)


class RayLauncher(_PluginLauncher):
    def __init__(self, ray):
        self.ray_cfg = ray
        self.hydra_context = self.task_function = self.config = None

    def setup(self, *, hydra_context, task_function, config):
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides, initial_job_idx):
        if ray is None:
            raise ImportError("hydra/launcher=ray needs Ray: pip install -e '.[distributed]'")
        setup_globals()
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Ray launcher: {len(job_overrides)} jobs, sweep output dir {sweep_dir}")
        _start(self.ray_cfg.init)
        credentials = {name: os.environ[name] for name in CREDENTIALS if os.environ.get(name)}
        task_function = _WithCredentials(self.task_function, credentials) if credentials \
            else self.task_function
        refs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.sweep.dir = str(sweep_dir)
                cfg.hydra.job.id = f"job_id_for_{idx}"
                cfg.hydra.job.num = idx
                refs.append(launch_job_on_ray(self.hydra_context, self.ray_cfg.remote, cfg,
                                              task_function, Singleton.get_state()))
        results = []
        for ref, overrides in zip(refs, job_overrides):
            try:
                results.append(ray.get(ref))
            except ray.exceptions.RayError as exc:  # the worker died: nothing came back
                log.error(f"job {' '.join(overrides)} failed on Ray: {type(exc).__name__}")
                results.append(_failed(exc, overrides))
        return results
