"""``python -m emnist_bench.predict RUN_DIR IMAGE_OR_FOLDER [...]``."""

from emnist_bench.predict.command import main

main()
