"""Reproduce the classic results at full size and print a table.

    python -m pipeline.reproduce            # all rows, about 3 minutes on one core
    python -m pipeline.reproduce --only adding-lstm,sine

- The adding problem at T = 100 (Hochreiter & Schmidhuber 1997): LSTM and GRU
  reach test MSE < 0.01; a tanh RNN stays near the 0.167 of predicting 1.
- Exploding gradients: a relu RNN with identity recurrent weights (IRNN) and
  SGD diverges without clipping; clipped at global norm 1 it trains.
- Noisy sine: the predictions lie on the curve, test MSE near the noise
  variance 0.05^2/3.
"""
import argparse
import dataclasses
import time

from . import tasks, threads, training
from .config import (AdamConfig, AddingConfig, ClipConfig, Config, ModelConfig, SGDConfig,
                     SineConfig, TrainConfig)

ADDING = AddingConfig(length=100)
ADDING_SHORT = AddingConfig(length=50)
SINE = SineConfig(length=50, n_points=6000)
NORM1 = ClipConfig(kind="norm", threshold=1.0)


@dataclasses.dataclass
class Row:
    name: str
    cfg: Config
    target: str
    holds: callable  # Result -> bool


def _adding(cell):
    return Config(model=ModelConfig(cell=cell, hidden_size=64), optimizer=AdamConfig(lr=0.002),
                  clip=NORM1, task=ADDING, train=TrainConfig(epochs=15, batch_size=32))


def _irnn(clip):
    return Config(model=ModelConfig(cell="rnn", nonlinearity="relu", init="irnn", hidden_size=64),
                  optimizer=SGDConfig(lr=0.01, momentum=0.9), clip=clip, task=ADDING_SHORT,
                  train=TrainConfig(epochs=20, batch_size=32))


NOISE_VARIANCE = SINE.noise ** 2 / 3

ROWS = [
    Row("adding-lstm", _adding("lstm"), "test MSE < 0.01",
        lambda r: r.metrics["test_loss"] < 0.01),
    Row("adding-gru", _adding("gru"), "test MSE < 0.01",
        lambda r: r.metrics["test_loss"] < 0.01),
    Row("adding-rnn", _adding("rnn"), "stays near 0.167 (> 0.1)",
        lambda r: r.metrics["test_loss"] > 0.1),
    Row("irnn-noclip", _irnn(ClipConfig()), "diverges",
        lambda r: r.outcome == "diverged"),
    Row("irnn-clip", _irnn(NORM1), "trains: finite, test MSE < 0.167",
        lambda r: r.outcome == "finished" and r.metrics["test_loss"] < 1 / 6),
    Row("sine", Config(model=ModelConfig(cell="lstm", hidden_size=32),
                       optimizer=AdamConfig(lr=0.001), task=SINE,
                       train=TrainConfig(epochs=40, batch_size=64)),
        f"test MSE < 1.5 x noise variance ({1.5 * NOISE_VARIANCE:.2e})",
        lambda r: r.metrics["test_loss"] < 1.5 * NOISE_VARIANCE),
]


def describe(cfg):
    m, o = cfg.model, cfg.optimizer
    clip = "none" if cfg.clip.kind == "none" else f"{cfg.clip.kind} {cfg.clip.threshold:g}"
    cell = m.cell if m.cell != "rnn" else f"rnn-{m.nonlinearity}" + (
        f" ({m.init})" if m.init != "uniform" else "")
    return (f"{cell} H={m.hidden_size}", f"{o.name} lr={o.lr:g}", clip,
            f"{cfg.task.name} T={cfg.task.length}", f"{cfg.train.epochs}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="comma-separated row names: " + ", ".join(r.name for r in ROWS))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    rows = ROWS
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - {r.name for r in ROWS}
        if unknown:
            p.error(f"unknown rows {', '.join(sorted(unknown))}: expected some of"
                    f" {', '.join(r.name for r in ROWS)}")
        rows = [r for r in ROWS if r.name in names]
    threads.set_num_threads(args.threads)
    print("| row | model | optimizer | clip | task | epochs | outcome | test MSE | target |"
          " holds | time (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cache = {}
    failures = 0
    for row in rows:
        task = row.cfg.task
        key = (task.name, tuple(sorted(dataclasses.asdict(task).items())))
        if key not in cache:
            cache[key] = tasks.make(task.name, **{k: v for k, v in dataclasses.asdict(task).items()
                                                  if k != "name"})
        t0 = time.perf_counter()
        result = training.fit(row.cfg, cache[key], progress=False)
        seconds = time.perf_counter() - t0
        ok = row.holds(result)
        failures += not ok
        outcome = result.outcome if result.outcome == "finished" else \
            f"diverged (epoch {result.diverged_at['epoch']}, step {result.diverged_at['step']})"
        print(f"| {row.name} | " + " | ".join(describe(row.cfg)) +
              f" | {outcome} | {result.metrics['test_loss']:.3g} | {row.target} |"
              f" {'yes' if ok else 'NO'} | {seconds:.1f} |", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
