"""The pipeline: conf/ and params.yaml, DVC stages, sweeps, MLflow, bad input.

Subprocess tests run in a fresh git + DVC repository in a temporary folder
(tests/projects.py); the MLflow store is that folder's own mlflow.db.
"""
import dataclasses
import json

import pytest
import yaml
from hydra import compose, initialize_config_dir

from pipeline import config, params
from projects import ROOT, make_project, py, run, sqlite_runs, tool

CONF = ROOT / "conf"


# ----- conf/ and params.yaml ----------------------------------------------------
def test_params_yaml_is_generated_from_conf(tmp_path):
    params.compose(tmp_path / "params.yaml", root=ROOT)
    assert (tmp_path / "params.yaml").read_text() == (ROOT / "params.yaml").read_text(), \
        "params.yaml drifted from conf/: run `python -m pipeline.params`"


def _fields(cls):
    return {f.name for f in dataclasses.fields(cls)}


def test_conf_files_have_exactly_the_schema_keys():
    for group, table in (("optimizer", config.OPTIMIZER_CONFIGS), ("task", config.TASK_CONFIGS)):
        assert {p.stem for p in (CONF / group).glob("*.yaml")} == set(table)
        for name, cls in table.items():
            assert set(yaml.safe_load((CONF / group / f"{name}.yaml").read_text())) == _fields(cls)
    for p in (CONF / "clip").glob("*.yaml"):
        assert set(yaml.safe_load(p.read_text())) == _fields(config.ClipConfig)
    assert {p.stem for p in (CONF / "clip").glob("*.yaml")} == set(config.CLIP_KINDS)
    top = yaml.safe_load((CONF / "config.yaml").read_text())
    for key, cls in (("model", config.ModelConfig), ("train", config.TrainConfig),
                     ("paths", config.PathsConfig)):
        assert set(top[key]) == _fields(cls), key


@pytest.fixture(scope="module")
def composer():
    with initialize_config_dir(str(CONF), version_base=None):
        yield lambda overrides=(): compose("config", overrides=list(overrides))


@pytest.mark.parametrize("group,options", [("optimizer", list(config.OPTIMIZER_CONFIGS)),
                                           ("clip", list(config.CLIP_KINDS)),
                                           ("task", list(config.TASK_CONFIGS))])
def test_every_group_option_composes_and_checks(composer, group, options):
    for option in options:
        cfg = config.from_node(composer([f"{group}={option}"]))
        node = getattr(cfg, group)
        assert (node.kind if group == "clip" else node.name) == option


@pytest.mark.parametrize("override,message", [
    ("model.cell=tcn", "model.cell must be one of rnn, lstm, gru, got 'tcn'"),
    ("model.hidden_size=abc", "model.hidden_size: Value 'abc'"),
    ("model.dropout=1.5", r"model.dropout must be a number in \[0, 1\)"),
    ("model.dtype=float16", "model.dtype must be one of float32, float64"),
    ("optimizer.lr=-0.1", "optimizer.lr must be a finite number >= 0.0"),
    ("clip.threshold=0", "clip.threshold must be a number > 0"),
    ("train.epochs=0", "train.epochs must be an integer >= 1"),
    ("+model.hiden=3", "model.hiden: Key 'hiden' not in 'ModelConfig'"),
])
def test_config_errors_are_one_line_naming_the_key(composer, override, message):
    with pytest.raises(config.ConfigError, match=message) as info:
        config.from_node(composer([override]))
    assert "\n" not in str(info.value)


# ----- subprocess tests in a fresh repository -----------------------------------------
@pytest.fixture
def project(tmp_path):
    """A fresh git + DVC repository with this project's pipeline, at tiny sizes."""
    return make_project(tmp_path / "repo")


def dvc(*args):
    return tool("dvc", *args)


mlflow_runs = sqlite_runs


def test_dvc_pipeline_runs_on_a_fresh_repo_and_repeats_exactly(project):
    run(dvc("repro"), project)
    lock = (project / "dvc.lock").read_text()
    metrics = json.loads((project / "data" / "metrics.json").read_text())
    assert metrics["test_loss"] < metrics["baseline"]
    for name in ("history.csv", "grad_norms.csv", "hidden_grad_norms.csv"):
        assert (project / "data" / "train" / name).is_file()
    assert "Data and pipelines are up to date" in run(dvc("repro"), project).stdout
    assert (project / "dvc.lock").read_text() == lock
    # a forced rerun of every stage reproduces every output bit for bit
    run(dvc("repro", "--force"), project)
    assert (project / "dvc.lock").read_text() == lock
    assert "test_loss" in run(dvc("metrics", "show"), project).stdout
    run(dvc("plots", "show"), project)
    assert (project / "dvc_plots" / "index.html").is_file()
    runs = mlflow_runs(project)
    assert len(runs) == 2, "one run per time the train stage ran"
    assert {(status, source) for _, status, _, _, source in runs} == {("FINISHED", "dvc repro")}


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


def test_sweep_logs_one_child_run_per_job_and_a_report(project):
    sweep = run(py("pipeline.train", "-m", "model.cell=rnn,gru", "model.num_layers=1,2",
                   "hydra.sweep.dir=sweep"), project)
    runs = mlflow_runs(project)
    parents = [r for r in runs if r[4] == "hydra sweep"]
    assert len(parents) == 1 and parents[0][1] == "FINISHED", sweep.stderr[-2000:]
    children = [r for r in runs if r[3] == parents[0][2]]
    assert len(children) == 4 and {r[1] for r in children} == {"FINISHED"}
    for job in range(4):
        files = {p.name for p in (project / "sweep" / str(job)).iterdir()}
        assert {"model.npz", "metrics.json", "history.csv", "loss_curves.png",
                "predictions.png", "hidden_grad_norms.png"} <= files
    assert not (project / "data").exists(), "a sweep must not write DVC outputs"
    report = run(py("pipeline.report", "--out", "reports"), project)
    assert "4 runs" in report.stdout
    md = (project / "reports" / "rnn-pipeline" / "runs.md").read_text()
    assert md.count("| sine ") == 4
    assert (project / "reports" / "rnn-pipeline" / "comparison.png").stat().st_size > 0


def test_a_failing_job_is_recorded_and_the_others_run(project):
    bad = project / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    good = project / "good.txt"
    good.write_text("hello world, this is text. " * 200)
    proc = run(py("pipeline.train", "-m", "task=text", f"task.path={bad},{good}",
                  "task.length=16", "hydra.sweep.dir=sweep"), project, check=False)
    assert proc.returncode != 0
    runs = mlflow_runs(project)
    children = sorted((r[1] for r in runs if r[3]))
    assert children == ["FAILED", "FINISHED"]
    assert [r[1] for r in runs if r[4] == "hydra sweep"] == ["FAILED"]
    assert "RUNNING" not in {r[1] for r in runs}



def test_sweep_end_closes_every_job_run_failed_even_a_job_that_logged_nothing(composer, tmp_path):
    """A job killed before it opened its run still shows in the sweep, FAILED."""
    from mlflow.tracking import MlflowClient

    from pipeline.sweep import SweepCallback

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("closing", artifact_location=str(tmp_path / "art"))
    parent = client.create_run(experiment, run_name="sweep").info.run_id
    child = {"mlflow.parentRunId": parent}
    done = client.create_run(experiment, run_name="model.cell=rnn", tags=child).info.run_id
    client.set_terminated(done, "FINISHED")
    client.create_run(experiment, run_name="model.cell=gru", tags=child)  # killed mid-job
    callback = SweepCallback()
    callback.client, callback.parent = client, parent
    callback.jobs = {f"model.cell={c}": config.from_node(composer([f"model.cell={c}"]))
                     for c in ("rnn", "gru", "lstm")}
    callback._close("FINISHED")
    runs = {r.info.run_name: r for r in client.search_runs([experiment])}
    assert runs["sweep"].info.status == "FAILED"
    assert runs["model.cell=rnn"].info.status == "FINISHED"
    assert runs["model.cell=gru"].info.status == "FAILED"
    assert runs["model.cell=gru"].data.tags["failure"] == "the job's process died"
    never = runs["model.cell=lstm"]
    assert never.info.status == "FAILED" and never.data.tags["mlflow.parentRunId"] == parent
    assert never.data.tags["failure"].startswith("the job logged nothing")
    assert never.data.params["model.cell"] == "lstm"
    assert len(runs) == 4

@pytest.mark.parametrize("args,message", [
    (["optimizer=adamax"], "optimizer=adamax is not an option: expected one of adagrad, adam,"
                           " adamw, rmsprop, sgd"),
    (["-m", "clip=none,nrm"], "clip=nrm is not an option: expected one of none, norm, value"),
    (["model.num_layers=0"], "model.num_layers must be an integer >= 1, got 0"),
    (["-m", "model.hidden_size=8,0"], "model.hidden_size must be an integer >= 1, got 0"),
    (["task=text", "task.path=missing.txt"], "task.path missing.txt is not a file"),
])
def test_bad_input_fails_before_any_work_in_one_line(project, args, message):
    proc = run(py("pipeline.train", *args, "hydra.sweep.dir=sweep"), project, check=False)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert not (project / "mlflow.db").exists() or not mlflow_runs(project)


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
    assert not (project / "mlflow.db").exists() or not mlflow_runs(project)
