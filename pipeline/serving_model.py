"""The file MLflow loads a logged model from ("models from code": no pickled object).

`serving.log_model` hands this file to mlflow.pyfunc.save_model; loading the
model runs it, and it names the model class by import.
"""
import mlflow

from pipeline.serving import RecurrentModel

mlflow.models.set_model(RecurrentModel())
