"""Command-line options generated from the Settings fields, so each default, choice and range is
declared once (in settings.py).

Takes a Settings field name (and, rarely, the flag a command gives it); gives a click option whose
type comes from the setting (a Literal is a Choice, its bounds a range, a Path a file or folder),
whose help is its description and default, and whose value is None when the flag is not given
(so the environment, `.env` and the default still apply).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..settings import OptionSpec, flag_name, option_spec

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]
Spec = str | tuple[str, ...]  # a field name, or (field name, flag declarations...)


def click_type(spec: OptionSpec) -> click.ParamType[Any, Any] | None:
    """The click type of a setting (None: plain text)."""
    if spec.choices is not None:
        return click.Choice(spec.choices)
    if spec.kind is Path:
        return click.Path(
            path_type=Path, file_okay=spec.path != "folder", dir_okay=spec.path != "file"
        )
    if spec.kind is int:
        return click.IntRange(**spec.bounds)
    if spec.kind is float:
        return click.FloatRange(**spec.bounds)
    if spec.kind is str:
        return None
    raise TypeError(f"no command-line type for setting {spec.name!r}")


def setting(name: str, *decls: str) -> Decorator[Any]:
    """The option for setting `name` (`--max-frames` for max_frames unless `decls` name the
    flag; a switch whose default is on becomes `--no-...`)."""
    spec = option_spec(name)
    if spec.kind is bool:
        if spec.default is True:
            flags = decls or (flag_name(name).replace("--", "--no-", 1),)
            return click.option(*flags, name, flag_value=False, default=None, help=spec.off_help)
        flags = decls or (flag_name(name),)
        return click.option(*flags, name, is_flag=True, default=None, help=spec.help)
    flags = decls or (flag_name(name),)
    return click.option(*flags, name, type=click_type(spec), default=None, help=spec.help)


def settings_options(*specs: Spec) -> Decorator[Any]:
    """Options for several settings, in the order given (as `--help` lists them)."""

    def apply(f: F) -> F:
        for spec in reversed(specs):
            name, *decls = (spec,) if isinstance(spec, str) else spec
            f = setting(name, *decls)(f)
        return f

    return apply
