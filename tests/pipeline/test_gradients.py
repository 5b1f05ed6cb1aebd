"""The `gradients` stage: the study's files from conf/gradients/, a trained model, bad input."""
import pandas as pd
import pytest

from pipeline import gradients
from pipeline.analysis import gradflow
from projects import ROOT


def test_the_study_writes_its_table_figure_and_decay_rates(tmp_path):
    gradients.main(["--out", str(tmp_path / "g"), "gradients=tiny", "seeds=[0]"])
    table = pd.read_csv(tmp_path / "g" / "gradient_flow.csv")
    assert tuple(table.columns) == gradflow.COLUMNS
    assert {"rnn tanh rho=0.5", "rnn relu rho=1.5", "lstm", "gru"} <= set(table["config"])
    assert table["distance"].max() == 99          # conf/gradients/tiny.yaml: length 100
    rates = pd.read_csv(tmp_path / "g" / "decay_rates.csv").set_index("config")
    assert rates.loc["rnn tanh rho=0.5", "slope_per_step"] < 0
    assert (tmp_path / "g" / "gradient_flow.png").stat().st_size > 10_000
    assert "slope_per_step" in (tmp_path / "g" / "decay_rates.md").read_text()


def test_default_settings_are_the_studys(tmp_path):
    study = gradients.settings([])
    assert study.length >= 100 and study.rhos == [0.5, 0.9, 1.0, 1.1, 1.5]
    assert set(study.cells) == {"rnn", "lstm", "gru"} and len(study.seeds) >= 3


def test_a_trained_model_is_added_by_path(tmp_path):
    from pipeline import cli, data
    from pipeline.training import bundle
    from pipeline.training.config import task_params
    from pipeline.training.scoring import build_model

    cfg = cli.load_params_file(ROOT / "params.yaml")
    ds = data.make(str(cfg.task.name), **task_params(cfg.task))
    bundle.save(tmp_path / "model.npz", build_model(cfg, ds), cfg, ds)
    gradients.main(["--out", str(tmp_path / "g"), "--model", str(tmp_path / "model.npz"),
                    "gradients=tiny", "seeds=[0]", "cells=[gru]"])
    table = pd.read_csv(tmp_path / "g" / "gradient_flow.csv")
    assert set(table["config"]) == {"gru", f"trained {cfg.model.cell} ({cfg.task.name})"}


@pytest.mark.parametrize("args,message", [
    (["gradients=huge"], "gradients=huge is not an option: expected one of default, tiny"),
    (["lenght=10"], "lenght: Key 'lenght' not in 'Settings'"),
    (["rhos=[0.5,-1]"], "rhos[1] must be a finite number > 0.0, got -1"),
    (["cells=[tcn]"], "cells must hold values of rnn, lstm, gru, got 'tcn'"),
    (["--model", "missing.npz"], "--model missing.npz is not a file"),
    (["--out", str(ROOT / "dvc.yaml")], "is a file, not a folder"),
])
def test_bad_input_is_one_line_naming_the_argument(args, message, capsys, tmp_path):
    if "--out" not in args:
        args = ["--out", str(tmp_path / "g"), *args]
    with pytest.raises(SystemExit) as stop:
        gradients.main([*args, "gradients=tiny"] if not args[-1].startswith("gradients=")
                       and "gradients=huge" not in args else args)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
