"""Scale-out: sweeps on a Ray cluster, tracked by a shared MLflow server on PostgreSQL.

Starts PostgreSQL + MLflow with authentication (scripts/tracking-server) and a
Ray head, all on 127.0.0.1, runs 4-job sweeps through hydra/launcher=ray as a
user of the server, and checks the faults (a worker killed mid-job, the
tracking server restarted mid-sweep), who may do what (no password or a wrong
one: 401 and nothing written; a reader can read but not log until granted),
and that no password shows: not in `ps` (sampled all along), not in any file
written (logs, Ray's session, Hydra's configs, artifacts, the database), not in
any run's params or tags.
Slow (a few minutes); needs the `distributed` extra and PostgreSQL
(apt-get install -y postgresql), which .ci/run installs.
"""
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
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


class CommandLines:
    """Every process's command line, sampled on a thread: what `ps` showed while it ran."""

    def __init__(self, every=0.5):
        self.seen, self.samples, self.every = set(), 0, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.is_set():
            for proc in psutil.process_iter(["cmdline"]):
                self.seen.add(" ".join(proc.info["cmdline"] or ()))
            self.samples += 1
            self._stop.wait(self.every)

    def stop(self):
        self._stop.set()
        self._thread.join()


def stop_ray(temp_dir, port):
    """End the Ray processes of this cluster only: those naming its temp dir or its
    port, and their children (`ray stop` would end every Ray on the machine)."""
    marks = (str(temp_dir), f":{port}\0")  # an argument ending in the port: --address=IP:PORT
    ours = [p for p in psutil.process_iter(["cmdline"])
            if any(m in "\0".join(p.info["cmdline"] or ()) + "\0" for m in marks)]
    procs = {p.pid: p for p in ours}
    for p in ours:
        with contextlib.suppress(psutil.Error):
            procs.update({c.pid: c for c in p.children(recursive=True)})
    for p in procs.values():
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(list(procs.values()), timeout=5)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def add_user(home, ports, admin_file, name, password):
    subprocess.run([str(SERVER), "add-user", name, str(home / "tracking")], input=password + "\n",
                   env=environment(home, {**ports, "MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(admin_file)}),
                   cwd=home, check=True, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cluster():
    """PostgreSQL, an authenticated MLflow server and a Ray head on 127.0.0.1; torn down at the end.

    Users: admin (its password from a file), ci (runs the sweeps; this test
    process logs in as ci too) and reader.
    """
    home = Path(tempfile.mkdtemp(prefix="scaleout-", dir="/tmp"))
    home.chmod(0o755)  # the database runs as user postgres when we are root
    passwords = {name: secrets.token_urlsafe(18) for name in ("admin", "ci", "reader")}
    admin_file = home / "admin-password"
    admin_file.touch(mode=0o600)
    admin_file.write_text(passwords["admin"] + "\n")
    ports = {"PG_PORT": str(free_port()), "MLFLOW_PORT": str(free_port())}
    ray_port = free_port()
    ray_dir = home / "ray"
    uri = f"http://127.0.0.1:{ports['MLFLOW_PORT']}"
    ps = CommandLines()
    try:  # a failed start is torn down too
        run([str(SERVER), "start", str(home / "tracking")], home,
            env={**ports, "MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(admin_file)})
        for name in ("ci", "reader"):
            add_user(home, ports, admin_file, name, passwords[name])
        run(tool("ray", "start", "--head", f"--port={ray_port}", "--num-cpus=2",
                 f"--temp-dir={ray_dir}", "--include-dashboard=false", "--disable-usage-stats"), home)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_USERNAME", "ci")
            mp.setenv("MLFLOW_TRACKING_PASSWORD", passwords["ci"])
            yield dict(home=home, ports=ports, uri=uri, address=f"127.0.0.1:{ray_port}",
                       passwords=passwords, admin_file=admin_file, ps=ps, projects=[], outputs=[])
    finally:
        ps.stop()
        stop_ray(ray_dir, ray_port)
        run([str(SERVER), "stop", str(home / "tracking")], home, env=ports, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def project(tmp_path, cluster):
    repo = make_project(tmp_path / "repo")
    cluster["projects"].append(repo)
    return repo


@contextlib.contextmanager
def logged_in(user=None, password=None):
    """This process's MLflow client as another user (None: no credentials at all)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (("MLFLOW_TRACKING_USERNAME", user), ("MLFLOW_TRACKING_PASSWORD", password)):
            if value is None:
                mp.delenv(name, raising=False)
            else:
                mp.setenv(name, value)
        yield


def sweep(cluster, project, experiment, *overrides, background=False):
    args = py("pipeline.train", "-m", "hydra/launcher=ray",
              f"hydra.launcher.ray.init.address={cluster['address']}",
              f"tracking.experiment={experiment}", *overrides)
    env = {"MLFLOW_TRACKING_URI": cluster["uri"], "MLFLOW_TRACKING_USERNAME": "ci",
           "MLFLOW_TRACKING_PASSWORD": cluster["passwords"]["ci"]}
    if background:  # output to a file, so a full pipe never stalls the sweep
        with open(project / f"{experiment}.log", "w") as log:
            return subprocess.Popen(args, cwd=project, env=environment(project, env),
                                    stdout=log, stderr=subprocess.STDOUT)
    proc = run(args, project, env=env, check=False)
    cluster["outputs"].append(proc.stdout + proc.stderr)
    return proc


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
        assert {"config.yaml", "model"} <= arts   # a sweep's jobs draw no PNGs
        model = {a.path for a in client.list_artifacts(child.info.run_id, "model")}
        assert "model/MLmodel" in model
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
    # closed by the sweep's end, or first by a job that started after the kill
    assert failed.data.tags.get("failure") in (
        "the job's process died",
        f"its process {pid} on {socket.gethostname()} is gone (killed without a word:"
        " SIGKILL, the out-of-memory killer or a power cut)")
    # rerun only the failed job: its overrides are its run name
    overrides = [o for o in failed.data.tags["overrides"].split()
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


def test_first_start_without_an_admin_password_stops_before_anything(tmp_path):
    proc = run([str(SERVER), "start", str(tmp_path / "tracking")], tmp_path, check=False)
    assert proc.returncode == 2 and "MLFLOW_AUTH_ADMIN_PASSWORD" in proc.stderr, proc.stderr
    assert not (tmp_path / "tracking").exists()


def refused(call):
    """The HTTP status with which the server refused call (None if it did not)."""
    from mlflow.exceptions import MlflowException

    try:
        call()
    except MlflowException as exc:
        return exc.get_http_status_code()
    return None


def test_no_password_or_a_wrong_one_is_refused_and_writes_nothing(cluster):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(cluster["uri"])
    target = client.create_experiment("auth-target")
    run_id = client.create_run(target).info.run_id
    client.log_metric(run_id, "loss", 1.0)
    before = {e.name for e in client.search_experiments()}
    attempts = {
        "create an experiment": lambda: client.create_experiment("intruder"),
        "create a run": lambda: client.create_run(target),
        "log a metric": lambda: client.log_metric(run_id, "loss", 666.0, step=1),
        "set a tag": lambda: client.set_tag(run_id, "owned", "yes"),
        "delete the run": lambda: client.delete_run(run_id),
        "list runs": lambda: client.search_runs([target]),
    }
    for user, password in [(None, None), ("ci", "not-the-password-at-all"),
                           ("nobody", cluster["passwords"]["ci"])]:
        with logged_in(user, password):
            statuses = {what: refused(call) for what, call in attempts.items()}
        assert set(statuses.values()) == {401}, (user, statuses)
    assert {e.name for e in client.search_experiments()} == before
    run = client.get_run(run_id)
    assert run.info.lifecycle_stage == "active" and "owned" not in run.data.tags
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0]
    assert len(client.search_runs([target])) == 1


def test_a_reader_lists_runs_but_cannot_log_to_them_until_granted_edit(cluster):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(cluster["uri"])
    shared = client.create_experiment("auth-shared")
    run_id = client.create_run(shared).info.run_id
    client.log_metric(run_id, "loss", 1.0)
    with logged_in("reader", cluster["passwords"]["reader"]):
        assert [r.info.run_id for r in client.search_runs([shared])] == [run_id]
        assert refused(lambda: client.log_metric(run_id, "loss", 2.0, step=1)) == 403
        assert refused(lambda: client.set_tag(run_id, "by", "reader")) == 403
        assert refused(lambda: client.create_run(shared)) == 403
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0]
    run([str(SERVER), "grant", "reader", "auth-shared", "edit", str(cluster["home"] / "tracking")],
        cluster["home"], env={**cluster["ports"],
                              "MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(cluster["admin_file"])})
    with logged_in("reader", cluster["passwords"]["reader"]):
        client.log_metric(run_id, "loss", 2.0, step=1)
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0, 2.0]


def test_server_moves_to_another_address_with_its_users(cluster):
    from mlflow.tracking import MlflowClient

    ip = next((a.address for addresses in psutil.net_if_addrs().values() for a in addresses
               if a.family == socket.AF_INET and not a.address.startswith("127.")), None)
    if ip is None:
        pytest.skip("this machine has no address but loopback")
    tracking = str(cluster["home"] / "tracking")
    moved = run([str(SERVER), "restart", "--host", ip, "--allowed-hosts", f"{ip}:*", tracking],
                cluster["home"], env=cluster["ports"])
    uri = f"http://{ip}:{cluster['ports']['MLFLOW_PORT']}"
    try:
        assert moved.stdout.strip() == f"export MLFLOW_TRACKING_URI={uri}"
        client = MlflowClient(uri)
        assert client.get_experiment_by_name("auth-target") is not None  # ci, as before
        with logged_in():
            assert refused(client.search_experiments) == 401
        with pytest.raises(ConnectionRefusedError):  # no longer on 127.0.0.1
            socket.create_connection(("127.0.0.1", int(cluster["ports"]["MLFLOW_PORT"])), 5)
    finally:
        run([str(SERVER), "restart", "--host", "127.0.0.1", "--allowed-hosts", "", tracking],
            cluster["home"], env=cluster["ports"])


def written_files(cluster):
    """Every file the module wrote: server logs and database, Ray's session, the projects."""
    secret_files = {cluster["admin_file"]} | set((cluster["home"] / "tracking" / "secrets").iterdir())
    for root in [cluster["home"], *cluster["projects"]]:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink() and path not in secret_files:
                yield path


def test_no_password_in_ps_logs_configs_params_or_tags(cluster):
    """Last: looks at everything the tests before it did."""
    from mlflow.tracking import MlflowClient

    secret_dir = cluster["home"] / "tracking" / "secrets"
    values = [*cluster["passwords"].values(), (secret_dir / "db-password").read_text(),
              (secret_dir / "flask-key").read_text()]
    assert all(len(v) >= 16 for v in values)
    shown = [line for line in cluster["ps"].seen if any(v in line for v in values)]
    assert cluster["ps"].samples >= 10 and not shown, shown
    files = list(written_files(cluster))
    assert any(f.name == "runtime_env_agent.log" for f in files)  # Ray's session is there
    assert any(f.parts[-2:] == (".hydra", "hydra.yaml") for f in files)  # so are the jobs' configs
    leaked = [str(f) for f in files if any(v.encode() in f.read_bytes() for v in values)]
    assert not leaked
    assert not [out for out in cluster["outputs"] if any(v in out for v in values)]
    with logged_in("admin", cluster["passwords"]["admin"]):
        client = MlflowClient(cluster["uri"])
        runs = [r for e in client.search_experiments()
                for r in client.search_runs([e.experiment_id], max_results=1000)]
    assert runs
    for r in runs:
        recorded = " ".join([*r.data.params.values(), *r.data.tags.values()])
        assert not any(v in recorded for v in values), r.info.run_name
    print(f"no password in {cluster['ps'].samples} ps samples ({len(cluster['ps'].seen)} command "
          f"lines), {len(files)} files, {len(runs)} runs' params and tags")
