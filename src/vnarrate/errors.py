"""The exceptions the pipeline raises, each carrying the exit code the CLI turns it into.

Exit codes (documented in the README): 0 ok, 1 unexpected, 2 usage, 3 configuration,
4 input, 5 API, 6 output.
"""

from __future__ import annotations


class VnarrateError(Exception):
    """Base of every expected failure: one line for the user, an exit code for the shell."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(VnarrateError):
    """No key, a bad setting, a budget exceeded: fix the configuration and rerun."""

    exit_code = 3


class InputError(VnarrateError):
    """The input is missing, not a video, unreadable, or yields no frames."""

    exit_code = 4


class ApiError(VnarrateError):
    """The API refused, failed after the SDK's retries, or answered with nothing usable."""

    exit_code = 5


class OutputError(VnarrateError):
    """An output exists (without --force) or cannot be written."""

    exit_code = 6


class UsageError(VnarrateError):
    """A bad command-line value that click's own types cannot express (exit 2, like click's)."""

    exit_code = 2
