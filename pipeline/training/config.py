"""The experiment's configuration: typed schemas that check their own values.

The dataclasses are the structured configs behind ``conf/`` (the stages turn
a composed config into them with ``pipeline.cli.from_node``) and the plain
config object that ``training.fit`` takes. Names are enums (OmegaConf rejects
any other value), and each dataclass checks its ranges in ``__post_init__``,
so building a config is validating it: nothing else is built to find an error.
Every problem raises ``ConfigError`` with one line naming the key.
Importing this module does not import numba.
"""
import dataclasses
import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from enum import Enum
from typing import Any, Optional

from ..data.tsc import shipped as tsc_datasets
from ..nn.spec import parse_init


class ConfigError(ValueError):
    """A config value is out of range; the message names the key."""


class Cell(StrEnum):
    rnn = "rnn"
    lstm = "lstm"
    gru = "gru"


class Nonlinearity(StrEnum):
    tanh = "tanh"
    relu = "relu"


class DType(StrEnum):
    float32 = "float32"
    float64 = "float64"


class ClipKind(StrEnum):
    none = "none"    # no clipping
    norm = "norm"    # rescale all gradients to global L2 norm <= threshold
    value = "value"  # clamp every gradient entry to [-threshold, threshold]


# ----- range checks, each naming its key ------------------------------------------
def check_int(key, value, low=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}")


def check_number(key, value, low=0.0, strict=False, below=None):
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low) and (below is None or value < below)
    if not ok:
        span = f"{'>' if strict else '>='} {low}" + (f" and < {below}" if below is not None else "")
        raise ConfigError(f"{key} must be a finite number {span}, got {value!r}")


def _check_fields(obj, prefix, ints=(), numbers=()):
    for name in ints:
        check_int(f"{prefix}.{name}", getattr(obj, name))
    for name in numbers:
        check_number(f"{prefix}.{name}", getattr(obj, name))


# ----- the model --------------------------------------------------------------------
@dataclass
class ModelConfig:
    cell: Cell = Cell.lstm
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False
    nonlinearity: Nonlinearity = Nonlinearity.tanh  # rnn only
    dropout: float = 0.0          # between layers, in [0, 1)
    init: str = "uniform"         # uniform | orthogonal | forget_bias | irnn, joined with +
    dtype: DType = DType.float32
    embedding_dim: int = 16       # token tasks (copy, text) only

    def __post_init__(self):
        _check_fields(self, "model", ints=("hidden_size", "num_layers", "embedding_dim"))
        check_number("model.dropout", self.dropout, below=1.0)
        try:
            parse_init(self.init, str(self.cell))
        except ValueError as exc:
            raise ConfigError(f"model.{exc}") from None


# ----- optimizers (torch.optim's names and defaults) ---------------------------------
class OptimizerName(StrEnum):
    sgd = "sgd"
    adagrad = "adagrad"
    rmsprop = "rmsprop"
    adam = "adam"
    adamw = "adamw"


@dataclass
class SGDConfig:
    name: OptimizerName = OptimizerName.sgd
    lr: float = 0.01
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self):
        _check_fields(self, "optimizer", numbers=("lr", "momentum", "dampening", "weight_decay"))
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ConfigError("optimizer.nesterov needs momentum > 0 and dampening = 0")


@dataclass
class AdagradConfig:
    name: OptimizerName = OptimizerName.adagrad
    lr: float = 0.01
    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10

    def __post_init__(self):
        _check_fields(self, "optimizer", numbers=("lr", "lr_decay", "weight_decay",
                                                  "initial_accumulator_value", "eps"))


@dataclass
class RMSpropConfig:
    name: OptimizerName = OptimizerName.rmsprop
    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False

    def __post_init__(self):
        _check_fields(self, "optimizer", numbers=("lr", "alpha", "eps", "weight_decay",
                                                  "momentum"))


@dataclass
class AdamConfig:
    name: OptimizerName = OptimizerName.adam
    lr: float = 0.001
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False

    def __post_init__(self):
        _check_fields(self, "optimizer", numbers=("lr", "eps", "weight_decay"))
        if len(self.betas) != 2:
            raise ConfigError(f"optimizer.betas must be two numbers, got {list(self.betas)!r}")
        for i, b in enumerate(self.betas):
            check_number(f"optimizer.betas[{i}]", b, below=1.0)


@dataclass
class AdamWConfig(AdamConfig):
    name: OptimizerName = OptimizerName.adamw
    weight_decay: float = 0.01


OPTIMIZER_CONFIGS = {"sgd": SGDConfig, "adagrad": AdagradConfig, "rmsprop": RMSpropConfig,
                     "adam": AdamConfig, "adamw": AdamWConfig}


@dataclass
class ClipConfig:
    kind: ClipKind = ClipKind.none
    threshold: float = 1.0        # unused without clipping

    def __post_init__(self):
        check_number("clip.threshold", self.threshold, strict=True)


# ----- tasks (the generators' keyword arguments, plus `name`) -------------------------
class TaskName(StrEnum):
    sine = "sine"
    adding = "adding"
    copy = "copy"
    text = "text"
    series = "series"
    tsc = "tsc"


STREAM_TASKS = (TaskName.text, TaskName.sine, TaskName.series)  # one long sequence each


@dataclass
class SineConfig:
    name: TaskName = TaskName.sine
    length: int = 20              # window of past values
    n_points: int = 3000
    step: float = 0.1
    noise: float = 0.05
    seed: int = 0

    def __post_init__(self):
        _check_fields(self, "task", ints=("length",), numbers=("noise",))
        check_int("task.n_points", self.n_points, 10)
        check_number("task.step", self.step, strict=True)


@dataclass
class AddingConfig:
    name: TaskName = TaskName.adding
    length: int = 100             # sequence length T
    n_train: int = 10000
    n_val: int = 1000
    n_test: int = 1000
    seed: int = 0

    def __post_init__(self):
        check_int("task.length", self.length, 2)
        _check_fields(self, "task", ints=("n_train", "n_val", "n_test"))


@dataclass
class CopyConfig:
    name: TaskName = TaskName.copy
    length: int = 100             # the delay T between the symbols and the delimiter
    n_symbols: int = 8
    n_copy: int = 10
    n_train: int = 10000
    n_val: int = 1000
    n_test: int = 1000
    seed: int = 0

    def __post_init__(self):
        _check_fields(self, "task", ints=("length", "n_copy", "n_train", "n_val", "n_test"))
        check_int("task.n_symbols", self.n_symbols, 2)


@dataclass
class TextConfig:
    name: TaskName = TaskName.text
    path: Optional[str] = None    # a UTF-8 file; None: Python's pydoc topics
    length: int = 64
    max_chars: int = 200000

    def __post_init__(self):
        check_int("task.length", self.length)
        check_int("task.max_chars", self.max_chars, 10)
        if self.path is not None and not Path(self.path).is_file():
            raise ConfigError(f"task.path {self.path} is not a file (null uses Python's"
                              " pydoc topics)")


class SeriesName(StrEnum):
    sunspots = "sunspots"
    co2 = "co2"


class Difference(StrEnum):
    auto = "auto"        # when the training split fails the ADF stationarity test
    always = "always"
    never = "never"


@dataclass
class SeriesConfig:
    name: TaskName = TaskName.series
    dataset: SeriesName = SeriesName.sunspots   # statsmodels, offline
    path: Optional[str] = None    # a CSV file instead (then `column` names the series)
    column: Optional[str] = None
    length: int = 20
    difference: Difference = Difference.auto    # predict the change y_t - y_{t-1}

    def __post_init__(self):
        check_int("task.length", self.length)
        if self.path is not None:
            if not Path(self.path).is_file():
                raise ConfigError(f"task.path {self.path} is not a file (a CSV file, or null"
                                  " for task.dataset)")
            if self.column is None:
                raise ConfigError(f"task.column is needed with task.path {self.path}: the CSV"
                                  " column to forecast")


@dataclass
class TscConfig:
    name: TaskName = TaskName.tsc
    dataset: str = "JapaneseVowels"   # a UEA/UCR set shipped with sktime
    path: Optional[str] = None        # DIR/NAME for DIR/NAME_TRAIN.ts and DIR/NAME_TEST.ts
    length: Optional[int] = None      # cut sequences to at most this many steps (null: whole)
    val_fraction: float = 0.2         # of the training file, stratified
    seed: int = 0

    def __post_init__(self):
        if self.length is not None:
            check_int("task.length", self.length)
        check_number("task.val_fraction", self.val_fraction, strict=True, below=1.0)
        if self.path is None and self.dataset not in tsc_datasets():
            raise ConfigError(f"task.dataset {self.dataset!r} is not shipped with sktime:"
                              f" expected one of {', '.join(tsc_datasets())} (or task.path)")
        if self.path is not None:
            for part in ("TRAIN", "TEST"):
                if not Path(f"{self.path}_{part}.ts").is_file():
                    raise ConfigError(f"task.path {self.path}: {self.path}_{part}.ts is not a"
                                      " file (task.path is DIR/NAME for NAME_TRAIN.ts and"
                                      " NAME_TEST.ts in DIR)")


TASK_CONFIGS = {"sine": SineConfig, "adding": AddingConfig, "copy": CopyConfig,
                "text": TextConfig, "series": SeriesConfig, "tsc": TscConfig}


# ----- training, tracking, paths --------------------------------------------------------
@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 256
    diagnose_every: int = 1       # record dL/dh_t per step every this many epochs (and the last)
    keep_best: bool = True        # the model is the epoch with the lowest validation loss
    patience: int = 0             # stop after this many epochs without a new best (0: never)
    tbptt: int = 0                # text, sine, series: K > 0 reads the training split as
                                  # batch_size contiguous tracks, K steps at a time, state
                                  # carried (truncated BPTT); 0: windows

    def __post_init__(self):
        _check_fields(self, "train", ints=("epochs", "batch_size", "eval_batch_size",
                                           "diagnose_every"))
        check_int("train.patience", self.patience, 0)
        check_int("train.tbptt", self.tbptt, 0)


@dataclass
class TrackingConfig:
    experiment: str = "rnn-pipeline"  # MLflow experiment name


@dataclass
class PathsConfig:
    """Where `dvc repro` writes; dvc.yaml reads the same keys from params.yaml."""
    dataset: str = "data/dataset.npz"
    model: str = "data/model.npz"
    train: str = "data/train"
    metrics: str = "data/metrics.json"
    eval: str = "data/eval"
    checkpoint: str = "data/checkpoints/train.pkl"  # not a DVC output: it survives a rerun


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: Any = field(default_factory=AdamConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    task: Any = field(default_factory=SineConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    def __post_init__(self):
        check_int("seed", self.seed, 0)
        if self.train.tbptt and self.task.name not in STREAM_TASKS:
            raise ConfigError(f"train.tbptt applies to tasks {', '.join(map(str, STREAM_TASKS))}"
                              f" (one long sequence read as contiguous tracks), not task"
                              f" {self.task.name}, whose sequences are independent;"
                              f" set train.tbptt=0")
        if self.model.bidirectional and (self.train.tbptt or self.task.name == TaskName.text):
            why = "task text predicts" if self.task.name == TaskName.text else \
                "train.tbptt predicts"
            raise ConfigError(f"model.bidirectional cannot be used where {why} the next step"
                              f" at every step: the reverse direction would read the values"
                              f" it predicts; set model.bidirectional=false")


def plain(node):
    """A config as nested dicts of plain values (enums as their names, lists as lists)."""
    if dataclasses.is_dataclass(node):
        return {f.name: plain(getattr(node, f.name)) for f in dataclasses.fields(node)}
    if isinstance(node, dict):
        return {k: plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [plain(v) for v in node]
    return str(node) if isinstance(node, Enum) else node


def task_params(task_cfg):
    """The generator's keyword arguments of a task config (all keys but name)."""
    return {k: v for k, v in plain(task_cfg).items() if k != "name"}


def optimizer_params(opt_cfg):
    params = {k: v for k, v in plain(opt_cfg).items() if k != "name"}
    if "betas" in params:
        params["betas"] = tuple(params["betas"])
    return params
