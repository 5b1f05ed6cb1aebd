"""A fresh git + DVC copy of this project in a temporary folder, and ways to drive it.

conf/, dvc.yaml and .dvc/ are copied; pipeline/ is linked, so Numba's cache
is shared with the working tree. The copy's conf/ selects `debug: tiny`
(conf/debug/tiny.yaml), so every stage takes seconds.

Commands run with an environment built here, not inherited: the user's
MLFLOW_TRACKING_URI and the like never reach them, and each project's runs go
to its own store (``store``), read back through MlflowClient.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
# What a command may take from the machine: where programs and the home folder
# are, the locale, the Numba cache, the BLAS settings the machine is meant to run with.
PASSED_ON = ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "NUMBA_CACHE_DIR",
             "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def store(repo):
    """The MLflow store of a test project: its own SQLite file."""
    return f"sqlite:///{Path(repo).resolve() / 'mlflow.db'}"


def environment(repo, extra=None):
    """The whole environment of a command run in repo: nothing else leaks in."""
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    env.update(GIT_ENV, PATH=f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
               MLFLOW_TRACKING_URI=store(repo))
    env.update(extra or {})
    return env


def run(args, cwd, check=True, env=None, timeout=900):
    """Run a command in project cwd; on failure show its output. `python` is this interpreter."""
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          env=environment(cwd, env), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def py(*args):
    return [sys.executable, "-m", *args]


def tool(name, *args):
    """A console script of this environment (dvc, ray, mlflow)."""
    return [str(BIN / name), *args]


def make_project(where, debug="tiny"):
    repo = Path(where)
    repo.mkdir(parents=True)
    for name in ("conf", ".dvc"):
        shutil.copytree(ROOT / name, repo / name,
                        ignore=shutil.ignore_patterns("tmp", "cache", "config.local"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "pipeline").symlink_to(ROOT / "pipeline")
    config = repo / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("  - debug: null", f"  - debug: {debug}"))
    run(py("pipeline.params"), repo)
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "init"], repo)
    return repo


def runs(uri, experiment="rnn-pipeline"):
    """Every run of the experiment in the store at uri (MlflowClient), oldest first."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return sorted(client.search_runs([found.experiment_id]), key=lambda r: r.info.start_time)


def project_runs(repo, experiment="rnn-pipeline"):
    """(name, status, run id, parent id, source) of every run in a project's store."""
    if not (Path(repo) / "mlflow.db").exists():
        return []
    return [(r.info.run_name, r.info.status, r.info.run_id,
             r.data.tags.get("mlflow.parentRunId"), r.data.tags.get("source"))
            for r in runs(store(repo), experiment)]
