"""``python -m emnist_bench.report DIR``."""

from emnist_bench.report.command import main

main()
