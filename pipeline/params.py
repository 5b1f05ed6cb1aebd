"""Regenerate params.yaml from conf/, as `dvc exp run -S` does.

    python -m pipeline.params [override ...]      e.g. task=adding model.cell=gru

conf/ is the single source of truth; params.yaml is what DVC stages read.
This calls DVC's own composition (dvc.utils.hydra.compose_and_dump), so the
file is byte for byte what `dvc exp run` would write.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compose(output, overrides=()):
    from dvc.utils.hydra import compose_and_dump
    compose_and_dump(output, str(ROOT / "conf"), None, "config", str(ROOT), list(overrides))


def main(argv=None):
    from . import cli
    overrides = sys.argv[1:] if argv is None else argv
    cli.check_group_choices(overrides)
    compose(ROOT / "params.yaml", overrides)
    print(f"wrote {ROOT / 'params.yaml'}")


if __name__ == "__main__":
    main()
