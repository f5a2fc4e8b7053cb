"""Reporters for the runs layer: where a run says what happens, for people and for programs.

Takes the runs layer's messages (info, results, warnings, errors), products and progress; gives
them to a terminal (TerminalReporter: products on stdout, everything else on stderr) or to nobody
(SilentReporter, for the Python API). On a terminal, while inputs are processed, a live board
(board.py) shows one line per input in flight (short name, stage, counts, elapsed, status) under
an overall line; elsewhere (a pipe, a log file, CI) plain lines, and progress only with
--verbose. Imports nothing heavy at load time: `vnarrate --help` builds one.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TextIO

from .board import STARTING, Board, short_name
from .interrupt import ACTIVITY

__all__ = ["SilentReporter", "TerminalReporter", "short_name"]

Progress = Callable[[int, int], None]


class SilentReporter:
    """Says nothing: a Python caller reads the result instead."""

    def info(self, msg: str) -> None:
        pass

    say = warn = error = product = start = end = debug = info

    def begin(self, total: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def progress(self, label: str) -> Progress | None:
        return None


class TerminalReporter:
    """Diagnostics on stderr, products on stdout; a live board when stderr is a terminal."""

    def __init__(
        self, *, verbose: bool = False, quiet: bool = False, stderr: TextIO | None = None
    ) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self._err = stderr or sys.stderr
        self._lock = threading.Lock()
        self._board: Board | None = None
        self._total = 0

    @property
    def live(self) -> bool:
        """Whether a person watches: stderr is a terminal and --quiet was not given."""
        return not self.quiet and self._err.isatty()

    # --- messages ---------------------------------------------------------------------------

    def info(self, msg: str) -> None:
        board = self._board
        if board is not None and board.stage(msg) and not self.verbose:
            return  # shown as its input's stage on the board
        if not self.quiet and (self.verbose or self.live):
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

    def debug(self, msg: str) -> None:
        """Details (a traceback) with --verbose only."""
        if self.verbose:
            self._line(msg)

    def product(self, text: str) -> None:
        """The product on stdout: a description, a plan, a JSON line."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def _line(self, msg: str) -> None:
        with self._lock:
            if self._board is not None:
                self._board.print(self._board.shorten(msg))
            else:
                self._err.write(msg + "\n")
                self._err.flush()

    # --- inputs in flight ----------------------------------------------------------------------

    def begin(self, total: int) -> None:
        """A batch of `total` inputs starts; the board appears when a person watches."""
        self._total = total
        if self.live and self._board is None:
            # `plan` says nothing while it works: its inputs are planning from the start.
            first = "planning" if ACTIVITY.command == "plan" else STARTING
            self._board = Board(total, self._err, stderr=self._err is sys.stderr, first=first)
            ACTIVITY.on_stage = self._board.follow

    def start(self, label: str) -> None:
        if self._board is not None:
            self._board.add(label)

    def end(self, label: str) -> None:
        if self._board is not None:
            self._board.remove(label)

    def finish(self) -> None:
        if self._board is not None:
            ACTIVITY.on_stage = None
            self._board.stop()
            self._board = None

    def progress(self, label: str) -> Progress | None:
        board = self._board
        if board is None:
            return None
        return lambda done, total: board.count(label, done, total)
