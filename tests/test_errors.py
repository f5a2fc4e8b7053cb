"""Errors: each kind carries the exit code the README documents, and prints as one line."""

from __future__ import annotations

import pytest

from vnarrate.errors import (
    ApiError,
    ConfigError,
    InputError,
    OutputError,
    UsageError,
    VnarrateError,
)


@pytest.mark.parametrize(
    ("kind", "code"),
    [(VnarrateError, 1), (UsageError, 2), (ConfigError, 3), (InputError, 4), (ApiError, 5),
     (OutputError, 6)],
)  # fmt: skip
def test_exit_codes(kind: type[VnarrateError], code: int) -> None:
    assert kind("x").exit_code == code


def test_message_with_hint_is_one_line() -> None:
    err = ConfigError("no API key", hint="set OPENAI_API_KEY")
    assert str(err) == "no API key (set OPENAI_API_KEY)" and "\n" not in str(err)
    assert str(InputError("bad")) == "bad"
