"""Ours on two threads against one, in a process that never imports torch or JAX (their
idle thread pools would otherwise share the cores with ours)."""
import json
import subprocess
import sys

import numpy as np

from ..kernels import runtime
from ..nn.recurrent import Recurrent
from .peers import CONFIGS
from .timing import measure, pin


SPEEDUP_SCRIPT = """
import json, sys
from pipeline.bench.speedup import speedup_rows
print(json.dumps(speedup_rows(*json.loads(sys.argv[1]))))
"""


def speedup_rows(cells, dtypes, configs, reps, budget):
    """Ours on 2 threads against 1 thread, interleaved, in a process without torch or JAX."""
    rows = []
    pin(2)
    for dtype in dtypes:
        for cell in cells:
            for name in configs:
                B, T, D, H, layers, bidirectional = CONFIGS[name]
                layer = Recurrent(cell, D, H, num_layers=layers, bidirectional=bidirectional,
                                  dtype=dtype, seed=0)
                x = np.random.default_rng(1).standard_normal((T, B, D)).astype(dtype)
                dy = np.ones((T, B, layer.dirs * H), dtype)

                def on(n):
                    def run():
                        runtime.set_num_threads(n)
                        layer.forward(x, training=True)
                        layer.backward(dy)
                    return run

                med, load, n = measure({"1 thread": on(1), "2 threads": on(2)}, reps, budget)
                rows.append(dict(dtype=dtype, cell=cell, config=name,
                                 one_ms=med["1 thread"] * 1e3, two_ms=med["2 threads"] * 1e3,
                                 speedup=med["1 thread"] / med["2 threads"],
                                 cpu_wall_two=load["2 threads"], reps=n))
    return rows


def run_speedup(args):
    """The speed-up table, from a fresh process that imports neither torch nor JAX."""
    print(f"# ours on 2 threads against 1, interleaved, alone in its process (torch and JAX"
          f" not imported), pinned to 2 cores; {runtime.vector_bits()}-bit vectors")
    print("| dtype | cell | config | 1 thread ms | 2 threads ms | speed-up |"
          " CPU/wall (2 threads) | reps |")
    print("|---|---|---|---|---|---|---|---|")
    spec = [args.cells, args.dtypes, args.configs_threaded, args.reps, args.budget]
    out = subprocess.run([sys.executable, "-c", SPEEDUP_SCRIPT, json.dumps(spec)], check=True,
                         capture_output=True, text=True).stdout
    rows = json.loads(out.strip().splitlines()[-1])
    for r in rows:
        print(f"| {r['dtype']} | {r['cell']} | {r['config']} | {r['one_ms']:.2f} |"
              f" {r['two_ms']:.2f} | {r['speedup']:.2f} | {r['cpu_wall_two']:.2f} |"
              f" {r['reps']} |", flush=True)
    return rows
