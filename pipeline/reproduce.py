"""Reproduce the classic results at full size and print a table.

    python -m pipeline.reproduce            # all rows, about 3 minutes on one core
    python -m pipeline.reproduce --only adding-lstm,sine

Each row is a preset of conf/experiment/ (the same config that
`python -m pipeline.train experiment=NAME` runs); what the literature says it
should show is the row's target here:
- the adding problem at T = 100 (Hochreiter & Schmidhuber 1997): LSTM and GRU
  reach test MSE < 0.01; a tanh RNN stays near the 0.167 of predicting 1;
- exploding gradients: a relu RNN with identity recurrent weights (IRNN) and
  SGD diverges without clipping; clipped at global norm 1 it trains;
- noisy sine: the predictions lie on the curve, test MSE near the noise
  variance 0.05^2/3;
- real data: JapaneseVowels classified at accuracy >= 0.95; CO2 and sunspots
  forecast better than persistence on the test split.
"""
import argparse
import time

from hydra import compose, initialize_config_dir

from . import cli, data
from .kernels.runtime import set_num_threads
from .training.config import task_params
from .training.loop import fit
from .training.scoring import score_test_split, stream_of

NOISE_VARIANCE = 0.05 ** 2 / 3
# preset -> (the target in words, whether a result meets it)
TARGETS = {
    "adding-lstm": ("test MSE < 0.01", lambda r, m: m["test_loss"] < 0.01),
    "adding-gru": ("test MSE < 0.01", lambda r, m: m["test_loss"] < 0.01),
    "adding-rnn": ("stays near 0.167 (> 0.1)", lambda r, m: m["test_loss"] > 0.1),
    "irnn-noclip": ("diverges", lambda r, m: r.outcome == "diverged"),
    "irnn-clip": ("trains: finite, test MSE < 0.167",
                  lambda r, m: r.outcome == "finished" and m["test_loss"] < 1 / 6),
    "sine": (f"test MSE < 1.5 x noise variance ({1.5 * NOISE_VARIANCE:.2e})",
             lambda r, m: m["test_loss"] < 1.5 * NOISE_VARIANCE),
    "tsc-japanesevowels": ("test accuracy >= 0.95", lambda r, m: m["test_accuracy"] >= 0.95),
    "series-co2": ("test MSE < persistence's",
                   lambda r, m: m["test_loss"] < m["baseline_persistence_mse"]),
    "series-sunspots": ("test MSE < persistence's",
                        lambda r, m: m["test_loss"] < m["baseline_persistence_mse"]),
}


def presets(names):
    """The checked Config of each named preset, composed from conf/ as the train app does."""
    with initialize_config_dir(str(cli.conf_dir()), version_base=None):
        return {name: cli.from_node(compose("config", overrides=[f"experiment={name}"]))
                for name in names}


def describe(cfg):
    m, o = cfg.model, cfg.optimizer
    clip = "none" if cfg.clip.kind == "none" else f"{cfg.clip.kind} {cfg.clip.threshold:g}"
    cell = m.cell if m.cell != "rnn" else f"rnn-{m.nonlinearity}" + (
        f" ({m.init})" if m.init != "uniform" else "")
    return (f"{cell} H={m.hidden_size}", f"{o.name} lr={o.lr:g}", clip,
            f"{cfg.task.name} " + (str(cfg.task.dataset) if hasattr(cfg.task, "dataset")
                                    else f"T={cfg.task.length}"),
            f"{cfg.train.epochs}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="comma-separated row names: " + ", ".join(TARGETS))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        p.error(f"unknown rows {', '.join(unknown)}: expected some of {', '.join(TARGETS)}")
    set_num_threads(args.threads)
    print("| row | model | optimizer | clip | task | epochs | outcome | test metric | baseline |"
          " target | holds | time (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    datasets, failures = {}, 0
    for name, cfg in presets(names).items():
        params = task_params(cfg.task)
        key = (str(cfg.task.name), repr(sorted(params.items())))
        if key not in datasets:
            datasets[key] = data.make(key[0], **params)
        t0 = time.perf_counter()
        result = fit(cfg, datasets[key], progress=False)
        seconds = time.perf_counter() - t0
        metrics, _ = score_test_split(result.model, datasets[key], cfg.train.eval_batch_size,
                                      stream_of(cfg.train))
        target, holds = TARGETS[name]
        ok = holds(result, metrics)
        failures += not ok
        outcome = result.outcome if result.outcome == "finished" else \
            f"diverged (epoch {result.diverged_at['epoch']}, step {result.diverged_at['step']})"
        metric = next(f"{k.removeprefix('test_')} {v:.3g}" for k, v in metrics.items()
                      if k in ("test_accuracy", "test_mse"))
        best = "baseline_majority_accuracy" if "test_accuracy" in metrics and \
            "baseline_majority_accuracy" in metrics else datasets[key].baseline_name
        baseline = f"{best.removeprefix('baseline_')} {metrics[best]:.3g}"
        print(f"| {name} | " + " | ".join(describe(cfg)) + f" | {outcome} | {metric} |"
              f" {baseline} | {target} | {'yes' if ok else 'NO'} | {seconds:.1f} |", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    cli.freeze_imports()
    raise SystemExit(main())
