"""Evaluation of one run: test metrics, the run's files and plots, and the evaluate command
(``python -m emnist_bench.evaluate RUN_DIR``)."""
