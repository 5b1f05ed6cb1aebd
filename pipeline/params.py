"""Regenerate params.yaml from conf/, as `dvc exp run -S` does.

    python -m pipeline.params [override ...]      e.g. task=adding model.cell=gru

conf/ is the single source of truth; params.yaml is what DVC stages read.
This calls DVC's own composition (dvc.utils.hydra.compose_and_dump), so the
file is byte for byte what `dvc exp run` would write.
"""
import sys

from . import cli


def compose(output, overrides=(), root=None):
    """Compose <root>/conf with overrides into output, exactly as DVC does."""
    from dvc.utils.hydra import compose_and_dump
    root = root or cli.project_root()
    compose_and_dump(output, str(root / "conf"), None, "config", str(root), list(overrides))


def main(argv=None):
    overrides = sys.argv[1:] if argv is None else argv
    cli.check_group_choices(overrides)
    out = cli.project_root() / "params.yaml"
    compose(out, overrides)
    print(f"wrote {out}")


if __name__ == "__main__":
    cli.freeze_imports()
    main()
