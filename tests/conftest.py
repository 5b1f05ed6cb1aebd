"""Test set-up: helpers on the path, and a test process that cannot reach the user's MLflow store.

Whatever MLFLOW_TRACKING_URI (or any other MLFLOW_* variable) the user's shell
exports, this process points MLflow at a scratch store of its own; the
subprocesses the tests start get an environment built from scratch
(tests/projects.py).
"""
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))

for _name in [k for k in os.environ if k.startswith("MLFLOW_")]:
    del os.environ[_name]
_SCRATCH = Path(tempfile.mkdtemp(prefix="rnn-tests-mlflow-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SCRATCH / 'mlflow.db'}"
