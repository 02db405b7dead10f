"""User-facing errors.

Every failure a user can cause (bad flag, bad data, unreachable server) is raised
as a :class:`MindzooError`; the CLI prints its message as one line and exits
non-zero without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


def first_line(err: BaseException, limit: int = 200) -> str:
    """An error's first line (at most ``limit`` characters), to quote inside a one-line message."""
    lines = str(err).strip().splitlines()
    return lines[0][:limit] if lines else type(err).__name__


class MindzooError(Exception):
    """An error whose message is fit to show a user as a single line."""

    exit_code = 2


class ConfigError(MindzooError, ValueError):
    """A configuration value is invalid; the message names its dotted key.

    >>> str(ConfigError("train.optim.lr", "must be > 0"))
    'train.optim.lr: must be > 0'
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class StorageError(MindzooError):
    """The object store refused or could not be reached."""


class DataError(MindzooError):
    """Input data is missing, empty or malformed."""


class NotInEnvironment(MindzooError):
    """A command needs packages that live in the other Python environment."""
