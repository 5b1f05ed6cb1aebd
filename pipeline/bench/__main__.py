"""Benchmark: forward + backward of ours, PyTorch CPU and a per-step NumPy stack.

    python -m pipeline.bench                    # the issue's table, 1 then 2 threads
    python -m pipeline.bench --startup          # import-to-first-step time, cold and warm
    python -m pipeline.bench --ragged           # sequences of different lengths (packed)

The three run interleaved in one process (the order rotates every round) and
each figure is a median. Loss = sum of the outputs, zero initial state, and
x requires grad in PyTorch, so all three compute the same gradients.
GFLOP/s counts the GEMM work of forward and backward, 6 T B G (D + H) per
layer and direction, for all three alike.

Two bounds sit beside them, to tell the cost of the work from the cost of the
code. "GEMMs ms" runs only the matrix products every implementation of these
layers has to do, at our shapes, on NumPy's BLAS (interleaved like the rest;
no gate math, no memory traffic between them). "peak bound" is the time of
all those FLOPs at this machine's peak, a square GEMM measured in the same
process (GF/s in the header), as a fraction of PyTorch's time: no
implementation doing this work can reach a ratio below it.

OpenBLAS reads OPENBLAS_CORETYPE once at load; the table header says which
kernel it chose. To measure with the CPU's own kernels, unset the variables
in the command only:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pipeline.bench
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
from ..kernels import runtime as threads
from ..nn.recurrent import Recurrent
from ..nn.spec import GATES
from . import reference

# (B, T, D, H, layers, bidirectional)
CONFIGS = {
    "c1": (32, 100, 1, 32, 1, False),
    "c2": (32, 100, 64, 128, 2, False),
    "c3": (64, 50, 128, 512, 1, False),
    "c4": (32, 100, 64, 128, 2, True),
}
# (B, T, D, H, layers, bidirectional, shortest): lengths uniform in [shortest, T]
RAGGED = {
    "v2": (64, 30, 64, 128, 2, False, 5),
    "v4": (64, 30, 64, 128, 2, True, 5),
}
CELLS = ("lstm", "gru", "rnn")
PEERS = ("torch", "numpy", "ours", "gemms")
RAGGED_PEERS = ("torch packed", "ours packed", "ours padded")
PEAK_N = 2048  # the square GEMM that measures the machine's peak


def gemm_flops(cell, B, T, D, H, layers, bidirectional):
    """GEMM FLOPs of forward + backward: per layer and direction 6 T B G (D_in + H)."""
    dirs = 2 if bidirectional else 1
    G = GATES[cell] * H
    return sum(dirs * 6 * T * B * G * ((D if k == 0 else dirs * H) + H) for k in range(layers))


def _import_torch():
    try:
        import torch
    except ImportError:
        sys.exit("the benchmark compares with PyTorch: pip install torch==2.13.0"
                 " (or pip install -e '.[test]')")
    return torch


def _twins(cell, config, dtype, torch):
    """Our layer and a torch module with the same weights, an input x and its torch copy."""
    B, T, D, H, layers, bidirectional = config[:6]
    layer = Recurrent(cell, D, H, num_layers=layers, bidirectional=bidirectional,
                      dtype=dtype, seed=0)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        D, H, num_layers=layers, bidirectional=bidirectional).to(tdtype)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(layer.params[name]))
    x = np.random.default_rng(1).standard_normal((T, B, D)).astype(dtype)
    return layer, module, x, torch.from_numpy(x.copy()).requires_grad_()


def _runners(cell, config, dtype, torch):
    """Closures doing forward + backward on the same weights and input (and the GEMMs alone)."""
    B, T, D, H, layers, bidirectional = config
    layer, module, x, xt = _twins(cell, config, dtype, torch)
    dy = np.ones((T, B, layer.dirs * H), dtype)

    def ours():
        layer.forward(x, training=True)
        layer.backward(dy)

    def torch_run():
        module.zero_grad(set_to_none=True)
        xt.grad = None
        y, _ = module(xt)
        y.sum().backward()

    def numpy_run():
        y, tape = reference.forward(layer.params, cell, x, layers, bidirectional)
        reference.backward(layer.params, cell, dy, tape, layers, bidirectional)

    return {"torch": torch_run, "numpy": numpy_run, "ours": ours,
            "gemms": _gemms_only(cell, config, dtype)}


def _gemms_only(cell, config, dtype):
    """A closure doing only the GEMMs of forward + backward, at our layer's shapes.

    Per layer and direction: the input projection, one product per step
    forward and one back, dx, dW_ih and dW_hh (NumPy's BLAS, preallocated).
    """
    B, T, D, H, layers, bidirectional = config
    dirs = 2 if bidirectional else 1
    G = GATES[cell] * H
    rng = np.random.default_rng(2)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    work = []
    for k in range(layers):
        n_in = D if k == 0 else dirs * H
        for _ in range(dirs):
            work.append(dict(x=a(T * B, n_in), w_ih=a(G, n_in), w_hh=a(G, H), h=a(B, H),
                             hs=a(T * B, H), da=a(T * B, G), gates=a(B, G), dh=a(B, H),
                             dx=a(T * B, n_in), dw_ih=a(G, n_in), dw_hh=a(G, H),
                             proj=a(T * B, G)))

    def run():
        for w in work:
            np.matmul(w["x"], w["w_ih"].T, out=w["proj"])
            for t in range(T):
                np.matmul(w["h"], w["w_hh"].T, out=w["gates"])
            for t in range(T):
                np.matmul(w["da"][t * B:(t + 1) * B], w["w_hh"], out=w["dh"])
            np.matmul(w["da"], w["w_ih"], out=w["dx"])
            np.matmul(w["da"].T, w["x"], out=w["dw_ih"])
            np.matmul(w["da"].T, w["hs"], out=w["dw_hh"])
    return run


def peak_gflops(dtype, reps=5):
    """GF/s of a PEAK_N-square GEMM on NumPy's BLAS: the machine's practical peak."""
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((PEAK_N, PEAK_N)).astype(dtype) for _ in range(2))
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = statistics.median(_time(lambda: np.matmul(a, b, out=out)) for _ in range(reps))
    return 2 * PEAK_N ** 3 / best / 1e9


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(runners, reps, budget):
    """Median seconds per peer over interleaved rounds (order rotates each round)."""
    for fn in runners.values():
        fn()  # warm-up: compile, allocate, fill caches
    peers = tuple(runners)
    times = {k: [] for k in runners}
    start = time.perf_counter()
    for r in range(reps):
        for k in peers[r % len(peers):] + peers[:r % len(peers)]:
            times[k].append(_time(runners[k]))
        if r >= 2 and time.perf_counter() - start > budget:
            break
    return {k: statistics.median(v) for k, v in times.items()}, r + 1


def _ragged_runners(cell, config, dtype, torch):
    """Forward + backward of one batch of sequences of different lengths: ours on the
    packed rows, ours on the whole padded batch, and torch on a PackedSequence."""
    B, T, D, H, layers, bidirectional, shortest = config
    lengths = np.random.default_rng(4).integers(shortest, T + 1, B)
    layer, module, x, xt = _twins(cell, config, dtype, torch)
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
    torch = _import_torch()
    print("| threads | dtype | cell | config | valid steps | torch packed ms | ours packed ms |"
          " ours padded ms | ours packed/torch packed | ours packed/padded | reps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for nthreads in args.threads:
        set_threads(nthreads, torch)
        for dtype in args.dtypes:
            for cell in args.cells:
                for name in args.ragged_configs:
                    runners, lengths = _ragged_runners(cell, RAGGED[name], np.dtype(dtype).type,
                                                       torch)
                    med, n = measure(runners, args.reps, args.budget)
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


def set_threads(n, torch):
    torch.set_num_threads(n)
    threads.set_num_threads(n)


def run_table(args):
    torch = _import_torch()
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores;"
          f" BLAS: {threads.blas_info()};"
          f" OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')};"
          f" numba {numba.__version__} ({numba.config.THREADING_LAYER} layer); torch {torch.__version__}")
    print("| threads | dtype | cell | config | torch ms | numpy ms | ours ms | ours GF/s |"
          " ours/torch | numpy/ours | GEMMs ms | peak bound | reps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for nthreads in args.threads:
        set_threads(nthreads, torch)
        for dtype in args.dtypes:
            peak = peak_gflops(np.dtype(dtype).type)
            print(f"# {nthreads} thread(s), {dtype}: peak {peak:.1f} GF/s"
                  f" ({PEAK_N}-square GEMM, NumPy's BLAS)", flush=True)
            for cell in args.cells:
                for name in args.configs:
                    config = CONFIGS[name]
                    runners = _runners(cell, config, np.dtype(dtype).type, torch)
                    med, n = measure(runners, args.reps, args.budget)
                    if cell == args.cells[0] and name == args.configs[0]:
                        print(f"# {nthreads} thread(s): BLAS {threads.blas_info()},"
                              f" numba {numba.get_num_threads()}, torch {torch.get_num_threads()}")
                    flops = gemm_flops(cell, *config)
                    row = dict(threads=nthreads, dtype=dtype, cell=cell, config=name,
                               **{f"{k}_ms": med[k] * 1e3 for k in PEERS},
                               ours_gflops=flops / med["ours"] / 1e9,
                               ratio_torch=med["ours"] / med["torch"],
                               speedup_numpy=med["numpy"] / med["ours"],
                               peak_bound=flops / (peak * 1e9) / med["torch"], reps=n)
                    rows.append(row)
                    print(f"| {nthreads} | {dtype} | {cell} | {name} | {row['torch_ms']:.2f} |"
                          f" {row['numpy_ms']:.2f} | {row['ours_ms']:.2f} |"
                          f" {row['ours_gflops']:.1f} | {row['ratio_torch']:.2f} |"
                          f" {row['speedup_numpy']:.2f} | {row['gemms_ms']:.2f} |"
                          f" {row['peak_bound']:.2f} | {n} |", flush=True)
    return rows


STARTUP_SCRIPT = """
import time
t0 = time.perf_counter()
import numpy as np
from pipeline.nn import Recurrent
t1 = time.perf_counter()
layer = Recurrent({cell!r}, 8, 16, dtype=np.{dtype})
x = np.zeros((5, 4, 8), np.{dtype})
y, _ = layer.forward(x, training=True)
layer.backward(np.ones_like(y))
t2 = time.perf_counter()
print(t1 - t0, t2 - t0)
"""


def run_startup(args):
    """Seconds from `import pipeline.nn` to one finished forward + backward, per cell."""
    print("| cell | dtype | cold: compile to first step (s) | warm: import to first step (s) |")
    print("|---|---|---|---|")
    for cell in args.cells:
        for dtype in args.dtypes:
            # An empty cache per row: nothing compiled for another cell or dtype is reused.
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache)
                code = STARTUP_SCRIPT.format(cell=cell, dtype=dtype)
                out = [subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                      capture_output=True, text=True).stdout.split()
                       for _ in range(2)]
                print(f"| {cell} | {dtype} | {float(out[0][1]):.1f} | {float(out[1][1]):.2f} |",
                      flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    p.add_argument("--dtypes", type=lambda s: s.split(","), default=["float32", "float64"])
    p.add_argument("--cells", type=lambda s: s.split(","), default=list(CELLS))
    p.add_argument("--configs", type=lambda s: s.split(","), default=list(CONFIGS))
    p.add_argument("--reps", type=int, default=9, help="rounds per row (default 9)")
    p.add_argument("--budget", type=float, default=20.0,
                   help="stop a row's rounds after this many seconds (at least 3 rounds)")
    p.add_argument("--startup", action="store_true",
                   help="measure cold compile and warm start-up instead")
    p.add_argument("--ragged", action="store_true",
                   help="measure batches of different lengths instead: "
                        + "; ".join(f"{k} = (B, T, D, H, layers, bi, shortest) {v}"
                                    for k, v in RAGGED.items()))
    p.add_argument("--ragged-configs", type=lambda s: s.split(","), default=list(RAGGED))
    args = p.parse_args(argv)
    for name in args.configs:
        if name not in CONFIGS:
            p.error(f"unknown config {name!r}: expected one of {', '.join(CONFIGS)}")
    for cell in args.cells:
        if cell not in CELLS:
            p.error(f"unknown cell {cell!r}: expected one of {', '.join(CELLS)}")
    for name in args.ragged_configs:
        if name not in RAGGED:
            p.error(f"unknown ragged config {name!r}: expected one of {', '.join(RAGGED)}")
    if args.startup:
        return run_startup(args)
    if args.ragged:
        return run_ragged(args)
    return run_table(args)


if __name__ == "__main__":
    main()
