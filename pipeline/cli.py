"""What the entry points share: arguments, the params file, one-line errors."""
import argparse
import functools
import sys
from pathlib import Path

from omegaconf import OmegaConf

from . import config, tasks

CONF = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("optimizer", "clip", "task")
EXPECTED_ERRORS = (config.ConfigError, FileNotFoundError, tasks.DataError, tasks.TaskError)


def fail(message):
    """Print one line to stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def one_line_errors(main):
    """Run main; a config or data problem becomes a one-line message, not a traceback."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            fail(str(exc).splitlines()[0])
    return wrapper


def stage_arguments(stage, argv=None):
    p = argparse.ArgumentParser(prog=f"python -m pipeline.{stage}")
    p.add_argument("--params", default="params.yaml",
                   help="the composed config (default: params.yaml, generated from conf/)")
    return p.parse_args(argv)


def load_params_file(path):
    """A checked Config from a composed YAML file such as params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} is missing: regenerate it with"
                                " `python -m pipeline.params`")
    return config.from_node(OmegaConf.load(path))


def group_options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


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
