"""Benchmark: forward + backward of ours, PyTorch CPU, JAX and a per-step NumPy stack.

    python -m pipeline.bench                    # 1 thread c1-c4, 2 threads c3, the speed-up
    python -m pipeline.bench --startup          # import-to-first-step time, cold and warm
    python -m pipeline.bench --ragged           # sequences of different lengths (packed)
    python -m pipeline.bench --speedup          # ours on 2 threads against 1, alone

The peers run interleaved in one process (the order rotates every round) and
each figure is a median. Loss = sum of the outputs, zero initial state, and
x requires grad in PyTorch, so all compute the same gradients. JAX is the
optional ``bench`` extra (``jax_peer``: lax.scan, input projection hoisted);
without it its columns read "-".

Efficiency. GF/s counts the GEMM work of forward and backward, 6 T B G (D + H)
per layer and direction, for every peer alike. "eff" is ours against the
machine's practical peak: a 2048-square GEMM on NumPy's BLAS, timed as one
more peer in every round of the same row (a peak timed once drifts with a
shared machine). "GEMMs ms" runs only the matrix products every
implementation of these layers has to do, at our shapes, on NumPy's BLAS.

Threads. A row on n threads pins the whole process (every thread, XLA's
pool too, which ignores its thread flags on CPU) to n cores with
sched_setaffinity, gives torch, BLAS and Numba n threads, and prints each
peer's CPU time / wall time, so a reader sees whether the pinning held.
The speed-up of ours on two threads over one is measured apart
(``--speedup``), in a process that never imports torch or JAX: their idle
pools would otherwise share the two cores with ours.

OpenBLAS reads OPENBLAS_CORETYPE once at load; the table header says which
kernel it chose. To measure with the CPU's own kernels, unset the variables
in the command only:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pipeline.bench
"""
import argparse
import os
import platform

import numba
import numpy as np

from ..kernels import runtime as threads
from ..nn.spec import GATES
from . import jax_peer, reference
from .peers import CONFIGS, import_torch, set_threads, twins
from .ragged import RAGGED, run_ragged
from .speedup import run_speedup
from .startup import run_startup
from .timing import measure, pin

CELLS = ("lstm", "gru", "rnn")
PEERS = ("torch", "jax", "numpy", "ours", "gemms", "peak")
TIMED = ("torch", "jax", "ours")  # peers whose CPU time / wall time the table shows
PEAK_N = 2048  # the square GEMM that measures the machine's peak


def gemm_flops(cell, B, T, D, H, layers, bidirectional):
    """GEMM FLOPs of forward + backward: per layer and direction 6 T B G (D_in + H)."""
    dirs = 2 if bidirectional else 1
    G = GATES[cell] * H
    return sum(dirs * 6 * T * B * G * ((D if k == 0 else dirs * H) + H) for k in range(layers))


def _runners(cell, config, dtype, torch):
    """Closures doing forward + backward on the same weights and input (and the GEMMs alone,
    and the peak GEMM)."""
    B, T, D, H, layers, bidirectional = config
    layer, module, x, xt = twins(cell, config, dtype, torch)
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

    runners = {"torch": torch_run, "numpy": numpy_run, "ours": ours,
               "gemms": _gemms_only(cell, config, dtype), "peak": _peak_gemm(dtype)}
    if jax_peer.available():
        runners["jax"] = jax_peer.runner(layer.params, cell, x, layers, bidirectional)
    return runners


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


def _peak_gemm(dtype):
    """A closure doing one PEAK_N-square GEMM on NumPy's BLAS: the machine's practical peak."""
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((PEAK_N, PEAK_N)).astype(dtype) for _ in range(2))
    out = np.empty_like(a)
    return lambda: np.matmul(a, b, out=out)


PEAK_FLOPS = 2 * PEAK_N ** 3


def _cell(v, fmt):
    return "-" if v is None else format(v, fmt)


def run_table(args):
    torch = import_torch()
    jax_version = "not installed" if not jax_peer.available() else \
        __import__("jax").__version__
    print(f"# machine: {_cpu_name()}, {os.cpu_count()} cores;"
          f" BLAS: {threads.blas_info()};"
          f" OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')};"
          f" numba {numba.__version__} ({numba.config.THREADING_LAYER} layer,"
          f" {threads.vector_bits()}-bit vectors); torch {torch.__version__}; jax {jax_version}")
    print("| threads | dtype | cell | config | torch ms | jax ms | numpy ms | ours ms |"
          " ours GF/s | peak GF/s | eff | ours/torch | ours/jax | GEMMs ms |"
          " CPU/wall torch, jax, ours | reps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for nthreads in args.threads:
        set_threads(nthreads, torch)
        configs = args.configs if nthreads == 1 else args.configs_threaded
        for dtype in args.dtypes:
            for cell in args.cells:
                for name in configs:
                    config = CONFIGS[name]
                    runners = _runners(cell, config, np.dtype(dtype).type, torch)
                    med, load, n = measure(runners, args.reps, args.budget, cores=nthreads)
                    flops = gemm_flops(cell, *config)
                    peak = PEAK_FLOPS / med["peak"] / 1e9
                    ours = flops / med["ours"] / 1e9
                    jax_ms = med["jax"] * 1e3 if "jax" in med else None
                    row = dict(threads=nthreads, dtype=dtype, cell=cell, config=name,
                               **{f"{k}_ms": med[k] * 1e3 for k in med},
                               ours_gflops=ours, peak_gflops=peak, efficiency=ours / peak,
                               ratio_torch=med["ours"] / med["torch"],
                               ratio_jax=med["ours"] / med["jax"] if "jax" in med else None,
                               cpu_wall={k: load[k] for k in TIMED if k in load}, reps=n)
                    rows.append(row)
                    cpu = ", ".join(_cell(row["cpu_wall"].get(k), ".2f") for k in TIMED)
                    print(f"| {nthreads} | {dtype} | {cell} | {name} | {row['torch_ms']:.2f} |"
                          f" {_cell(jax_ms, '.2f')} | {row['numpy_ms']:.2f} |"
                          f" {row['ours_ms']:.2f} | {ours:.1f} | {peak:.1f} |"
                          f" {row['efficiency']:.2f} | {row['ratio_torch']:.2f} |"
                          f" {_cell(row['ratio_jax'], '.2f')} | {row['gemms_ms']:.2f} |"
                          f" {cpu} | {n} |", flush=True)
    pin(None)
    return rows


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    p.add_argument("--configs-threaded", type=lambda s: s.split(","), default=["c3"],
                   help="configs of the rows on more than one thread, and of --speedup"
                        " (default c3)")
    p.add_argument("--dtypes", type=lambda s: s.split(","), default=["float32", "float64"])
    p.add_argument("--cells", type=lambda s: s.split(","), default=list(CELLS))
    p.add_argument("--configs", type=lambda s: s.split(","), default=list(CONFIGS))
    p.add_argument("--reps", type=int, default=9, help="rounds per row (default 9)")
    p.add_argument("--budget", type=float, default=20.0,
                   help="stop a row's rounds after this many seconds (at least 3 rounds)")
    p.add_argument("--speedup", action="store_true",
                   help="measure ours on 2 threads against 1 only (a process without peers)")
    p.add_argument("--startup", action="store_true",
                   help="measure cold compile and warm start-up instead")
    p.add_argument("--ragged", action="store_true",
                   help="measure batches of different lengths instead: "
                        + "; ".join(f"{k} = (B, T, D, H, layers, bi, shortest) {v}"
                                    for k, v in RAGGED.items()))
    p.add_argument("--ragged-configs", type=lambda s: s.split(","), default=list(RAGGED))
    args = p.parse_args(argv)
    for name in args.configs + args.configs_threaded:
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
    if args.speedup:
        return run_speedup(args)
    rows = run_table(args)
    if 2 in args.threads and os.cpu_count() >= 2:
        run_speedup(args)
    return rows


if __name__ == "__main__":
    main()
