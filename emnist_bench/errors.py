"""Errors a user can cause, reported at the edge in one line."""


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
