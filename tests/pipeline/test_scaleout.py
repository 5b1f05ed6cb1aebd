"""Scale-out: sweeps on a Ray cluster, tracked by an MLflow server on PostgreSQL.

Starts PostgreSQL + MLflow (scripts/tracking-server) and a Ray head, all on
127.0.0.1, runs 4-job sweeps through hydra/launcher=ray, and checks the
faults: a worker killed mid-job, the tracking server restarted mid-sweep.
Slow (a few minutes); needs the `distributed` extra and PostgreSQL
(apt-get install -y postgresql), which .ci/run installs.
"""
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from projects import ROOT, environment, make_project, py, run, tool

pytestmark = [pytest.mark.slow, pytest.mark.server]
ray = pytest.importorskip("ray", reason="needs the distributed extra: pip install -e '.[distributed]'")
psutil = pytest.importorskip("psutil")
if not (glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb")):
    pytest.skip("needs PostgreSQL: apt-get install -y postgresql", allow_module_level=True)

SERVER = ROOT / "scripts" / "tracking-server"
JOBS = ["model.cell=rnn,gru", "model.num_layers=1,2"]
SHORT = ["debug=tiny"]   # conf/debug/tiny.yaml: 2 epochs
LONG = ["debug=long"]    # conf/debug/long.yaml: 30 epochs, long enough to stop mid-run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """PostgreSQL, an MLflow server and a Ray head on 127.0.0.1; torn down at the end."""
    home = Path(tempfile.mkdtemp(prefix="scaleout-", dir="/tmp"))
    home.chmod(0o755)  # the database runs as user postgres when we are root
    ports = {"PG_PORT": str(free_port()), "MLFLOW_PORT": str(free_port())}
    ray_port = free_port()
    server = [str(SERVER), "start", str(home / "tracking")]
    run(server, home, env=ports)
    uri = f"http://127.0.0.1:{ports['MLFLOW_PORT']}"
    run(tool("ray", "start", "--head", f"--port={ray_port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats"), home)
    try:
        yield dict(home=home, ports=ports, uri=uri, address=f"127.0.0.1:{ray_port}")
    finally:
        run(tool("ray", "stop", "--force"), home, check=False)
        run([str(SERVER), "stop", str(home / "tracking")], home, env=ports, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "repo")


def sweep(cluster, project, experiment, *overrides, background=False):
    args = py("pipeline.train", "-m", "hydra/launcher=ray",
              f"hydra.launcher.ray.init.address={cluster['address']}",
              f"tracking.experiment={experiment}", *overrides)
    env = {"MLFLOW_TRACKING_URI": cluster["uri"]}
    if background:  # output to a file, so a full pipe never stalls the sweep
        with open(project / f"{experiment}.log", "w") as log:
            return subprocess.Popen(args, cwd=project, env=environment(project, env),
                                    stdout=log, stderr=subprocess.STDOUT)
    return run(args, project, env=env, check=False)


def finish(proc, project, experiment, timeout):
    """Wait for a background sweep; its return code and output."""
    proc.wait(timeout=timeout)
    return proc.returncode, (project / f"{experiment}.log").read_text()


def runs_of(cluster, experiment):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(cluster["uri"])
    found = client.get_experiment_by_name(experiment)
    return client, client.search_runs([found.experiment_id]) if found else []


def split(runs):
    parents = [r for r in runs if r.data.tags.get("source") == "hydra sweep"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return parents[0], children


def test_ray_sweep_logs_four_children_under_one_parent_on_the_server(cluster, project):
    t0 = time.perf_counter()
    proc = sweep(cluster, project, "ray-sweep", *JOBS, *SHORT)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    client, runs = runs_of(cluster, "ray-sweep")
    parent, children = split(runs)
    assert parent.info.status == "FINISHED" and len(children) == 4
    for child in children:
        assert child.info.status == "FINISHED"
        assert len(client.get_metric_history(child.info.run_id, "val_loss")) == 2
        assert {"test_loss", "sequences_per_s"} <= set(child.data.metrics)
        arts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config.yaml", "model", "plots"} <= arts
        plots = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert "plots/loss_curves.png" in plots
    print(f"4-job Ray sweep: {seconds:.1f} s")


def _training_run(cluster, experiment, deadline):
    """A sweep job's RUNNING child run once it has logged an epoch: the job is mid-training."""
    while time.time() < deadline:
        client, runs = runs_of(cluster, experiment)
        for r in runs:
            if r.info.status == "RUNNING" and r.data.tags.get("mlflow.parentRunId") \
                    and client.get_metric_history(r.info.run_id, "val_loss"):
                return r
        time.sleep(0.5)
    raise AssertionError(f"no job of {experiment} logged an epoch in time")


def test_killed_worker_fails_its_job_only_and_the_job_reruns(cluster, project):
    proc = sweep(cluster, project, "ray-kill", *JOBS, *LONG, background=True)
    victim = _training_run(cluster, "ray-kill", time.time() + 180)
    pid = int(victim.data.tags["pid"])
    assert psutil.Process(pid).cmdline()[0].startswith("ray::_run_job")
    os.kill(pid, signal.SIGKILL)
    code, out = finish(proc, project, "ray-kill", timeout=600)
    assert code != 0, out[-2000:]
    client, runs = runs_of(cluster, "ray-kill")
    parent, children = split(runs)
    statuses = sorted(c.info.status for c in children)
    assert statuses == ["FAILED", "FINISHED", "FINISHED", "FINISHED"], out[-3000:]
    assert parent.info.status == "FAILED"
    failed = next(c for c in children if c.info.status == "FAILED")
    assert failed.info.run_id == victim.info.run_id
    assert failed.data.tags.get("failure") == "the job's process died"
    # rerun only the failed job: its overrides are its run name
    overrides = [o for o in failed.info.run_name.split(",")
                 if not o.startswith("tracking.experiment=")]
    again = sweep(cluster, project, "ray-kill", *overrides)
    assert again.returncode == 0, again.stderr[-3000:]
    _, runs = runs_of(cluster, "ray-kill")
    reruns = [r for r in runs if r.info.run_name == failed.info.run_name
              and r.info.status == "FINISHED"]
    assert len(reruns) == 1


def test_tracking_server_restart_mid_sweep_loses_no_metrics(cluster, project):
    proc = sweep(cluster, project, "ray-restart", *JOBS, *LONG, background=True)
    _training_run(cluster, "ray-restart", time.time() + 180)
    run([str(SERVER), "restart", str(cluster["home"] / "tracking")], cluster["home"],
        env=cluster["ports"])
    code, out = finish(proc, project, "ray-restart", timeout=900)
    client, runs = runs_of(cluster, "ray-restart")
    parent, children = split(runs)
    # what the README promises: the clients ride out the restart, nothing is lost
    assert code == 0 and parent.info.status == "FINISHED", out[-3000:]
    assert len(children) == 4
    for child in children:
        assert child.info.status == "FINISHED"
        assert len(client.get_metric_history(child.info.run_id, "val_loss")) == 30
