"""The exceptions vnarrate raises, each carrying the exit code the CLI turns it into, and `redact`,
which every message passes through so that no key is ever shown.

    VnarrateError        1  unexpected (a bug)
    ├── UsageError       2  a bad command-line value or a flag without its partner
    ├── ConfigError      3  no key, a bad setting, over --max-cost
    ├── InputError       4  missing, not a video, unreadable, no frames
    ├── ApiError         5  refused, failed after the SDK's retries, nothing usable came back
    └── OutputError      6  exists without --force, or cannot be written

0 is success; with several inputs the first failed input's code, after all were processed.
"""

from __future__ import annotations

import re

_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+)")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with the given secrets and anything that looks like a key masked: what every
    message, log line and record passes through before anyone sees it."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


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
