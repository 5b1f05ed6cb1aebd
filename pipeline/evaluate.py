"""Stage `evaluate`: test metrics and predictions of the trained model.

    python -m pipeline.evaluate [--params params.yaml]

Reads paths.dataset and paths.model; writes paths.metrics and, under
paths.eval, predictions.csv and predictions.png. The metrics also go to the
MLflow run of the `train` stage that made this model (found by its hash).
"""
from . import cli, data, experiment, outputs, tracking
from .training import bundle


@cli.one_line_errors
def main(argv=None):
    args = cli.stage_arguments("evaluate", argv)
    cfg = cli.load_params_file(args.params)
    ds = data.load(cfg.paths.dataset, made_by=experiment.GENERATE)
    model, _ = bundle.load(cfg.paths.model, made_by=experiment.TRAIN)
    run = tracking.find_run(cfg.tracking.experiment, {
        "source": "dvc repro", "model_sha256": outputs.file_sha256(cfg.paths.model)})
    metrics = experiment.evaluate(cfg, ds, model, cfg.paths.eval, cfg.paths.metrics, run)
    print(" ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


if __name__ == "__main__":
    cli.freeze_imports()
    main()
