"""DVC's plots as PNG files, offline: the Vega-Lite specs of `dvc plots show --json`
rendered with vl-convert (no browser, no CDN).

    python -m pipeline.figures [--out dvc_plots/png] [--only NAME ...]

Every plot of dvc.yaml (templates in .dvc/plots/) becomes DIR/<name>.png, the
name made from the plot's id (slashes become "__"). The README's gradient-flow
figure is rendered this way, from the same spec `dvc plots show` draws.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import cli

WIDTH, HEIGHT = 560, 320   # pixels, for specs whose size is "container"
SCALE = 1.0


def specs():
    """{plot id: Vega-Lite spec} of the workspace's plots, from `dvc plots show --json`."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    proc = subprocess.run([dvc, "plots", "show", "--json"], cwd=cli.project_root(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        cli.fail(f"`dvc plots show --json` failed: {(proc.stderr.strip() or 'no output').splitlines()[-1]}")
    found = {}
    for name, entries in json.loads(proc.stdout).get("data", {}).items():
        for entry in entries:
            if entry.get("type") == "vega":
                found[name] = entry["content"]
    return found


def sized(spec):
    """The spec with a fixed width and height where DVC left them to the page."""
    spec = dict(spec)
    for key, value in (("width", WIDTH), ("height", HEIGHT)):
        if not isinstance(spec.get(key), (int, float)):
            spec[key] = value
    return spec


def file_name(plot_id):
    return re.sub(r"[^\w.-]+", "_", plot_id.replace("/", "__")).strip("_") + ".png"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.figures")
    p.add_argument("--out", default="dvc_plots/png", help="folder for the PNGs")
    p.add_argument("--only", nargs="*", help="plot ids to render (default: all)")
    p.add_argument("--scale", type=float, default=SCALE, help="pixel scale (default 1)")
    args = p.parse_args(argv)
    try:
        import vl_convert
    except ImportError:
        cli.fail("vl-convert-python is missing: pip install -e '.[study]'")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        cli.fail(f"--out {args.out} is a file, not a folder")
    found = specs()
    wanted = args.only or list(found)
    unknown = [w for w in wanted if w not in found]
    if unknown:
        cli.fail(f"--only {unknown[0]} is not a plot: expected one of {', '.join(found)}")
    out.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        path = out / file_name(name)
        path.write_bytes(vl_convert.vegalite_to_png(sized(found[name]), scale=args.scale))
        print(f"{name} -> {path}")


if __name__ == "__main__":
    cli.freeze_imports()
    main()
