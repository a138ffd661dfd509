"""``python -m emnist_bench [group=option ...] [key=value ...]``: one run, or a sweep with -m."""

from emnist_bench.cli import main

if __name__ == "__main__":
    main()
