"""A trained model as an MLflow pyfunc model, served on our own weights (no deep-learning framework).

Every training run logs one under its artifacts (`model/`):

    mlflow models predict -m runs:/<run id>/model -i input.json -t json --env-manager local

- series and sine models: input a tensor x (B, T, 1) of windows, batch-major;
  output the predictions (B, 1), what Model.forward returns;
- tsc models: inputs "x" (B, T, C) zero-padded and "lengths" (B,); output the
  class logits (B, classes), in the order of the model's `classes`;
- copy: tokens "x" (B, T); output the logits (B, T, classes);
- text models: a table with columns prime, length, temperature, seed; output one
  generated text per row (``inference.sampling``).
The model needs this package installed where it is served (pip requirement
`rnn-pipeline`), as it needs numpy and numba.
"""
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec

from .inference.sampling import sample
from .training import bundle

SAMPLE_DEFAULTS = {"prime": None, "length": 200, "temperature": 1.0, "seed": 0}


class RecurrentModel(PythonModel):
    """The pyfunc wrapper. Its inputs are checked against the signature logged with the
    model: MLflow infers no schema from the np.ndarray hint (it stands for a tensor, a
    dict of tensors or a table alike)."""

    def load_context(self, context):
        self.model, self.info = bundle.load(context.artifacts["model"])

    def predict(self, context, model_input: np.ndarray, params=None):
        data = self.info["data"]
        if data["task"] == "text":
            return self._sample(pd.DataFrame(model_input))
        if isinstance(model_input, dict):
            x, lengths = model_input["x"], model_input.get("lengths")
        else:
            x, lengths = model_input, None
        x = np.asarray(x)
        x = np.swapaxes(x, 0, 1)                    # batch-major in, time-major for the model
        if data["vocab_size"] is None:
            x = x.astype(self.model.dtype)
        lengths = None if lengths is None else np.asarray(lengths, np.int64)
        pred = self.model.forward(np.ascontiguousarray(x), lengths=lengths)
        return pred if data["readout"] == "last" else np.swapaxes(pred, 0, 1)

    def _sample(self, table):
        vocab = self.info["data"]["meta"]["vocab"]
        texts = []
        for _, row in table.iterrows():
            args = {k: row[k] if k in row and pd.notna(row[k]) else v
                    for k, v in SAMPLE_DEFAULTS.items()}
            prime = None if args["prime"] is None else str(args["prime"])
            texts.append(sample(self.model, vocab, prime, int(args["length"]),
                                float(args["temperature"]), int(args["seed"])))
        return pd.DataFrame({"text": texts})


def signature(info, dtype):
    """The model's input and output schema, from its data header."""
    data = info["data"]
    if data["task"] == "text":
        return ModelSignature(
            inputs=Schema([ColSpec("string", "prime"), ColSpec("long", "length"),
                           ColSpec("double", "temperature"), ColSpec("long", "seed")]),
            outputs=Schema([ColSpec("string", "text")]))
    out = TensorSpec(np.dtype(dtype), (-1, data["output_size"]) if data["readout"] == "last"
                     else (-1, -1, data["output_size"]))
    if data["vocab_size"] is not None:
        x = TensorSpec(np.dtype(np.int64), (-1, -1), "x")
    else:
        x = TensorSpec(np.dtype(dtype), (-1, -1, data["input_size"]), "x")
    if data["task"] == "tsc":
        inputs = Schema([x, TensorSpec(np.dtype(np.int64), (-1,), "lengths")])
    else:
        inputs = Schema([TensorSpec(x.type, x.shape)])
    return ModelSignature(inputs=inputs, outputs=Schema([out]))


def log_model(tracker, model_path):
    """Save the model file as a pyfunc model and log it under the run's `model/` artifacts."""
    import mlflow.pyfunc

    _, info = bundle.read(model_path)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no bars in a job's log
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # MLflow would like an input example, which it runs through the model to check
        # it: the signature says what the model takes, and saving stays fast
        warnings.filterwarnings("ignore", message=".*input example was not provided",
                                category=UserWarning)
        path = Path(tmp) / "model"
        mlflow.pyfunc.save_model(
            path, python_model=str(Path(__file__).with_name("serving_model.py")),
            artifacts={"model": str(model_path)},
            signature=signature(info, info["config"]["model"]["dtype"]),
            pip_requirements=["rnn-pipeline", "mlflow", "numpy", "numba", "pandas"])
        tracker.client.log_artifacts(tracker.run_id, str(path), "model")
