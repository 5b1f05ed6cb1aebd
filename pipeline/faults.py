"""Faults: a signal ends a run cleanly, and runs whose process vanished are closed.

SIGTERM (what `timeout`, systemd, SLURM's scancel, Kubernetes and Ray send),
SIGINT and SIGHUP become a ``Stopped`` exception inside the process, so the
MLflow run ends KILLED (``tracking.run``), the last epoch's checkpoint stays,
and the command exits with 128 + the signal's number and one line saying how
to resume. SIGKILL, the OOM killer or a power cut leave no such chance: the
next run or sweep on the same machine closes runs whose process is gone.
"""
import contextlib
import signal
import socket

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(BaseException):
    """The process was asked to stop by a signal.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the
    way (a retry loop, a launcher) swallows it.
    """

    def __init__(self, signum):
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.last_epoch = None   # set by tracking.run: the last epoch the run finished
        super().__init__(f"stopped by {self.name}")

    def exit_code(self):
        return 128 + self.signum


received = []  # the signals this process was stopped by


def _raise(signum, frame):
    received.append(signum)
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals():
    """Within the block, SIGTERM, SIGINT and SIGHUP raise Stopped (main thread only)."""
    previous = {}
    try:
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, _raise)
    except ValueError:  # not the main thread: leave the signals as they are
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def process_gone(pid, started_ms):
    """True if no process `pid` runs here that started before the run (pid reuse included)."""
    import psutil

    try:
        proc = psutil.Process(int(pid))
        return proc.create_time() * 1000 > started_ms + 1000 or \
            proc.status() == psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError):
        return True
    except psutil.AccessDenied:
        return False


def close_stale_runs(client):
    """Mark FAILED every RUNNING run tagged with this host whose process is gone.

    Returns the ids it closed. Runs of other machines (a Ray worker elsewhere)
    are left alone: only their own machine can tell whether they still run.
    """
    from mlflow.entities import RunTag, ViewType

    host = socket.gethostname()
    experiments = [e.experiment_id for e in client.search_experiments(ViewType.ACTIVE_ONLY)]
    if not experiments:
        return []
    closed = []
    for run in client.search_runs(experiments, filter_string=(
            f"attributes.status = 'RUNNING' and tags.host = '{host}'"), max_results=1000):
        pid = run.data.tags.get("pid")
        if pid is None or not process_gone(pid, run.info.start_time):
            continue
        client.log_batch(run.info.run_id, tags=[RunTag(
            "failure", f"its process {pid} on {host} is gone (killed without a word:"
                       " SIGKILL, the out-of-memory killer or a power cut)")])
        client.set_terminated(run.info.run_id, "FAILED")
        closed.append(run.info.run_id)
    return closed
