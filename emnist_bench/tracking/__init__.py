"""Experiment tracking: a run folder mirrored into MLflow, live (``logger=mlflow``) or afterwards
(``python -m emnist_bench.runs sync``). The run folder stays the record; MLflow is a view of it,
so nothing here may cost a run. Nothing here imports TensorFlow; MLflow only when used."""
