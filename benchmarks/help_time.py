"""How long ``python -m emnist_bench --help`` takes: the whole process, start to exit.

Runs the command ``--runs`` times (after one unmeasured run that warms the file cache) and
prints each time, the median, and the result as JSON on the last line. The child runs in this
checkout, with it on ``PYTHONPATH``, so a worktree measures its own code (``python -m`` puts
the current folder first on ``sys.path``).

    .venv/bin/python benchmarks/help_time.py [--runs 5] [-- EXTRA ARGUMENTS]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def time_once(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="arguments after --help (e.g. model=cnn)")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "emnist_bench", "--help", *args.extra]
    time_once(command, env)
    seconds = [time_once(command, env) for _ in range(args.runs)]
    median = statistics.median(seconds)
    print("runs (s):", ", ".join(f"{s:.3f}" for s in seconds))
    print(f"median of {args.runs}: {median:.3f} s")
    print(json.dumps({"command": " ".join(command[1:]), "seconds": seconds, "median": median}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
