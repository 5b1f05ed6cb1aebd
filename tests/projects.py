"""A fresh git + DVC copy of this project in a temporary folder, and ways to drive it.

conf/, dvc.yaml and .dvc/ are copied; pipeline/ is linked, so Numba's cache
is shared with the working tree. Sizes are shrunk so every stage takes seconds.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
TINY = {"train": {"epochs": 2, "batch_size": 16, "diagnose_every": 1},
        "model": {"hidden_size": 8},
        "task": {"n_points": 400, "length": 10}}
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


def run(args, cwd, check=True, env=None, timeout=900):
    """Run a command; on failure show its output. `python` is this interpreter."""
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    full = dict(os.environ, PATH=path, **GIT_ENV, **(env or {}))
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=full,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def py(*args):
    return [sys.executable, "-m", *args]


def tool(name, *args):
    """A console script of this environment (dvc, ray, mlflow)."""
    return [str(Path(sys.executable).parent / name), *args]


def make_project(where):
    repo = Path(where)
    repo.mkdir(parents=True)
    for name in ("conf", ".dvc"):
        shutil.copytree(ROOT / name, repo / name,
                        ignore=shutil.ignore_patterns("tmp", "cache", "config.local"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "pipeline").symlink_to(ROOT / "pipeline")
    conf = OmegaConf.load(repo / "conf" / "config.yaml")
    conf.train.update(TINY["train"])
    conf.model.update(TINY["model"])
    OmegaConf.save(conf, repo / "conf" / "config.yaml")
    task = OmegaConf.load(repo / "conf" / "task" / "sine.yaml")
    task.update(TINY["task"])
    OmegaConf.save(task, repo / "conf" / "task" / "sine.yaml")
    run(py("pipeline.params"), repo)
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "init"], repo)
    return repo


def sqlite_runs(repo):
    """(name, status, run id, parent id, source) of every run in the project's SQLite store."""
    db = sqlite3.connect(repo / "mlflow.db")
    rows = db.execute("""
        SELECT r.name, r.status, r.run_uuid,
               (SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'mlflow.parentRunId'),
               (SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'source')
        FROM runs r""").fetchall()
    db.close()
    return rows
