"""Comparison of many runs: the summary table, each technique's effect against the base, and
``summary.md``, ``plots/``, ``report.html`` (``python -m emnist_bench.report DIR``). Nothing
here imports TensorFlow."""
