"""The ``python -m emnist_bench`` / ``emnist-bench`` command: Hydra composes, :func:`run` runs.

This module must stay free of TensorFlow imports: composition errors come before any of it.
"""

from __future__ import annotations

import os
import re
import sys

# Quiet TensorFlow's C++ start-up chatter and keep plots headless, unless the user chose.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import emnist_bench.sweep  # noqa: F401  (registers the `variant` config group and grid resolvers)
import emnist_bench.usage  # noqa: F401  (registers the help template's resolver)
from emnist_bench import config_dir
from emnist_bench.aliases import warn_renamed
from emnist_bench.errors import ConfigError, FaultExit, UserError, exit_on_user_error, reason
from emnist_bench.techniques import options

_GROUP_CHOICE = re.compile(r"^[+~]*(?:/?)([a-z_]+)=([\w.,\-]+)$")


def check_group_choices(arguments: list[str]) -> None:
    """Refuses an unknown option of a config group (``optimizer=adamm``) in one line."""
    for argument in arguments:
        match = _GROUP_CHOICE.match(argument)
        if not match or not (config_dir() / match[1]).is_dir():
            continue
        group, values = match[1], match[2]
        known = options(group)
        for value in values.split(","):
            if value not in known:
                raise UserError(
                    f"unknown {group} option {value!r}; choose one of: {', '.join(known)}"
                )


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    from emnist_bench.run import run

    with exit_on_user_error():  # Hydra would print a traceback; SystemExit passes through it.
        metrics = run(cfg)
    # What a sweeper plugged in optimises: validation, never test accuracy.
    return metrics.get("val_accuracy")


def composition_error(error: Exception) -> ConfigError:
    """A Hydra or OmegaConf composition error as one line: what Hydra tried and why it failed
    (``Error merging override trainer.epochs=abc: Value 'abc' ... could not be converted to
    Integer``)."""
    parts = [reason(error).rstrip(".")]
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        parts.append(reason(cause))
    return ConfigError(": ".join(parts) + " (python -m emnist_bench --help lists every key)")


def multirun_flag_first(arguments: list[str]) -> list[str]:
    """``-m`` wherever the user typed it: Hydra's parser takes it only before the overrides
    (``... optimizer=sgd,adam -m`` fails with "unrecognized arguments"). It takes no value, so
    moving it changes nothing else."""
    flags = [argument for argument in arguments if argument in ("-m", "--multirun")]
    return flags + [argument for argument in arguments if argument not in flags]


def main() -> None:
    """The command (``__main__`` answers a lone ``--help`` or ``--version`` before it): user
    errors exit 2 with one line on stderr. ``--help`` with overrides is Hydra's own, showing the
    config they compose."""
    # Hydra's errors reach this function instead of being printed over several lines.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv[1:] = multirun_flag_first(sys.argv[1:])
    try:
        with exit_on_user_error():
            check_group_choices(sys.argv[1:])
            warn_renamed(sys.argv[1:])
            try:
                _hydra_main()
            except (HydraException, OmegaConfBaseException) as error:
                raise composition_error(error) from None
            except ValueError as error:  # Hydra's own check of its modes, before composing
                if not str(error).startswith("Only one of --run"):
                    raise
                raise UserError(
                    f"{error}: -m runs a sweep; --cfg and --info print the config and run nothing"
                ) from None
    except FaultExit as fault:  # a full disk: the one line is printed, end now
        fault.end_process()
