"""``python -m emnist_bench.serve RUN_DIR [--port N]``."""

from emnist_bench.serve.command import main

main()
