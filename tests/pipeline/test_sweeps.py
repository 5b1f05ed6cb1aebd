"""Hydra runs and sweeps: one MLflow child run per job under a parent, failures, bad input.

The subprocess tests run in a fresh project (tests/projects.py) at the sizes of
conf/debug/tiny.yaml, each with its own MLflow store.
"""
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from pipeline import cli
from pipeline.sweep import SweepCallback
from projects import ROOT, make_project, project_runs, py, run, store


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "repo")


@pytest.mark.slow
def test_sweep_logs_one_child_run_per_job_and_a_report(project):
    sweep = run(py("pipeline.train", "-m", "model.cell=rnn,gru", "model.num_layers=1,2",
                   "hydra.sweep.dir=sweep"), project)
    runs = project_runs(project)
    parents = [r for r in runs if r[4] == "hydra sweep"]
    assert len(parents) == 1 and parents[0][1] == "FINISHED", sweep.stderr[-2000:]
    children = [r for r in runs if r[3] == parents[0][2]]
    assert len(children) == 4 and {r[1] for r in children} == {"FINISHED"}
    for job in range(4):
        files = {p.name for p in (project / "sweep" / str(job)).iterdir()}
        assert {"model.npz", "metrics.json", "history.csv", "predictions.csv",
                "hidden_grad_norms.csv"} <= files
        assert not any(f.endswith(".png") for f in files), "a sweep's jobs draw no PNGs"
    assert not (project / "data").exists(), "a sweep must not write DVC outputs"
    report = run(py("pipeline.report", "--out", "reports"), project)
    assert "4 runs" in report.stdout
    md = (project / "reports" / "rnn-pipeline" / "runs.md").read_text()
    assert md.count("| sine ") == 4
    assert (project / "reports" / "rnn-pipeline" / "comparison.png").stat().st_size > 0


@pytest.mark.slow
def test_a_seed_sweep_gives_one_summary_row_per_configuration_on_the_parent_too(project):
    run(py("pipeline.train", "-m", "model.cell=rnn,lstm", "seed=0,1,2",
           "hydra.sweep.dir=sweep"), project)
    runs = project_runs(project)
    (parent,) = [r for r in runs if r[4] == "hydra sweep"]
    children = sorted(r[0] for r in runs if r[3] == parent[2])
    assert children == ["lstm s0", "lstm s1", "lstm s2", "rnn s0", "rnn s1", "rnn s2"]
    client = MlflowClient(store(project))
    experiment = client.get_experiment_by_name("rnn-pipeline")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    child = client.search_runs([experiment.experiment_id], "tags.mlflow.runName = 'lstm s1'")[0]
    assert child.data.tags["overrides"] == "model.cell=lstm seed=1"
    (dataset,) = child.inputs.dataset_inputs
    assert dataset.dataset.digest == child.data.tags["dataset_fingerprint"]
    assert dataset.dataset.name == "sine"
    assert 0 <= child.data.metrics["clip_fraction"] <= 1
    assert child.data.metrics["preclip_norm_q99"] <= child.data.metrics["preclip_norm_max"]
    # the sweep's own report, logged on its parent run, and the same from pipeline.report
    local = client.download_artifacts(parent[2], "report/summary.csv", str(project / "dl"))
    for path in (local, None):
        if path is None:
            run(py("pipeline.report", "--out", "reports"), project)
            path = project / "reports" / "rnn-pipeline" / "summary.csv"
        summary = pd.read_csv(path)
        assert list(summary["model.cell"]) == ["lstm", "rnn"]
        assert list(summary["n_seeds"]) == [3, 3]
        assert {"baseline", "baseline_persistence_mse", "baseline_train_mean_mse"} <= \
            set(summary.columns)
        for name in ("test_loss", "test_mse"):
            assert {f"{name}_mean", f"{name}_std", f"{name}_ci95"} <= set(summary.columns)
            assert (summary[f"{name}_ci95"] > summary[f"{name}_std"]).all()
    parent_run = client.get_run(parent[2])
    assert "| lstm" in parent_run.data.tags["mlflow.note.content"]
    assert "p_value" in parent_run.data.tags["mlflow.note.content"]
    files = {f.path for f in client.list_artifacts(parent[2], "report")}
    assert {f"report/{n}" for n in ("summary.md", "val_curves.png", "hidden_grad_norms.png",
                                    "test_metric.png", "clipping.png")} <= files


@pytest.mark.slow
def test_an_optuna_search_minimises_the_validation_loss_with_trials_as_child_runs(project):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    run(py("pipeline.train", "-m", "hydra/sweeper=search", "hydra.sweeper.n_trials=3",
           "hydra.sweep.dir=search"), project)
    runs = project_runs(project)
    (parent,) = [r for r in runs if r[4] == "hydra sweep"]
    children = [r for r in runs if r[3] == parent[2]]
    assert parent[1] == "FINISHED" and len(children) == 3
    assert {r[1] for r in children} == {"FINISHED"}
    client = MlflowClient(store(project))
    val = {}
    for name, _, run_id, _, _ in children:
        r = client.get_run(run_id)
        assert name.startswith("H") and "optimizer.lr=" in r.data.tags["overrides"]
        val[run_id] = r.data.metrics["val_loss"]      # the last epoch's
    best = yaml.safe_load((project / "search" / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(val.values()), rel=1e-12)
    assert (project / "search" / "report" / "summary.csv").is_file()


@pytest.mark.slow
def test_a_failing_job_is_recorded_and_the_others_run(project):
    bad = project / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    good = project / "good.txt"
    good.write_text("hello world, this is text. " * 200)
    proc = run(py("pipeline.train", "-m", "task=text", f"task.path={bad},{good}",
                  "hydra.sweep.dir=sweep"), project, check=False)
    assert proc.returncode != 0
    runs = project_runs(project)
    assert sorted(r[1] for r in runs if r[3]) == ["FAILED", "FINISHED"]
    assert [r[1] for r in runs if r[4] == "hydra sweep"] == ["FAILED"]
    assert "RUNNING" not in {r[1] for r in runs}


@pytest.mark.slow
def test_an_experiment_preset_runs_as_one_hydra_job(project):
    run(py("pipeline.train", "experiment=irnn-clip", "task.n_train=200", "task.n_val=50",
           "task.n_test=50", "hydra.run.dir=one"), project)
    (name, status, _, parent, source), = project_runs(project)
    assert status == "FINISHED" and parent is None and source == "hydra"
    assert (project / "one" / "metrics.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    (["optimizer=adamax"], "optimizer=adamax is not an option: expected one of adagrad, adam,"
                           " adamw, rmsprop, sgd"),
    (["-m", "clip=none,nrm"], "clip=nrm is not an option: expected one of none, norm, value"),
    (["experiment=adding-tcn"], "experiment=adding-tcn is not an option: expected one of"),
    (["model.num_layers=0"], "model.num_layers must be an integer >= 1, got 0"),
    (["-m", "model.hidden_size=8,0"], "model.hidden_size must be an integer >= 1, got 0"),
    (["-m", "model.cell=lstm,tcn"], "model.cell must be one of rnn, lstm, gru, got 'tcn'"),
    (["task=text", "task.path=missing.txt"], "task.path missing.txt is not a file"),
    (["-m", "hydra/sweeper=search", "model.num_layers=0"],
     "model.num_layers must be an integer >= 1, got 0"),
])
def test_bad_input_fails_before_any_work_in_one_line(project, args, message):
    proc = run(py("pipeline.train", *args, "hydra.sweep.dir=sweep"), project, check=False)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert not project_runs(project)


@pytest.fixture(scope="module")
def composer():
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        yield lambda overrides=(): compose("config", overrides=list(overrides))


def test_sweep_end_closes_every_job_run_failed_even_a_job_that_logged_nothing(composer, tmp_path):
    """A job killed before it opened its run still shows in the sweep, FAILED."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("closing", artifact_location=str(tmp_path / "art"))
    parent = client.create_run(experiment, run_name="sweep").info.run_id
    child = {"mlflow.parentRunId": parent}
    done = client.create_run(experiment, run_name="model.cell=rnn", tags=child).info.run_id
    client.set_terminated(done, "FINISHED")
    client.create_run(experiment, run_name="model.cell=gru", tags=child)  # killed mid-job
    callback = SweepCallback()
    callback.client, callback.parent = client, parent
    callback.jobs = {f"model.cell={c}": cli.from_node(composer([f"model.cell={c}"]))
                     for c in ("rnn", "gru", "lstm")}
    callback._close("FINISHED")
    runs = {r.info.run_name: r for r in client.search_runs([experiment])}
    assert runs["sweep"].info.status == "FAILED"
    assert runs["model.cell=rnn"].info.status == "FINISHED"
    assert runs["model.cell=gru"].info.status == "FAILED"
    assert runs["model.cell=gru"].data.tags["failure"] == "the job's process died"
    never = runs["lstm"]   # named as its job would have named it, overrides kept as a tag
    assert never.data.tags["overrides"] == "model.cell=lstm"
    assert never.info.status == "FAILED" and never.data.tags["mlflow.parentRunId"] == parent
    assert never.data.tags["failure"].startswith("the job logged nothing")
    assert never.data.params["model.cell"] == "lstm"
    assert len(runs) == 4
