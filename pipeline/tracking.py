"""MLflow tracking: the store, the runs, and what a run records.

The store is MLFLOW_TRACKING_URI (e.g. a server: scripts/tracking-server), or
an SQLite DB at the project root by absolute path (so `dvc exp run --queue`,
which runs in .dvc/tmp/exps/..., still logs to the main repository); with
SQLite, artifacts go to <root>/mlartifacts.
Runs end through a context manager, so a failing job is recorded as FAILED
and never left RUNNING.
"""
import contextlib
import functools
import os
import socket
import subprocess
import time
from pathlib import Path

from .cli import project_root
from .faults import Stopped, close_stale_runs
from .training.config import plain

SWEEP_SOURCE = "hydra sweep"  # the `source` tag of a sweep's parent run
JOB_SOURCE = "hydra"  # the `source` tag of a Hydra job's run (a sweep's children)
# The experiment is for training models. Earlier MLflow 3 UIs opened it on the runs table
# for this tag; the UI of 3.17 follows a global GenAI / model-training switch instead
# (mlflow/mlflow#20161), so the links we print (ui_path) set that switch.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
OVERRIDES_TAG = "overrides"  # a Hydra job's whole override string (its run name is short)


def tracking_uri():
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def client():
    """The MLflow client of this process's store (one per URI: opening a store checks
    its schema, which costs a second or two)."""
    return _client(tracking_uri())


@functools.lru_cache(maxsize=None)
def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def git_commit(root=None):
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or project_root(),
                              check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def setup(experiment):
    """Create the store and the experiment if needed; return the experiment id.

    Call it once in the launching process before jobs fan out: several
    processes creating a fresh SQLite store at once race.
    """
    uri = tracking_uri()
    mlflow_client = client()
    close_stale_runs(mlflow_client)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is not None:
        if any(found.tags.get(k) != v for k, v in EXPERIMENT_KIND.items()):
            for key, value in EXPERIMENT_KIND.items():  # made before the kind was set
                mlflow_client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id
    # A local store keeps artifacts beside it; a server has its own (proxied) store.
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    return mlflow_client.create_experiment(
        experiment, artifact_location=(project_root() / "mlartifacts").as_uri() if local else None,
        tags=EXPERIMENT_KIND)


def flatten(node, prefix=""):
    """{"model": {"cell": "gru"}} -> {"model.cell": "gru"}; configs become plain values first."""
    if not isinstance(node, dict):
        node = plain(node)
    flat = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _now_ms():
    return int(time.time() * 1000)


class Tracker:
    """What one run records; each call is one batched request (MLflow chunks it)."""

    def __init__(self, mlflow_client, run_id):
        self.client, self.run_id = mlflow_client, run_id
        self.last_epoch = None  # the last finished epoch it logged

    def log_metrics(self, values, step=0):
        from mlflow.entities import Metric

        now = _now_ms()
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step)
                                                    for k, v in values.items()])

    def log_epoch(self, row):
        self.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
        self.last_epoch = row["epoch"]

    def log_history(self, history):
        """Every epoch of a history (columns -> lists), as log_epoch would have logged them."""
        from mlflow.entities import Metric

        now = _now_ms()
        self.client.log_batch(self.run_id, metrics=[
            Metric(k, float(v), now, epoch) for k, values in history.items() if k != "epoch"
            for epoch, v in zip(history["epoch"], values)])
        if history["epoch"]:
            self.last_epoch = history["epoch"][-1]

    def log_series(self, name, values):
        from mlflow.entities import Metric

        now = _now_ms()
        self.client.log_batch(self.run_id, metrics=[Metric(name, float(v), now, i)
                                                    for i, v in enumerate(values)])

    def log_artifacts(self, paths, folder=None):
        for path in paths:
            self.client.log_artifact(self.run_id, str(path), folder)

    def log_text(self, text, name):
        self.client.log_text(self.run_id, text, name)

    def set_tags(self, tags):
        set_tags(self.client, self.run_id, tags)

    def log_dataset(self, data, context="training"):
        """The data set as an MLflow dataset input: its name is the task, its digest our
        fingerprint, its source the generator's parameters; schema from the train split."""
        import json

        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.exceptions import MlflowException

        train = data.splits["train"]
        source = CodeDatasetSource({"generator": "pipeline.data.make", "task": data.task,
                                    "params": json.dumps(data.meta.get("params"), sort_keys=True)})
        dataset = mlflow.data.from_numpy({"x": train["x"]}, targets=train["y"], source=source,
                                         name=data.task, digest=data.fingerprint)
        # what mlflow.log_input does for the active run, here for a run by id
        inputs = [DatasetInput(dataset._to_mlflow_entity(),
                               [InputTag("mlflow.data.context", context)])]
        try:
            self.client.log_inputs(self.run_id, inputs)
        except MlflowException:
            # Jobs of a sweep log the same data set at once: the store checks, then
            # inserts, so the second insert of the same digest can fail. It exists now.
            self.client.log_inputs(self.run_id, inputs)

    def log_diagnostics(self, cfg, data, result):
        """What the study reads from a run beyond its curves: the data set as an input,
        the clipping statistics of its steps, and ‖∂L/∂h_t‖ of its last diagnosed epoch
        (metric `hidden_grad_norm`, step t; layer 0, forward direction)."""
        from .analysis import clipping

        self.log_dataset(data)
        self.log_metrics(clipping.summary(result.step_grad_norms, str(cfg.clip.kind),
                                          cfg.clip.threshold))
        if result.dh_norms:
            self.log_series("hidden_grad_norm", result.dh_norms[max(result.dh_norms)][0, 0])


def set_tags(mlflow_client, run_id, tags):
    """All tags in one request."""
    from mlflow.entities import RunTag

    mlflow_client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_params(mlflow_client, run_id, cfg):
    """The flattened config as the run's params, paths excluded."""
    from mlflow.entities import Param

    mlflow_client.log_batch(run_id, params=[Param(k, str(v)) for k, v in flatten(cfg).items()
                                            if not k.startswith("paths.")])


def ui_path(experiment_id, run_id=None):
    """The MLflow UI's page of an experiment's runs (or of one run), to append to the UI's
    address. MLflow 3.17's UI picks GenAI or model-training pages from a global switch
    (the experiment tag is no longer read), which this query sets to model training."""
    run = f"/{run_id}" if run_id else ""
    return f"/#/experiments/{experiment_id}/runs{run}?workflowType=machine_learning"


def hydra_job_tags():
    """{"overrides": the job's override string} inside a Hydra job, else {}."""
    import sys

    hydra_config = sys.modules.get("hydra.core.hydra_config")  # never imported: not a job
    if hydra_config is None or not hydra_config.HydraConfig.initialized():
        return {}
    HydraConfig = hydra_config.HydraConfig
    return {OVERRIDES_TAG: " ".join(HydraConfig.get().overrides.task) or "defaults"}


def sweep_parent(experiment, sweep_dir):
    """The id of the open parent run of the sweep writing to sweep_dir, or None.

    Jobs find their parent through the store, by a tag, so that a job on
    another machine needs nothing from the launching host's environment.
    """
    mlflow_client = client()
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = mlflow_client.search_runs(
        [found.experiment_id], max_results=1, order_by=["attributes.start_time DESC"],
        filter_string=f"tags.source = '{SWEEP_SOURCE}' and tags.sweep_dir = '{sweep_dir}'"
                      " and attributes.status = 'RUNNING'")
    return runs[0].info.run_id if runs else None


def resumable_run(experiment, run_key, exclude):
    """(run id, checkpoint path) of the newest run with this run key, if it was stopped
    or failed and left a checkpoint; else None. `exclude`: the run asking."""
    mlflow_client = client()
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return None
    for run in mlflow_client.search_runs([found.experiment_id], max_results=5,
                                         filter_string=f"tags.run_key = '{run_key}'",
                                         order_by=["attributes.start_time DESC"]):
        if run.info.run_id == exclude:
            continue
        path = run.data.tags.get("checkpoint")
        if run.info.status in ("KILLED", "FAILED") and path and Path(path).is_file():
            return run.info.run_id, Path(path)
        return None
    return None


def find_run(experiment, tags):
    """The newest run of the experiment carrying all these tags, or None."""
    mlflow_client = client()
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return None
    where = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
    runs = mlflow_client.search_runs([found.experiment_id], filter_string=where, max_results=1,
                                     order_by=["attributes.start_time DESC"])
    return Tracker(mlflow_client, runs[0].info.run_id) if runs else None


@contextlib.contextmanager
def run(cfg, run_name=None, tags=None, parent=None):
    """An MLflow run for cfg, a child of run `parent` if given.

    Logs the flattened config as params (paths excluded) and tags the run
    with the host and process that ran it (on a cluster, where a job ran).
    Ends FINISHED; KILLED, tagged with the signal and the last finished epoch,
    when a signal stops the block (faults.Stopped); FAILED when it raises.
    """
    experiment_id = setup(cfg.tracking.experiment)
    mlflow_client = client()
    commit = git_commit()
    all_tags = {"git_commit": commit, "mlflow.source.git.commit": commit,
                "host": socket.gethostname(), "pid": str(os.getpid()), **hydra_job_tags()}
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    all_tags.update(tags or {})
    created = mlflow_client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    run_id = created.info.run_id
    status = "FAILED"
    tracker = Tracker(mlflow_client, run_id)
    try:
        log_params(mlflow_client, run_id, cfg)
        yield tracker
        status = "FINISHED"
    except Stopped as stop:
        status = "KILLED"
        stop.last_epoch = tracker.last_epoch
        set_tags(mlflow_client, run_id, {"killed_by": stop.name,
                                         "last_epoch": "none" if tracker.last_epoch is None
                                         else tracker.last_epoch})
        raise
    finally:
        mlflow_client.set_terminated(run_id, status)
