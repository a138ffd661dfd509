"""Options renamed in this release, still accepted under their old names until the next one.

An old name is a YAML file in its group whose defaults list holds only the new one, so it
composes the same config; the command line prints one deprecation line for it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

RENAMED = {
    "experiment": {"mlp_seed_tuned": "mlp_notebook_tuned", "cnn_seed_tuned": "cnn_notebook_tuned"},
    "sweep": {"seed_report": "notebook_report"},
}
"""Per config group, old option name -> new one."""

_CHOICE = re.compile(r"^[+~]*/?([a-z_]+)=([\w.,\-]+)$")


def deprecation_lines(arguments: Sequence[str]) -> list[str]:
    """One line per old option name among the command-line ``arguments``."""
    lines = []
    for argument in arguments:
        match = _CHOICE.match(argument)
        renamed = RENAMED.get(match[1], {}) if match else {}
        for value in match[2].split(",") if renamed else ():
            if value in renamed:
                lines.append(
                    f"warning: {match[1]}={value} is deprecated and goes in the next release; "
                    f"use {match[1]}={renamed[value]}"
                )
    return lines


def warn_renamed(arguments: Sequence[str]) -> None:
    """Prints :func:`deprecation_lines` to stderr."""
    for line in deprecation_lines(arguments):
        print(line, file=sys.stderr, flush=True)
