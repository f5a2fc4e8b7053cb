"""The command line, the only layer that knows click: main() runs the group (group.py) and turns
every failure into one line and its exit code. Commands (commands.py) hand their flags to the
runs layer; options.py generates their options from the Settings fields; ui.py is the terminal.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback

import click

from ..errors import VnarrateError, redact
from .group import cli

__all__ = ["cli", "main"]


def _exit_now(code: int) -> None:
    """Exit promptly on Ctrl-C: worker threads still inside a request would otherwise be waited
    for. Outputs are written atomically, so nothing half-written is left under its real name."""
    if threading.active_count() > 1:
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors and the documented exit codes, never a traceback
    for an expected failure."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args)
    try:
        cli.main(args=args, prog_name="vnarrate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("vnarrate: interrupted", err=True)
        _exit_now(130)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"vnarrate: error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except VnarrateError as exc:
        click.echo(f"vnarrate: error: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("vnarrate: interrupted", err=True)
        _exit_now(130)
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        click.echo(
            redact(
                f"vnarrate: unexpected error: {type(exc).__name__}: {exc} "
                "(run with --verbose for details)"
            ),
            err=True,
        )
        sys.exit(1)
