"""``python -m emnist_bench.export RUN_DIR --format savedmodel|tflite [--out DIR]``."""

from emnist_bench.export.command import main

main()
