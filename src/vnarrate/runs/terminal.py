"""Reporters for the runs layer: where a run says what happens, for people and for programs.

Takes the runs layer's messages (info, results, warnings, errors), products and progress; gives
them to a terminal (TerminalReporter: products on stdout, everything else on stderr) or to nobody
(SilentReporter, for the Python API). On a terminal, while inputs are processed, a live board
(rich) shows one line per input in flight (short name, stage, counts, elapsed) under an overall
bar; elsewhere (a pipe, a log file, CI) plain lines, and progress only with --verbose. Imports
nothing heavy at load time: `vnarrate --help` builds one.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

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


def short_name(label: str) -> str:
    """An input as people read it in a list: relative to the working folder when inside it, else
    its last two path parts (a URL or an image group stays as it is)."""
    if "://" in label or " + " in label:
        return label
    try:
        rel = os.path.relpath(label)
    except ValueError:  # another drive on Windows
        rel = label
    if not rel.startswith(".."):
        return rel
    parts = label.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:])


class TerminalReporter:
    """Diagnostics on stderr, products on stdout; a live board when stderr is a terminal."""

    def __init__(
        self, *, verbose: bool = False, quiet: bool = False, stderr: TextIO | None = None
    ) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self._err = stderr or sys.stderr
        self._lock = threading.Lock()
        self._board: _Board | None = None
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
            self._board = _Board(total, self._err)

    def start(self, label: str) -> None:
        if self._board is not None:
            self._board.add(label)

    def end(self, label: str) -> None:
        if self._board is not None:
            self._board.remove(label)

    def finish(self) -> None:
        if self._board is not None:
            self._board.stop()
            self._board = None

    def progress(self, label: str) -> Progress | None:
        board = self._board
        if board is None:
            return None
        return lambda done, total: board.count(label, done, total)


class _Board:
    """The live board (rich): an overall bar, then one line per input in flight."""

    def __init__(self, total: int, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console = Console(file=stream, stderr=stream is sys.stderr)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", style="bold"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stage]}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
        )
        self._overall = self._progress.add_task("inputs", total=max(1, total), stage="")
        self._tasks: dict[str, Any] = {}
        self._seen: set[str] = set()
        self._progress.start()

    def add(self, label: str) -> None:
        self._seen.add(label)
        self._tasks[label] = self._progress.add_task(short_name(label), total=None, stage="")

    def remove(self, label: str) -> None:
        task = self._tasks.pop(label, None)
        if task is not None:
            self._progress.remove_task(task)
        self._progress.advance(self._overall)

    def count(self, label: str, done: int, total: int) -> None:
        task = self._tasks.get(label)
        if task is not None:
            self._progress.update(task, completed=done, total=total)

    def stage(self, msg: str) -> bool:
        """Show `msg` ("INPUT: what happens") as its input's stage; False when it names none."""
        for label, task in list(self._tasks.items()):
            if msg.startswith(f"{label}: "):
                self._progress.update(task, stage=msg[len(label) + 2 :][:60])
                return True
        return False

    def shorten(self, msg: str) -> str:
        """`msg` with the input it starts with (if any it has seen) by its short name."""
        for label in self._seen:
            if msg.startswith(f"{label}: "):
                return short_name(label) + msg[len(label) :]
        return msg

    def print(self, msg: str) -> None:
        self._console.print(msg, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self._progress.stop()
