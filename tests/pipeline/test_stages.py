"""The DVC pipeline on a fresh repository: stages, their deps, repeats, remotes, experiments.

Each test runs commands in a fresh git + DVC copy of the project in a temporary
folder (tests/projects.py), at the sizes of conf/debug/tiny.yaml; the MLflow
store is that folder's own mlflow.db.
"""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from projects import ROOT, make_project, project_runs, py, run, tool

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path):
    """A fresh git + DVC repository with this project's pipeline, at tiny sizes."""
    return make_project(tmp_path / "repo")


def dvc(*args):
    return tool("dvc", *args)


# Written into a folder on PYTHONPATH: every Python process started under it
# records, when it exits, its command line and the project files it loaded.
RECORDER = '''
import atexit, json, os, sys
def _record():
    root = os.environ["RECORD_ROOT"]
    files = sorted({os.path.realpath(m.__file__) for m in list(sys.modules.values())
                    if getattr(m, "__file__", None)})
    with open(os.path.join(os.environ["RECORD_DIR"], f"{os.getpid()}.json"), "w") as f:
        json.dump({"argv": sys.argv, "files": [p for p in files if p.startswith(root + os.sep)]}, f)
atexit.register(_record)
'''


def stage_deps(project):
    """{stage: (its command's module, its deps as resolved absolute paths)} from dvc.yaml."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((project / "params.yaml").read_text())

    def resolve(text):
        def value(m):
            node = params
            for key in m.group(1).split("."):
                node = node[key]
            return str(node)
        return re.sub(r"\$\{([^}]+)\}", value, text)

    out = {}
    for name, stage in stages.items():
        module = re.search(r"python -m ([\w.]+)", stage["cmd"]).group(1)
        deps = [Path(os.path.realpath(project / resolve(d))) for d in stage["deps"]]
        out[name] = (module, deps)
    return out


def test_dvc_pipeline_runs_on_a_fresh_repo_and_repeats_exactly(project, tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(RECORDER)
    run(dvc("repro"), project, env={"PYTHONPATH": str(tmp_path / "site"),
                                    "RECORD_DIR": str(record), "RECORD_ROOT": str(ROOT / "pipeline")})
    lock = (project / "dvc.lock").read_text()
    metrics = json.loads((project / "data" / "metrics.json").read_text())
    assert metrics["test_loss"] < metrics["baseline"]
    for name in ("history.csv", "grad_norms.csv", "hidden_grad_norms.csv"):
        assert (project / "data" / "train" / name).is_file()
    # every project file a stage's process loaded is under that stage's deps
    deps = stage_deps(project)
    loaded = [json.loads(p.read_text()) for p in record.glob("*.json")]
    for stage, (module, stage_files) in deps.items():
        procs = [r for r in loaded if r["argv"][:1] and r["argv"][0].endswith(
            module.replace(".", "/") + ".py")]
        assert procs, f"stage {stage}: its process ({module}) was not recorded"
        for proc in procs:
            missing = [f for f in proc["files"]
                       if not any(Path(f) == d or d in Path(f).parents for d in stage_files)]
            assert not missing, f"stage {stage} loads files outside its deps: {missing}"
    assert "Data and pipelines are up to date" in run(dvc("repro"), project).stdout
    assert (project / "dvc.lock").read_text() == lock
    # a forced rerun of every stage reproduces every output bit for bit
    run(dvc("repro", "--force"), project)
    assert (project / "dvc.lock").read_text() == lock
    assert "test_loss" in run(dvc("metrics", "show"), project).stdout
    run(dvc("plots", "show"), project)
    assert (project / "dvc_plots" / "index.html").is_file()
    runs = project_runs(project)
    assert len(runs) == 2, "one run per time the train stage ran"
    assert {(status, source) for _, status, _, _, source in runs} == {("FINISHED", "dvc repro")}


def test_each_stage_module_loads_only_files_under_its_deps(project):
    """Importing a stage's module loads no project file that its dvc.yaml deps miss."""
    code = ("import importlib, os, sys; importlib.import_module(sys.argv[1]);"
            " print('\\n'.join(os.path.realpath(m.__file__) for m in list(sys.modules.values())"
            " if getattr(m, '__file__', None)))")
    for stage, (module, deps) in stage_deps(project).items():
        out = run([sys.executable, "-c", code, module], project).stdout.split()
        files = [Path(f) for f in out if f.startswith(str(ROOT / "pipeline"))]
        missing = [str(f) for f in files if not any(f == d or d in f.parents for d in deps)]
        assert files and not missing, f"stage {stage} loads files outside its deps: {missing}"


def test_generate_loads_no_kernels_and_no_optimizer(project):
    code = ("import sys; import pipeline.generate;"
            " print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba'"
            " or m.startswith(('pipeline.kernels', 'pipeline.nn.optim'))))")
    assert run([sys.executable, "-c", code], project).stdout.strip() == "[]"


def test_editing_a_kernel_reruns_train_and_evaluate_but_not_generate(project, tmp_path):
    run(dvc("repro"), project)
    # the project links the real pipeline/; a private copy lets this test edit a kernel
    (project / "pipeline").unlink()

    shutil.copytree(ROOT / "pipeline", project / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    status = run(dvc("status"), project).stdout
    assert "changed" not in status, status
    kernel = project / "pipeline" / "kernels" / "rnn.py"
    kernel.write_text(kernel.read_text() + "\n# an edit\n")
    out = run(dvc("repro", "--dry"), project).stdout
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    assert "Running stage 'generate'" not in out


def test_dvc_remote_push_and_pull_restore_the_outputs(project, tmp_path):
    run(dvc("remote", "add", "-d", "shared", str(tmp_path / "remote")), project)
    run(dvc("repro"), project)
    run(dvc("push"), project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "results"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    (clone / "pipeline").unlink(missing_ok=True)
    (clone / "pipeline").symlink_to(ROOT / "pipeline")
    run(dvc("pull"), clone)
    for name in ("dataset.npz", "model.npz", "metrics.json", "train/history.csv"):
        assert (clone / "data" / name).read_bytes() == (project / "data" / name).read_bytes()
    assert "Data and pipelines are up to date" in run(dvc("repro"), clone).stdout


def test_dvc_experiments_compose_conf_with_set_params(project):
    run(dvc("exp", "run", "-S", "model.cell=gru"), project)
    assert yaml.safe_load((project / "params.yaml").read_text())["model"]["cell"] == "gru"
    shown = run(dvc("exp", "show", "--no-pager", "--md"), project).stdout
    assert "gru" in shown and "test_loss" in shown


def test_evaluate_logs_its_test_metrics_on_the_train_stage_run(project):
    run(dvc("repro"), project)
    from projects import runs, store
    (only,) = runs(store(project))
    metrics = json.loads((project / "data" / "metrics.json").read_text())
    assert only.data.metrics["test_loss"] == pytest.approx(metrics["test_loss"], rel=1e-12)
    assert "val_loss" in only.data.metrics and only.info.status == "FINISHED"


def test_missing_and_corrupt_files_name_the_file_and_its_stage(project):
    proc = run(py("pipeline.evaluate"), project, check=False)
    assert proc.returncode == 2
    assert "data/dataset.npz is missing: it is made by `python -m pipeline.generate" in proc.stderr
    run(py("pipeline.generate"), project)
    proc = run(py("pipeline.evaluate"), project, check=False)
    assert "data/model.npz is missing: it is made by `python -m pipeline.train --params" \
        in proc.stderr
    (project / "data" / "dataset.npz").write_bytes(b"garbage")
    proc = run(py("pipeline.train", "--params", "params.yaml"), project, check=False)
    assert proc.returncode == 2 and "data/dataset.npz is corrupt" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not project_runs(project)


def test_classification_of_real_sequences_through_dvc(project):
    """task=tsc with `dvc exp run`: accuracy and every baseline in the metrics, a confusion
    matrix as a DVC plot."""
    run(dvc("exp", "run", "-S", "task=tsc", "-S", "task.dataset=ItalyPowerDemand",
            "-S", "task.length=null", "-S", "train.epochs=30", "-S", "model.hidden_size=16"),
        project)
    metrics = json.loads((project / "data" / "metrics.json").read_text())
    assert {"test_accuracy", "baseline", "baseline_majority_accuracy",
            "baseline_prior_xent"} <= set(metrics)
    assert metrics["test_accuracy"] > metrics["baseline_majority_accuracy"]
    confusion = (project / "data" / "eval" / "confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 1 + 1029
    assert (project / "data" / "eval" / "confusion.png").is_file()
    shown = json.loads(run(dvc("plots", "show", "--json"), project).stdout)
    assert any("confusion.csv" in name for name in shown["data"])
