"""Training throughput on real sequences of different lengths: ours against PyTorch.

    python -m pipeline.bench.loop [--dataset JapaneseVowels] [--cell lstm] [--epochs 5]

The same data set (task tsc), model (H = 64, one layer, readout from h_n),
optimizer (Adam, lr 0.002), clipping (global norm 1) and batches (32, in the
same shuffled order) for `training.loop.fit` and for the PyTorch loop a user
would write: pack_padded_sequence(..., enforce_sorted=False), the module, a
linear readout of h_n, cross-entropy, backward, clip_grad_norm_, Adam. One
thread each; rounds interleave the two and each figure is a median. The time
counts the training steps only (validation excluded for both).
"""
import argparse
import statistics
import time

import numpy as np

from .. import data
from ..kernels.runtime import set_num_threads
from ..training.config import AdamConfig, ClipConfig, Config, ModelConfig, TrainConfig, TscConfig
from ..training.loop import fit

HIDDEN, BATCH, LR, CLIP = 64, 32, 0.002, 1.0


def ours(ds, cell, epochs, seed):
    cfg = Config(model=ModelConfig(cell=cell, hidden_size=HIDDEN), optimizer=AdamConfig(lr=LR),
                 clip=ClipConfig(kind="norm", threshold=CLIP), task=TscConfig(),
                 train=TrainConfig(epochs=epochs, batch_size=BATCH), seed=seed)
    result = fit(cfg, ds, progress=False)
    return result.metrics["wall_time_s"]


def torch_loop(torch, ds, cell, epochs, seed):
    """Seconds of PyTorch's training steps, batches drawn as fit draws them."""
    train = ds.splits["train"]
    x = torch.from_numpy(train["x"].astype(np.float32))
    y = torch.from_numpy(train["y"])
    lengths = torch.from_numpy(train["lengths"])
    torch.manual_seed(seed)
    rnn = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        ds.input_size, HIDDEN)
    head = torch.nn.Linear(HIDDEN, ds.output_size)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=LR)
    shuffle = np.random.default_rng([seed, 3])
    n = x.shape[1]
    seconds = 0.0
    for _ in range(epochs):
        order = shuffle.permutation(n)
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            idx = torch.from_numpy(order[start:start + BATCH])
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x[:, idx], lengths[idx], enforce_sorted=False)
            _, state = rnn(packed)
            h_n = state[0] if cell == "lstm" else state
            loss = torch.nn.functional.cross_entropy(head(h_n[-1]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP)
            opt.step()
        seconds += time.perf_counter() - t0
    return seconds


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.bench.loop", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="JapaneseVowels")
    p.add_argument("--cells", default="lstm,gru,rnn")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    set_num_threads(1)
    ds = data.make("tsc", dataset=args.dataset)
    n = ds.splits["train"]["x"].shape[1]
    lengths = ds.splits["train"]["lengths"]
    print(f"# {args.dataset}: {n} training sequences, lengths {lengths.min()}-{lengths.max()}"
          f" (mean {lengths.mean():.1f}), {ds.input_size} channels; H={HIDDEN}, batch {BATCH},"
          f" {args.epochs} epochs a round, one thread; median of {args.rounds} interleaved rounds")
    print("| cell | ours seq/s | torch seq/s | ours / torch time |")
    print("|---|---|---|---|")
    for cell in args.cells.split(","):
        ours(ds, cell, 1, 0)            # compile, or load from the cache
        times = {"ours": [], "torch": []}
        for r in range(args.rounds):
            for name in (("ours", "torch") if r % 2 == 0 else ("torch", "ours")):
                run = ours if name == "ours" else lambda *a: torch_loop(torch, *a)
                times[name].append(run(ds, cell, args.epochs, r))
        med = {k: statistics.median(v) for k, v in times.items()}
        rate = {k: n * args.epochs / v for k, v in med.items()}
        print(f"| {cell} | {rate['ours']:.0f} | {rate['torch']:.0f} |"
              f" {med['ours'] / med['torch']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
