"""Timing: interleaved rounds, medians, CPU time against wall time, and core pinning."""
import functools
import os
import statistics
import time


def _time(fn):
    """(wall, CPU) seconds of one call; CPU time counts every thread of the process."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def measure(runners, reps, budget, cores=None):
    """Median wall seconds per peer over interleaved rounds (order rotates each round),
    the CPU/wall ratio of each peer over all rounds, and the rounds run.

    cores: pin the process to that many cores after the warm-up (which may
    start thread pools) and before the rounds.
    """
    for fn in runners.values():
        fn()  # warm-up: compile, allocate, fill caches
    if cores is not None:
        pin(cores)
    peers = tuple(runners)
    walls, cpus = {k: [] for k in runners}, {k: [] for k in runners}
    start = time.perf_counter()
    for r in range(reps):
        for k in peers[r % len(peers):] + peers[:r % len(peers)]:
            wall, cpu = _time(runners[k])
            walls[k].append(wall)
            cpus[k].append(cpu)
        if r >= 2 and time.perf_counter() - start > budget:
            break
    return ({k: statistics.median(v) for k, v in walls.items()},
            {k: sum(cpus[k]) / sum(walls[k]) for k in runners}, r + 1)


@functools.lru_cache(maxsize=None)
def _allowed_cores():
    """The cores the process may use, as it started (before any pin)."""
    return tuple(sorted(os.sched_getaffinity(0)))


def pin(n):
    """Pin every thread of the process to the first n of its cores (None: all of them)."""
    cores = _allowed_cores()
    mask = set(cores if n is None else cores[:n])
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), mask)
        except OSError:  # a thread that ended meanwhile
            pass
