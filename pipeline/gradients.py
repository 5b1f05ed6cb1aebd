"""Stage `gradients`: the gradient-flow study, ‖∂L/∂h_t‖ against the distance T - t.

    python -m pipeline.gradients [--out DIR] [gradients=NAME] [key=value ...]
    python -m pipeline.gradients --model data/model.npz

At initialisation, for every cell of conf/gradients/<NAME>.yaml (default: default)
over its seeds, on adding-task batches with the loss on the last step; the
RNN also with an orthogonal W_hh scaled to each rho. --model adds a trained
model, measured the same way on its own task (its config: --params).
Writes DIR (default reports/gradients): gradient_flow.csv, gradient_flow.png,
decay_rates.csv and decay_rates.md (slope of ln norm against distance).
"""
import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import cli, outputs, plots
from .analysis import gradflow
from .training.config import ConfigError

DEFAULT_OUT = "reports/gradients"


def settings(argv_settings):
    """Settings from conf/gradients/<NAME>.yaml and key=value overrides, checked."""
    name = "default"
    dotlist = []
    for arg in argv_settings:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"{arg!r} is not an override: expected key=value or gradients=NAME")
        if key == "gradients":
            name = value
        else:
            dotlist.append(arg)
    path = cli.conf_dir() / "gradients" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"gradients={name} is not an option: expected one of"
                          f" {', '.join(cli.group_options('gradients'))}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(gradflow.Settings), OmegaConf.load(path),
                                 OmegaConf.from_dotlist(dotlist))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{getattr(exc, 'full_key', None) or 'gradients'}:"
                          f" {str(exc).splitlines()[0]}") from None


def trained_rows(model_path, study):
    """The study's table for a trained model; its data set rebuilt from the config it carries."""
    from . import data
    from .training import bundle

    model, info = bundle.load(model_path)
    cfg = info["config"]
    task, m = cfg["task"], cfg["model"]
    ds = data.make(task["name"], **{k: v for k, v in task.items() if k != "name"})
    nl = m["nonlinearity"] if m["cell"] == "rnn" else gradflow.NO_NONLINEARITY
    label = f"trained {m['cell']}{' ' + nl if m['cell'] == 'rnn' else ''} ({task['name']})"
    return gradflow.study_trained(model, ds, study.batch_size, study.seeds, label,
                                  m["cell"], nl, m["init"])


def out_dir(text):
    out = Path(text)
    if out.exists() and not out.is_dir():
        cli.fail(f"--out {text} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        cli.fail(f"--out {text} cannot be made ({exc.strerror})")
    return out


@cli.one_line_errors
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.gradients")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the study (default {DEFAULT_OUT})")
    p.add_argument("--model", help="also a trained model file (model.npz; it carries its config)")
    p.add_argument("overrides", nargs="*", help="gradients=NAME (conf/gradients/) and key=value")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    study = settings(args.overrides)
    if args.model and not Path(args.model).is_file():
        cli.fail(f"--model {args.model} is not a file")
    out = out_dir(args.out)
    trained = trained_rows(args.model, study) if args.model else None
    probes = gradflow.probes(study.cells, study.nonlinearities, study.inits, study.rhos)
    table = gradflow.study(probes, study.length, study.batch_size, study.hidden_size,
                           study.seeds, study.dtype)
    if trained is not None:
        table = gradflow.concat(table, trained)
    rates = gradflow.decay_rates(table)
    outputs.write_csv(table, out / "gradient_flow.csv")
    outputs.write_csv(rates, out / "decay_rates.csv")
    (out / "decay_rates.md").write_text(rates.to_markdown(index=False, floatfmt=".4g") + "\n")
    plots.save(plots.gradient_flow(table), out / "gradient_flow.png")
    print(rates[["config", "slope_per_step", "factor_per_step", "ratio_at_50"]].to_string(
        index=False, float_format="{:.3g}".format))
    print(f"-> {out}/gradient_flow.csv, gradient_flow.png, decay_rates.csv, decay_rates.md")


if __name__ == "__main__":
    cli.freeze_imports()
    main()
