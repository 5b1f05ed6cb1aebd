"""Bench rows on sequences of different lengths: ours on the packed rows against ours on
the padded batch and torch on a PackedSequence."""
import numpy as np

from .peers import import_torch, set_threads, twins
from .timing import measure

# (B, T, D, H, layers, bidirectional, shortest): lengths uniform in [shortest, T]
RAGGED = {
    "v2": (64, 30, 64, 128, 2, False, 5),
    "v4": (64, 30, 64, 128, 2, True, 5),
}
RAGGED_PEERS = ("torch packed", "ours packed", "ours padded")


def ragged_runners(cell, config, dtype, torch):
    """Forward + backward of one batch of sequences of different lengths: ours on the
    packed rows, ours on the whole padded batch, and torch on a PackedSequence."""
    B, T, D, H, layers, bidirectional, shortest = config
    lengths = np.random.default_rng(4).integers(shortest, T + 1, B)
    layer, module, x, xt = twins(cell, config, dtype, torch)
    dy = np.ones((T, B, layer.dirs * H), dtype)
    packed_lengths = torch.from_numpy(lengths)
    pack, pad = torch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pad_packed_sequence

    def ours(lengths):
        layer.forward(x, training=True, lengths=lengths)
        layer.backward(dy)

    def torch_packed():
        module.zero_grad(set_to_none=True)
        xt.grad = None
        y, _ = module(pack(xt, packed_lengths, enforce_sorted=False))
        pad(y, total_length=T)[0].sum().backward()

    return {"torch packed": torch_packed, "ours packed": lambda: ours(lengths),
            "ours padded": lambda: ours(None)}, lengths


def run_ragged(args):
    """Variable-length batches: ours with lengths against ours padded and torch packed."""
    torch = import_torch()
    print("| threads | dtype | cell | config | valid steps | torch packed ms | ours packed ms |"
          " ours padded ms | ours packed/torch packed | ours packed/padded | reps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for nthreads in args.threads:
        set_threads(nthreads, torch)
        for dtype in args.dtypes:
            for cell in args.cells:
                for name in args.ragged_configs:
                    runners, lengths = ragged_runners(cell, RAGGED[name], np.dtype(dtype).type,
                                                       torch)
                    med, _, n = measure(runners, args.reps, args.budget)
                    valid = lengths.sum() / lengths.size / RAGGED[name][1]
                    row = dict(threads=nthreads, dtype=dtype, cell=cell, config=name,
                               valid=valid, **{f"{k}_ms": med[k] * 1e3 for k in RAGGED_PEERS},
                               reps=n)
                    rows.append(row)
                    print(f"| {nthreads} | {dtype} | {cell} | {name} | {valid:.0%} |"
                          f" {row['torch packed_ms']:.2f} | {row['ours packed_ms']:.2f} |"
                          f" {row['ours padded_ms']:.2f} |"
                          f" {med['ours packed'] / med['torch packed']:.2f} |"
                          f" {med['ours packed'] / med['ours padded']:.2f} | {n} |", flush=True)
    return rows
