"""``python -m emnist_bench.runs``: list, compare, tag and note run folders, and sync them to
MLflow; without TensorFlow."""
