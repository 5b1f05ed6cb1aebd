"""conf/, params.yaml and the schemas: one source of truth, checked before any work."""
import dataclasses
import subprocess
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir

from pipeline import cli, params
from pipeline.nn import optim, spec
from pipeline.training import config
from projects import ROOT

CONF = ROOT / "conf"


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
            text = (CONF / group / f"{name}.yaml").read_text()
            node = yaml.safe_load(text)
            if text.startswith("# @package _global_"):   # the group's keys, and others it sets
                node = node[group]
            assert set(node) == _fields(cls), name
    for p in (CONF / "clip").glob("*.yaml"):
        assert set(yaml.safe_load(p.read_text())) == _fields(config.ClipConfig)
    assert {p.stem for p in (CONF / "clip").glob("*.yaml")} == set(config.ClipKind)
    top = yaml.safe_load((CONF / "config.yaml").read_text())
    for key, cls in (("model", config.ModelConfig), ("train", config.TrainConfig),
                     ("paths", config.PathsConfig), ("tracking", config.TrackingConfig)):
        assert set(top[key]) == _fields(cls), key


def test_tsc_sets_its_model_size_and_the_command_line_still_wins(composer):
    assert cli.from_node(composer(["task=tsc"])).model.hidden_size == 64
    assert cli.from_node(composer(["task=tsc", "model.hidden_size=16"])).model.hidden_size == 16
    assert cli.from_node(composer(["task=sine"])).model.hidden_size == 32


def test_the_schema_names_what_the_library_implements():
    assert set(config.Cell) == set(spec.GATES)
    assert set(config.Nonlinearity) == set(spec.NONLINEARITIES)
    assert set(config.DType) == set(spec.DTYPES)
    assert set(config.OptimizerName) == set(optim.OPTIMIZERS) == set(config.OPTIMIZER_CONFIGS)
    assert set(config.TaskName) == set(config.TASK_CONFIGS)


def test_reading_a_config_loads_no_numba_and_no_optimizer():
    code = ("import sys; import pipeline.training.config, pipeline.cli;"
            " print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba'"
            " or m in ('pipeline.nn.optim', 'pipeline.nn.recurrent')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def composer():
    with initialize_config_dir(str(CONF), version_base=None):
        yield lambda overrides=(): compose("config", overrides=list(overrides))


@pytest.mark.parametrize("group,options", [("optimizer", list(config.OPTIMIZER_CONFIGS)),
                                           ("clip", list(config.ClipKind)),
                                           ("task", list(config.TASK_CONFIGS))])
def test_every_group_option_composes_and_checks(composer, group, options):
    for option in options:
        cfg = cli.from_node(composer([f"{group}={option}"]))
        node = getattr(cfg, group)
        assert (node.kind if group == "clip" else node.name) == option


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_preset_composes_with_and_without_debug(composer, preset):
    full = cli.from_node(composer([f"experiment={preset}"]))
    tiny = cli.from_node(composer([f"experiment={preset}", "debug=tiny"]))
    assert full.model.cell == tiny.model.cell and tiny.train.epochs == 2
    assert full.train.epochs > 2


@pytest.mark.parametrize("override,message", [
    ("model.cell=tcn", "model.cell must be one of rnn, lstm, gru, got 'tcn'"),
    ("model.nonlinearity=sigmoid", "model.nonlinearity must be one of tanh, relu, got 'sigmoid'"),
    ("model.hidden_size=abc", "model.hidden_size: Value 'abc'"),
    ("model.hidden_size=0", "model.hidden_size must be an integer >= 1, got 0"),
    ("model.dropout=1.5", r"model.dropout must be a finite number >= 0.0 and < 1.0, got 1.5"),
    ("model.dtype=float16", "model.dtype must be one of float32, float64, got 'float16'"),
    ("model.init=xavier", "model.init must be one of uniform, orthogonal"),
    ("model.init=irnn", "model.init 'irnn' applies to cell rnn, not 'lstm'"),
    ("optimizer.lr=-0.1", "optimizer.lr must be a finite number >= 0.0, got -0.1"),
    ("optimizer.betas=[0.9,1.5]", r"optimizer.betas\[1\] must be a finite number >= 0.0 and < 1.0"),
    ("clip.threshold=0", "clip.threshold must be a finite number > 0.0, got 0"),
    ("clip.kind=max", "clip.kind must be one of none, norm, value, got 'max'"),
    ("train.epochs=0", "train.epochs must be an integer >= 1, got 0"),
    ("seed=-1", "seed must be an integer >= 0, got -1"),
    ("task.length=0", "task.length must be an integer >= 1, got 0"),
    ("train.tbptt=-1", "train.tbptt must be an integer >= 0, got -1"),
    ("+model.hiden=3", "model.hiden: Key 'hiden' not in 'ModelConfig'"),
])
def test_config_errors_are_one_line_naming_the_key(composer, override, message):
    with pytest.raises(config.ConfigError, match=message) as info:
        cli.from_node(composer([override]))
    assert "\n" not in str(info.value)


def test_truncated_bptt_takes_tasks_of_one_long_sequence_only(composer):
    for task in ("text", "sine", "series"):
        assert cli.from_node(composer([f"task={task}", "train.tbptt=16"])).train.tbptt == 16
    for task in ("adding", "copy", "tsc"):
        with pytest.raises(config.ConfigError, match=f"train.tbptt applies to tasks text, sine,"
                           f" series .* not task {task}, whose sequences are independent"):
            cli.from_node(composer([f"task={task}", "train.tbptt=16"]))


def test_a_next_step_model_cannot_read_backwards(composer):
    """A reverse direction reading the characters (or values) it predicts would score a
    loss far below any honest model's."""
    for overrides in (["task=text"], ["task=series", "train.tbptt=16"]):
        with pytest.raises(config.ConfigError, match="model.bidirectional cannot be used where"
                           " .* the reverse direction would read the values it predicts"):
            cli.from_node(composer(overrides + ["model.bidirectional=true"]))
    assert cli.from_node(composer(["task=series", "model.bidirectional=true"])).model.bidirectional


def test_optimizer_and_task_schemas_are_chosen_by_name(composer):
    with pytest.raises(config.ConfigError, match="optimizer.momentum: Key 'momentum' not in"):
        cli.from_node(composer(["optimizer=adam", "+optimizer.momentum=0.9"]))
    with pytest.raises(config.ConfigError, match="optimizer.nesterov needs momentum > 0"):
        cli.from_node(composer(["optimizer=sgd", "optimizer.nesterov=true",
                                   "optimizer.momentum=0"]))
