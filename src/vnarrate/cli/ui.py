"""The terminal: diagnostics to stderr, products to stdout (the runs layer's Reporter).

Takes messages and products from a run; gives lines on stderr (progress only when stderr is a
terminal, nothing but errors with --quiet, more with --verbose) and the product on stdout.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import click


class UI:
    """Where diagnostics go: stderr only; progress only when stderr is a terminal."""

    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._progress_open = False

    def info(self, msg: str) -> None:
        if not self.quiet and (self.verbose or self.tty):
            self._line(msg)

    def say(self, msg: str) -> None:
        """A result line for people (summaries, files written): shown unless --quiet."""
        if not self.quiet:
            self._line(msg)

    def warn(self, msg: str) -> None:
        if not self.quiet:
            self._line(f"vnarrate: warning: {msg}")

    def error(self, msg: str) -> None:
        self._line(f"vnarrate: error: {msg}")

    def product(self, text: str) -> None:
        """The product on stdout: a description, a plan, a JSON line."""
        click.echo(text)

    def progress(self, label: str) -> Callable[[int, int], None] | None:
        if self.quiet or not self.tty:
            return None

        def show(done: int, total: int) -> None:
            with self._lock:
                click.echo(f"\r{label}: {done}/{total}", nl=False, err=True)
                self._progress_open = done < total
                if done >= total:
                    click.echo("", err=True)

        return show

    def _line(self, msg: str) -> None:
        with self._lock:
            if self._progress_open:
                click.echo("", err=True)
                self._progress_open = False
            click.echo(msg, err=True)
