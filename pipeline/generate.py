"""Stage `generate`: make the task's data set from params.yaml.

    python -m pipeline.generate [--params params.yaml]

Writes paths.dataset (an .npz with the splits and the data fingerprint).
"""
from . import cli, data
from .training.config import task_params


@cli.one_line_errors
def main(argv=None):
    args = cli.stage_arguments("generate", argv)
    cfg = cli.load_params_file(args.params)
    ds = data.make(str(cfg.task.name), **task_params(cfg.task))
    data.save(ds, cfg.paths.dataset)
    print(f"{cfg.task.name}: {ds.fingerprint} -> {cfg.paths.dataset}")


if __name__ == "__main__":
    cli.freeze_imports()
    main()
