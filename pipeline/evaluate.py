"""Stage `evaluate`: test metrics and predictions of the trained model.

    python -m pipeline.evaluate [--params params.yaml]

Reads paths.dataset and paths.model; writes paths.metrics and, under
paths.eval, predictions.csv and predictions.png.
"""
from . import cli, experiment, outputs, tasks


@cli.one_line_errors
def main(argv=None):
    args = cli.stage_arguments("evaluate", argv)
    cfg = cli.load_params_file(args.params)
    data = tasks.load(cfg.paths.dataset, made_by=experiment.GENERATE)
    params = outputs.load_params(cfg.paths.model, made_by=experiment.TRAIN)
    metrics = experiment.evaluate(cfg, data, params, cfg.paths.eval, cfg.paths.metrics)
    print(" ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
