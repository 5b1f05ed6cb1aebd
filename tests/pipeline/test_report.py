"""The report's tables from a frame like mlflow.search_runs', and the names runs get."""
import numpy as np
import pandas as pd
import pytest

from pipeline import compare
from pipeline.jobs import run_name


def fake_runs():
    rng = np.random.default_rng(1)
    rows = []
    for cell, centre in (("rnn", 0.01), ("lstm", 0.001)):
        for clip in ("none", "norm"):
            for seed in range(3):
                loss = centre * (1 + 0.05 * rng.standard_normal())
                rows.append({"run_id": f"{cell}{clip}{seed}", "status": "FINISHED",
                             "tags.mlflow.runName": run_name([f"model.cell={cell}",
                                                              f"clip={clip}", f"seed={seed}"]),
                             "params.model.cell": cell, "params.clip.kind": clip,
                             "params.seed": str(seed), "params.task.name": "sine",
                             "metrics.test_loss": loss, "metrics.test_mse": loss,
                             "metrics.baseline": 1.5, "metrics.clip_fraction": 0.1,
                             "metrics.preclip_norm_q99": 2.0, "tags.outcome": "finished"})
    rows.append(dict(rows[0], run_id="failed", status="FAILED"))
    return pd.DataFrame(rows)


def test_summary_groups_by_every_parameter_but_the_seed():
    table, keys, metric = compare.seed_table(fake_runs())
    assert keys == ["model.cell", "clip.kind"] and metric == "test_mse"
    assert len(table) == 12, "the FAILED run is left out"
    summ = compare.summary(table, keys, metric)
    assert len(summ) == 4 and (summ["n_seeds"] == 3).all() and (summ["n_diverged"] == 0).all()
    for name in ("test_loss", "test_mse"):
        assert {f"{name}_mean", f"{name}_std", f"{name}_ci95"} <= set(summ.columns)
    row = summ[(summ["model.cell"] == "lstm") & (summ["clip.kind"] == "norm")].iloc[0]
    assert row["test_mse_mean"] == pytest.approx(0.001, rel=0.2)
    assert row["baseline"] == 1.5 and row["clip_fraction_mean"] == pytest.approx(0.1)


def test_cells_are_compared_at_each_setting_of_the_other_keys():
    table, keys, metric = compare.seed_table(fake_runs())
    pairs = compare.pairwise(table, keys)
    assert list(pairs["clip.kind"]) == ["none", "norm"]
    assert set(pairs["model.cell a"]) == {"lstm"} and (pairs["p_value"] < 0.01).all()
    text = compare.description_markdown("t", compare.summary(table, keys, metric), pairs,
                                        keys, metric)
    assert "| lstm" in text and " ± " in text and "Welch" in text


def test_a_search_with_one_seed_per_trial_has_no_pairwise_tests():
    runs = fake_runs()
    runs = runs[runs["params.seed"] == "0"]
    table, keys, _ = compare.seed_table(runs)
    assert compare.pairwise(table, keys).empty


@pytest.mark.parametrize("overrides,name", [
    (["model.cell=lstm", "model.num_layers=2", "optimizer=adam", "clip=norm", "seed=1"],
     "lstm L2 adam clip=norm s1"),
    (["seed=3", "model.cell=gru"], "gru s3"),
    (["optimizer.lr=0.0012345678", "model.hidden_size=64", "train.epochs=3"],
     "H64 lr=0.00123 epochs=3"),
    ([], "defaults"),
])
def test_runs_get_short_readable_names(overrides, name):
    assert run_name(overrides) == name


def test_a_sweep_over_optimizers_compares_them_by_name_and_draws_its_figures(tmp_path):
    """SGD has momentum and Adam has betas: a parameter a run lacks is a value of its own,
    and the members the optimizer's choice decides are not swept keys of their own."""
    from pipeline import report

    rows = []
    for cell in ("rnn", "gru"):
        for opt, extra in (("sgd", {"params.optimizer.momentum": "0.9", "params.optimizer.lr":
                                    "0.05"}),
                           ("adam", {"params.optimizer.betas": "[0.9, 0.999]",
                                     "params.optimizer.lr": "0.002"})):
            for seed in range(2):
                rows.append({"run_id": f"{cell}{opt}{seed}", "status": "FINISHED",
                             "params.model.cell": cell, "params.optimizer.name": opt,
                             "params.seed": str(seed), "metrics.test_loss": 0.1 + seed,
                             "metrics.test_mse": 0.1 + seed, **extra})
    table, keys, metric = compare.seed_table(pd.DataFrame(rows))
    assert keys == ["model.cell", "optimizer.name"]
    assert len(compare.summary(table, keys, metric)) == 4

    class History:  # the one call report.write makes of an MLflow client
        def get_metric_history(self, run_id, key):
            from mlflow.entities import Metric
            return [Metric(key, 1.0 / (step + 1), 0, step) for step in range(5)]

    paths = report.write(History(), pd.DataFrame(rows), tmp_path, "t")
    assert (tmp_path / "test_metric.png").is_file() and (tmp_path / "summary.md").is_file()
    assert len(paths) == 9
    values = compare._param_values(pd.DataFrame(rows))
    assert set(values["optimizer.momentum"]) == {"0.9", compare.ABSENT}
