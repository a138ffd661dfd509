"""``python -m emnist_bench [group=option ...] [key=value ...]``: one run, or a sweep with -m.

This module must stay free of TensorFlow imports: ``--help`` and composition are instant.
"""

from __future__ import annotations

import os
import re
import sys

# Quiet TensorFlow's C++ start-up chatter and keep plots headless, unless the user chose.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import hydra
from omegaconf import DictConfig

import emnist_bench.sweep  # noqa: F401  (registers the `variant` config group and grid resolvers)
from emnist_bench import config_dir
from emnist_bench.errors import UserError

_GROUP_CHOICE = re.compile(r"^[+~]*(?:/?)([a-z_]+)=([\w.,\-]+)$")


def check_group_choices(arguments: list[str]) -> None:
    """Refuses an unknown option of a config group (``optimizer=adamm``) in one line."""
    root = config_dir()
    for argument in arguments:
        match = _GROUP_CHOICE.match(argument)
        if not match or not (root / match[1]).is_dir():
            continue
        group, values = match[1], match[2]
        options = sorted(p.stem for p in (root / group).glob("*.yaml"))
        for value in values.split(","):
            if value not in options:
                raise UserError(
                    f"unknown {group} option {value!r}; choose one of: {', '.join(options)}"
                )


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    from emnist_bench.train import run

    try:
        metrics = run(cfg)
    except UserError as error:  # Hydra would print a traceback; SystemExit passes through it.
        exit_with(error)
    return metrics.get("test_accuracy")


def exit_with(error: UserError) -> None:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    """Console entry point (``emnist-bench``): user errors exit 2 with one line on stderr."""
    try:
        check_group_choices(sys.argv[1:])
    except UserError as error:
        exit_with(error)
    _hydra_main()


if __name__ == "__main__":
    main()
