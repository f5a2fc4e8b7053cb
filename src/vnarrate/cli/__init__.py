"""The command line, the only layer that knows click: main() runs the group (group.py) and turns
every failure into one line and its exit code. Commands (commands.py) hand their flags to the
runs layer; options.py generates their options from the Settings fields; runs/terminal.py is the
terminal.
"""

from __future__ import annotations

import sys
import traceback

import click

from ..errors import VnarrateError, redact
from ..runs.interrupt import handle_signals, stdout_closed, stop
from .group import cli

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors and the documented exit codes, never a traceback
    for an expected failure. Signals and a closed stdout end the run cleanly (runs/interrupt)."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args)
    try:
        with handle_signals():
            try:
                cli.main(args=args, prog_name="vnarrate", standalone_mode=False)
            finally:
                sys.stdout.flush()  # here, so that a reader gone away is seen (not at exit)
    except (click.exceptions.Abort, KeyboardInterrupt):
        stop(130, "SIGINT")
    except BrokenPipeError:
        stdout_closed()
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"vnarrate: error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except VnarrateError as exc:
        click.echo(f"vnarrate: error: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
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
