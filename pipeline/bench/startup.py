"""Start-up: seconds from `import pipeline.nn` to one finished forward + backward, cold
(an empty Numba cache) and warm (the cache the cold run left)."""
import os
import subprocess
import sys
import tempfile


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
