"""Sample text from a trained character-level language model.

    python -m pipeline.sample --model PATH [--prime TEXT] [--length N] [--temperature T] [--seed S]

PATH: a model file of task text (data/model.npz after `dvc repro` with task=text,
or model.npz in a Hydra run's folder). Prints the prime and what follows it;
the same seed gives the same text.
"""
import argparse

from . import cli
from .inference.sampling import sample
from .training import bundle


@cli.one_line_errors
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a trained text model (model.npz)")
    p.add_argument("--prime", default=None,
                   help="text to start from (default: a newline, or a space if the model has none)")
    p.add_argument("--length", type=int, default=500, help="characters to generate")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="> 0; below 1 more likely, above 1 more varied text")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name, ok, want in (("length", args.length >= 0, "an integer >= 0"),
                           ("temperature", args.temperature > 0, "a number > 0")):
        if not ok:
            cli.fail(f"--{name} must be {want}, got {getattr(args, name)!r}")
    model, info = bundle.load(args.model)
    if info["data"]["task"] != "text":
        cli.fail(f"--model {args.model} is a model of task {info['data']['task']!r}:"
                 " sampling needs a model of task text")
    try:
        text = sample(model, info["data"]["meta"]["vocab"], args.prime, args.length,
                      args.temperature, args.seed)
    except ValueError as exc:
        cli.fail(f"--{exc}")
    print((args.prime or "") + text)


if __name__ == "__main__":
    cli.freeze_imports()
    main()
