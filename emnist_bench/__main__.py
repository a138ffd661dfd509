"""``python -m emnist_bench [group=option ...] [key=value ...]``: one run, or a sweep with -m.

``--help`` and ``--version`` are answered here, before Hydra is imported: an instant answer.
"""

import sys


def main() -> None:
    """Console entry point (``emnist-bench``); the command itself is ``cli.main``."""
    arguments = sys.argv[1:]
    if arguments in (["--version"], ["-V"]):
        from emnist_bench import __version__

        print(f"emnist_bench {__version__}")
    elif arguments in (["--help"], ["-h"]):
        from emnist_bench.usage import help_text

        print(help_text())
    else:
        from emnist_bench.cli import main as command

        command()


if __name__ == "__main__":
    main()
