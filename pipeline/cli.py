"""What the entry points share: the project root, arguments, the params file, one-line errors."""
import argparse
import functools
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .data import DataError, TaskError
from .faults import Stopped, stop_on_signals
from .training.bundle import BundleError
from .training.checkpoint import CheckpointError
from .training.config import OPTIMIZER_CONFIGS, TASK_CONFIGS, Config, ConfigError

PACKAGE_PARENT = Path(__file__).resolve().parent.parent
GROUPS = ("optimizer", "clip", "task", "experiment", "debug")
# OSError covers a place that cannot be written (outputs.OutputError) and missing files.
EXPECTED_ERRORS = (ConfigError, OSError, DataError, TaskError, CheckpointError, BundleError)


def project_root():
    """The project a command works in: the nearest folder up from here with dvc.yaml and conf/.

    Inside DVC's temporary experiment copies (.dvc/tmp/exps/...) it is the
    repository that queued them; outside any project, this package's checkout.
    """
    cwd = Path.cwd().resolve()
    head, sep, _ = cwd.as_posix().partition("/.dvc/tmp/exps/")
    if sep:
        return Path(head)
    for path in (cwd, *cwd.parents):
        if (path / "dvc.yaml").is_file() and (path / "conf").is_dir():
            return path
    return PACKAGE_PARENT


def conf_dir():
    return project_root() / "conf"


def freeze_imports():
    """Move everything loaded so far (modules, their functions and classes: hundreds of
    thousands of objects with MLflow, pandas and Hydra) out of the garbage collector's
    reach, and collect from now on (an entry point may hold collections off while it
    imports: imports make no garbage, and each collection would scan them all). They live
    as long as the process, so collections stop scanning them, and the process exits
    about 0.4 s sooner. Called by entry points once their imports are done."""
    import gc

    gc.freeze()
    gc.enable()


def fail(message):
    """Print one line to stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def stopped(stop):
    """Say in one line that a signal stopped the command and how to resume; exit 128 + n."""
    after = "" if stop.last_epoch is None else f" after epoch {stop.last_epoch}"
    print(f"stopped by {stop.name}{after}: run the same command to resume from the last"
          " checkpoint", file=sys.stderr)
    raise SystemExit(stop.exit_code())


def one_line_errors(main):
    """Run main with signals stopping it cleanly; a config or data problem or a signal
    becomes a one-line message, not a traceback."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            with stop_on_signals():
                return main(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            fail(str(exc).splitlines()[0])
        except Stopped as stop:
            stopped(stop)
    return wrapper


def stage_arguments(stage, argv=None):
    p = argparse.ArgumentParser(prog=f"python -m pipeline.{stage}")
    p.add_argument("--params", default="params.yaml",
                   help="the composed config (default: params.yaml, generated from conf/)")
    return p.parse_args(argv)


def _one_line(exc):
    """OmegaConf's message, first line, with an enum's choices said the way ours are."""
    text = str(exc).splitlines()[0]
    if text.startswith("Invalid value '") and "expected one of [" in text:
        value = text[len("Invalid value '"):text.index("', expected")]
        choices = text[text.index("[") + 1:text.rindex("]")]
        return f"must be one of {choices}, got {value!r}"
    return text


def from_node(node):
    """A checked ``Config`` from a composed config (OmegaConf node or dict).

    OmegaConf checks the types against the schemas (the optimizer's and the
    task's own, chosen by their ``name``), the schemas check the ranges; the
    ``hydra`` node, if any, is left out. Raises ConfigError naming the key.
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
        schema = OmegaConf.structured(Config(**choices))
        return OmegaConf.to_object(OmegaConf.merge(schema, raw))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        message = _one_line(exc)
        raise ConfigError(f"{key} {message}" if message.startswith("must") else
                          f"{key}: {message}") from None


def load_params_file(path):
    """A checked Config from a composed YAML file such as params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} is missing: regenerate it with"
                                " `python -m pipeline.params`")
    return from_node(OmegaConf.load(path))


def group_options(group):
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def check_group_choices(argv):
    """Catch `optimizer=foo` before Hydra does, with one line naming the allowed values."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in GROUPS:
            continue
        options = group_options(key)
        for choice in value.split(","):
            if choice.strip() not in options:
                fail(f"{key}={choice.strip()} is not an option: expected one of"
                     f" {', '.join(options)}")
