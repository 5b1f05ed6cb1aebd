"""Faults: a killed run is closed, and the same command resumes it bit for bit.

The subprocess tests run the tiny model for 30 epochs (conf/debug/long.yaml) in a
fresh project, stop it mid-training, run the same command again and compare with
a run that was never interrupted.
"""
import errno
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import faults, outputs
from pipeline.training import checkpoint as ckpt
from projects import environment, make_project, py, run, runs, store, tool

TRAIN = py("pipeline.train")   # a single Hydra run, default output folder (outputs/<date>/<time>)


def start(args, project):
    """A command in its own process group (as systemd or SLURM would run it)."""
    return subprocess.Popen(args, cwd=project, env=environment(project), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def wait_for(predicate, timeout=120, what="it"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen in {timeout} s")


def checkpoints(project):
    return sorted(project.glob("outputs/*/*/checkpoint.pkl"))


def weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def finished_run_dir(run_):
    return Path(run_.data.tags["output_dir"])


def assert_same_result(a_dir, b_dir):
    assert json.loads((a_dir / "metrics.json").read_text()) == \
        json.loads((b_dir / "metrics.json").read_text())
    wa, wb = weights(a_dir / "model.npz"), weights(b_dir / "model.npz")
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert (a_dir / "history.csv").read_text() == (b_dir / "history.csv").read_text()


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "repo", debug="long")


@pytest.mark.slow
def test_sigterm_mid_epoch_ends_the_run_killed_and_the_same_command_resumes_it(project):
    run(TRAIN, project)                                  # never interrupted: the reference
    (reference,) = runs(store(project))
    time.sleep(1.1)                                      # a new output folder (one per second)
    proc = start(TRAIN, project)
    wait_for(lambda: [c for c in checkpoints(project)], what="a first checkpoint")
    time.sleep(0.1)                                      # into the next epoch
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("stopped by SIGTERM")]
    assert len(lines) == 1 and "run the same command to resume" in lines[0], err[-2000:]
    killed = runs(store(project))[-1]
    assert killed.info.status == "KILLED"
    assert killed.data.tags["killed_by"] == "SIGTERM"
    last = int(killed.data.tags["last_epoch"])
    assert 0 <= last < 29
    assert len(MlflowClient(store(project)).get_metric_history(killed.info.run_id,
                                                               "val_loss")) == last + 1
    time.sleep(1.1)
    run(TRAIN, project)                                  # the same command again
    all_runs = runs(store(project))
    resumed = all_runs[-1]
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["resumed_from"] == killed.info.run_id
    assert MlflowClient(store(project)).get_run(killed.info.run_id).data.tags["resumed_by"] \
        == resumed.info.run_id
    history = MlflowClient(store(project)).get_metric_history(resumed.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == list(range(30)), "the whole history, once each"
    assert_same_result(finished_run_dir(reference), finished_run_dir(resumed))
    assert "RUNNING" not in {r.info.status for r in all_runs}
    assert not (finished_run_dir(resumed) / "checkpoint.pkl").exists(), "done: nothing to resume"


@pytest.mark.slow
def test_sigkill_leaves_a_stale_run_that_the_next_run_closes_and_resumes(project):
    run(TRAIN, project)
    (reference,) = runs(store(project))
    time.sleep(1.1)
    proc = start(TRAIN, project)
    wait_for(lambda: checkpoints(project), what="a first checkpoint")
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    stale = runs(store(project))[-1]
    assert stale.info.status == "RUNNING"               # nothing could close it
    time.sleep(1.1)
    run(TRAIN, project)
    client = MlflowClient(store(project))
    closed = client.get_run(stale.info.run_id)
    assert closed.info.status == "FAILED"
    assert f"its process {stale.data.tags['pid']} on {socket.gethostname()} is gone" in \
        closed.data.tags["failure"]
    resumed = runs(store(project))[-1]
    assert resumed.data.tags["resumed_from"] == stale.info.run_id
    assert_same_result(finished_run_dir(reference), finished_run_dir(resumed))


@pytest.mark.slow
def test_dvc_repro_stopped_mid_train_resumes_to_the_same_dvc_lock(tmp_path):
    reference = make_project(tmp_path / "reference", debug="long")
    run(tool("dvc", "repro"), reference)
    project = make_project(tmp_path / "repo", debug="long")
    proc = start(tool("dvc", "repro"), project)
    ckpt_path = project / "data" / "checkpoints" / "train.pkl"
    wait_for(ckpt_path.is_file, what="the train stage's first checkpoint")
    time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)                  # the whole job, as systemd or SLURM do
    proc.communicate(timeout=120)
    wait_for(lambda: runs(store(project)) and runs(store(project))[-1].info.status != "RUNNING",
             what="the train run to close")
    killed = runs(store(project))[-1]
    assert killed.info.status == "KILLED" and killed.data.tags["killed_by"] == "SIGTERM"
    assert ckpt_path.is_file()
    run(tool("dvc", "repro"), project)
    assert (project / "dvc.lock").read_text() == (reference / "dvc.lock").read_text()
    resumed = runs(store(project))[-1]
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["resumed_from"] == killed.info.run_id
    assert not ckpt_path.exists()
    assert "Data and pipelines are up to date" in run(tool("dvc", "repro"), project).stdout


@pytest.mark.slow
def test_a_place_that_cannot_be_written_is_named_before_training(project):
    (project / "blocker").write_text("a file, not a folder")
    params = (project / "params.yaml").read_text().replace(
        "checkpoint: data/checkpoints/train.pkl", "checkpoint: blocker/ckpt/train.pkl")
    (project / "bad.yaml").write_text(params)
    run(py("pipeline.generate"), project)
    proc = run(py("pipeline.train", "--params", "bad.yaml"), project, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: cannot write to blocker/ckpt: Not a directory"], proc.stderr
    assert not runs(store(project))


# ----- in-process ---------------------------------------------------------------------
def test_a_full_disk_during_a_checkpoint_names_the_path_and_keeps_the_last_one(tmp_path,
                                                                                monkeypatch):
    path = tmp_path / "ckpt.pkl"
    ckpt.save(path, {"key": "k", "epoch": 3})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pickle, "dump", full)
    with pytest.raises(ckpt.CheckpointError, match=f"cannot write checkpoint {path}: No space"
                                                   " left on device") as info:
        ckpt.save(path, {"key": "k", "epoch": 4})
    assert "\n" not in str(info.value)
    assert ckpt.load(path, "k")["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pkl"]


def test_check_writable_names_the_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    outputs.check_writable(tmp_path / "new" / "deep")
    assert (tmp_path / "new" / "deep").is_dir()
    with pytest.raises(outputs.OutputError, match=f"cannot write to {tmp_path / 'file' / 'sub'}"):
        outputs.check_writable(tmp_path / "file" / "sub")


def test_stale_runs_of_this_host_whose_process_is_gone_are_closed(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("stale", artifact_location=str(tmp_path / "art"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    ids = {name: client.create_run(exp, run_name=name, tags=tags).info.run_id for name, tags in [
        ("gone", {"host": host, "pid": str(dead.pid)}),
        ("alive", {"host": host, "pid": str(os.getpid())}),
        ("elsewhere", {"host": "another-machine", "pid": str(dead.pid)}),
        ("untagged", {})]}
    assert faults.close_stale_runs(client) == [ids["gone"]]
    status = {n: client.get_run(i).info.status for n, i in ids.items()}
    assert status == {"gone": "FAILED", "alive": "RUNNING", "elsewhere": "RUNNING",
                      "untagged": "RUNNING"}
    assert "is gone" in client.get_run(ids["gone"]).data.tags["failure"]


def test_a_signal_becomes_stopped_and_the_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(faults.Stopped) as info:
        with faults.stop_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert info.value.name == "SIGTERM" and info.value.exit_code() == 143
    assert signal.getsignal(signal.SIGTERM) is before
    assert faults.received == [signal.SIGTERM]
    faults.received.clear()
