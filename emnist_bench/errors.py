"""Errors a user can cause, reported at the edge in one line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A problem with the user's input (a file, a config value) that they can fix.

    The command line prints ``str(error)`` on one line and exits with code 2, no traceback.
    """


class DataError(UserError):
    """A data file is missing, broken or inconsistent."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ConfigError(UserError):
    """A config value is invalid."""


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Every command's edge: a :class:`UserError` becomes ``error: ...`` on stderr and exit 2.

    Internal bugs still raise with their traceback.
    """
    try:
        yield
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
