"""MLflow tracking: the store, the runs, and what a run records.

The store is MLFLOW_TRACKING_URI (e.g. a server: scripts/tracking-server), or
an SQLite DB at the repository root by absolute path (so `dvc exp run
--queue`, which runs in .dvc/tmp/exps/..., still logs to the main
repository); with SQLite, artifacts go to <root>/mlartifacts.
Runs end through a context manager, so a failing job is recorded as FAILED
and never left RUNNING.
"""
import contextlib
import dataclasses
import os
import socket
import subprocess
import tempfile
from pathlib import Path

SWEEP_SOURCE = "hydra sweep"  # the `source` tag of a sweep's parent run
JOB_SOURCE = "hydra"  # the `source` tag of a Hydra job's run (a sweep's children)
METRIC_BATCH = 1000  # MLflow accepts at most 1000 metrics per log_batch call


def repo_root():
    """The repository this run belongs to (outside DVC's temporary experiment copies)."""
    cwd = Path.cwd().resolve()
    head, sep, _ = cwd.as_posix().partition("/.dvc/tmp/exps/")
    if sep:
        return Path(head)
    for path in (cwd, *cwd.parents):
        if (path / "dvc.yaml").is_file() and (path / "conf").is_dir():
            return path
    return cwd


def tracking_uri():
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def git_commit(root=None):
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or repo_root(), check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def setup(experiment):
    """Create the store and the experiment if needed; return the experiment id.

    Call it once in the launching process before jobs fan out: several
    processes creating a fresh SQLite store at once race.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    # A local store keeps artifacts beside it; a server has its own (proxied) store.
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    return client.create_experiment(
        experiment, artifact_location=(repo_root() / "mlartifacts").as_uri() if local else None)


def flatten(node, prefix=""):
    """{"model": {"cell": "gru"}} -> {"model.cell": "gru"}; lists become strings."""
    if dataclasses.is_dataclass(node):
        node = dataclasses.asdict(node)
    flat = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class Tracker:
    """What one run records; metrics go in batches (one call per epoch)."""

    def __init__(self, client, run_id):
        self.client, self.run_id = client, run_id

    def log_metrics(self, values, step=0):
        from mlflow.entities import Metric

        now = _now_ms()
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
        for i in range(0, len(metrics), METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + METRIC_BATCH])

    def log_epoch(self, row):
        self.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

    def log_series(self, name, values):
        from mlflow.entities import Metric

        now = _now_ms()
        metrics = [Metric(name, float(v), now, i) for i, v in enumerate(values)]
        for i in range(0, len(metrics), METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + METRIC_BATCH])

    def log_artifacts(self, paths, folder=None):
        for path in paths:
            self.client.log_artifact(self.run_id, str(path), folder)

    def log_text(self, text, name):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(text)
            self.client.log_artifact(self.run_id, str(path))

    def set_tags(self, tags):
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))


def _now_ms():
    import time
    return int(time.time() * 1000)


def sweep_parent(experiment, sweep_dir):
    """The id of the open parent run of the sweep writing to sweep_dir, or None.

    Jobs find their parent through the store, by a tag, so that a job on
    another machine needs nothing from the launching host's environment.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri())
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id], max_results=1, order_by=["attributes.start_time DESC"],
        filter_string=f"tags.source = '{SWEEP_SOURCE}' and tags.sweep_dir = '{sweep_dir}'"
                      " and attributes.status = 'RUNNING'")
    return runs[0].info.run_id if runs else None


def log_params(client, run_id, cfg):
    """The flattened config as the run's params, paths excluded (100 per call)."""
    from mlflow.entities import Param

    items = [Param(k, str(v)) for k, v in flatten(cfg).items() if not k.startswith("paths.")]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i:i + 100])


@contextlib.contextmanager
def run(cfg, run_name=None, tags=None, parent=None):
    """An MLflow run for cfg, a child of run `parent` if given.

    Logs the flattened config as params (paths excluded) and tags the run
    with the host and process that ran it (on a cluster, where a job ran).
    Ends FINISHED, or FAILED when the block raises.
    """
    from mlflow.tracking import MlflowClient

    experiment_id = setup(cfg.experiment)
    client = MlflowClient(tracking_uri())
    commit = git_commit()
    all_tags = {"git_commit": commit, "mlflow.source.git.commit": commit,
                "host": socket.gethostname(), "pid": str(os.getpid())}
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    all_tags.update(tags or {})
    created = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    run_id = created.info.run_id
    status = "FAILED"
    try:
        log_params(client, run_id, cfg)
        yield Tracker(client, run_id)
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status)
