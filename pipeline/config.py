"""The experiment's configuration schema, and its checks.

The dataclasses are the structured configs behind ``conf/`` (Hydra checks the
types) and the plain config object that ``training.fit`` takes. ``validate``
checks values and ranges, and names the key and what it allows, before any
work starts.
"""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import optim
from .nn import Recurrent


@dataclass
class ModelConfig:
    cell: str = "lstm"            # rnn | lstm | gru
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False
    nonlinearity: str = "tanh"    # rnn only: tanh | relu
    dropout: float = 0.0
    init: str = "uniform"         # uniform | orthogonal | forget_bias | irnn, joined with +
    dtype: str = "float32"        # float32 | float64
    embedding_dim: int = 16       # token tasks (copy, text) only


@dataclass
class SGDConfig:
    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False


@dataclass
class AdagradConfig:
    name: str = "adagrad"
    lr: float = 0.01
    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10


@dataclass
class RMSpropConfig:
    name: str = "rmsprop"
    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False


@dataclass
class AdamConfig:
    name: str = "adam"
    lr: float = 0.001
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False


@dataclass
class AdamWConfig(AdamConfig):
    name: str = "adamw"
    weight_decay: float = 0.01


OPTIMIZER_CONFIGS = {"sgd": SGDConfig, "adagrad": AdagradConfig, "rmsprop": RMSpropConfig,
                     "adam": AdamConfig, "adamw": AdamWConfig}

CLIP_KINDS = ("none", "norm", "value")


@dataclass
class ClipConfig:
    kind: str = "none"            # none | norm (global L2) | value (per entry)
    threshold: float = 1.0


@dataclass
class SineConfig:
    name: str = "sine"
    length: int = 20              # window of past values
    n_points: int = 3000
    step: float = 0.1
    noise: float = 0.05
    seed: int = 0


@dataclass
class AddingConfig:
    name: str = "adding"
    length: int = 100             # sequence length T
    n_train: int = 10000
    n_val: int = 1000
    n_test: int = 1000
    seed: int = 0


@dataclass
class CopyConfig:
    name: str = "copy"
    length: int = 100             # the delay T between the symbols and the delimiter
    n_symbols: int = 8
    n_copy: int = 10
    n_train: int = 10000
    n_val: int = 1000
    n_test: int = 1000
    seed: int = 0


@dataclass
class TextConfig:
    name: str = "text"
    path: Optional[str] = None    # a UTF-8 file; None: Python's pydoc topics
    length: int = 64
    max_chars: int = 200000


@dataclass
class SeriesConfig:
    name: str = "series"
    dataset: str = "sunspots"     # sunspots | co2 (statsmodels)
    length: int = 20


TASK_CONFIGS = {"sine": SineConfig, "adding": AddingConfig, "copy": CopyConfig,
                "text": TextConfig, "series": SeriesConfig}


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 256
    diagnose_every: int = 1       # record dL/dh_t per step every this many epochs (and the last)


@dataclass
class PathsConfig:
    """Where `dvc repro` writes; dvc.yaml reads the same keys from params.yaml."""
    dataset: str = "data/dataset.npz"
    model: str = "data/model.npz"
    train: str = "data/train"
    metrics: str = "data/metrics.json"
    eval: str = "data/eval"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: Any = field(default_factory=AdamConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    task: Any = field(default_factory=SineConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    experiment: str = "rnn"
    paths: PathsConfig = field(default_factory=PathsConfig)


class ConfigError(ValueError):
    """A config value is out of range; the message names the key."""


def from_node(node):
    """A checked ``Config`` from a composed config (OmegaConf node or dict).

    Types are checked against the dataclasses (the optimizer's and the task's
    own schema, chosen by their ``name``), then values by ``validate``. Any
    problem raises ConfigError with a one-line message naming the key.
    """
    if OmegaConf.is_config(node):
        node = OmegaConf.masked_copy(node, [k for k in node if k != "hydra"])
        raw = OmegaConf.to_container(node, resolve=True)
    else:
        raw = {k: v for k, v in dict(node).items() if k != "hydra"}
    choices = {}
    for group, table in (("optimizer", OPTIMIZER_CONFIGS), ("task", TASK_CONFIGS)):
        name = (raw.get(group) or {}).get("name")
        if name not in table:
            raise ConfigError(f"{group} must be one of {', '.join(table)}, got {name!r}")
        choices[group] = table[name]()
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config(**choices)), raw)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None
    validate(cfg)
    return cfg


def task_params(task_cfg):
    """The generator's keyword arguments of a task config (all keys but name)."""
    return {k: v for k, v in _items(task_cfg) if k != "name"}


def optimizer_params(opt_cfg):
    params = {k: v for k, v in _items(opt_cfg) if k != "name"}
    if "betas" in params:
        params["betas"] = tuple(params["betas"])
    return params


def _items(node):
    if dataclasses.is_dataclass(node):
        return dataclasses.asdict(node).items()
    return dict(node).items()


def _positive_int(key, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}")


def validate(cfg):
    """Check every value the run will use; raise ConfigError naming the first bad key."""
    m = cfg.model
    if m.dtype not in ("float32", "float64"):
        raise ConfigError(f"model.dtype must be one of float32, float64, got {m.dtype!r}")
    _positive_int("model.embedding_dim", m.embedding_dim)
    try:
        Recurrent(m.cell, 1, m.hidden_size, num_layers=m.num_layers,
                  bidirectional=m.bidirectional, nonlinearity=m.nonlinearity,
                  dropout=m.dropout, dtype=m.dtype, init=m.init)
    except ValueError as exc:
        raise ConfigError(f"model.{exc}") from None
    name = cfg.optimizer.name
    if name not in optim.OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(optim.OPTIMIZERS)}, got {name!r}")
    try:
        optim.OPTIMIZERS[name]({"w": np.zeros(1)}, **optimizer_params(cfg.optimizer))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"optimizer.{exc}") from None
    if cfg.clip.kind not in CLIP_KINDS:
        raise ConfigError(f"clip must be one of {', '.join(CLIP_KINDS)}, got {cfg.clip.kind!r}")
    if not (isinstance(cfg.clip.threshold, (int, float)) and cfg.clip.threshold > 0):
        raise ConfigError(f"clip.threshold must be a number > 0, got {cfg.clip.threshold!r}")
    if cfg.task.name not in TASK_CONFIGS:
        raise ConfigError(f"task must be one of {', '.join(TASK_CONFIGS)}, got {cfg.task.name!r}")
    _positive_int("task.length", cfg.task.length)
    path = getattr(cfg.task, "path", None)
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"task.path {path} is not a file (null uses Python's pydoc topics)")
    for key in ("epochs", "batch_size", "eval_batch_size", "diagnose_every"):
        _positive_int(f"train.{key}", getattr(cfg.train, key))
    _positive_int("seed", cfg.seed, 0)
