"""``python -m emnist_bench.evaluate RUN_DIR [data.root=DIR] [key=value ...]``."""

from emnist_bench.evaluate.command import main

main()
