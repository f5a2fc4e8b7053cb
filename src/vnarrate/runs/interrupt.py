"""Stopping a run cleanly: SIGINT, SIGTERM, SIGHUP or a closed stdout -> no temporary file left,
at most one line on stderr, the conventional exit code.

Takes what the runs layer says is in flight (ACTIVITY: the command, the inputs and what each is
doing) and the temporary files of runs/output.py; gives `handle_signals()` (installed by the
CLI's main for the length of a run) and `stdout_closed()` (called where a product cannot be
written). A signal may land in the middle of any thread's work; its handler (Python runs it in
the main thread) stops every new temporary file, removes all there are, says what was
interrupted and ends the process at once with 128 + the signal number (130 for Ctrl-C, 143 for
SIGTERM, 129 for SIGHUP): worker threads waiting for a server are not waited for. Outputs
already renamed into place are on record in their partial run manifest, so a rerun with
--skip-existing resumes (runs/manifest.py).

A closed stdout (`vnarrate describe dir/ --json | head -1`) ends the run the same way, silently,
with 141: the status a shell reports for a program ended by SIGPIPE, as `cat` or `grep` would be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from .board import stage_of
from .output import TEMPS

STAGE_CHARS = 60
EXIT_PIPE = 128 + 13  # SIGPIPE


class Activity:
    """What the run is doing, for the one line a signal leaves: the command, and each input in
    flight with its latest stage ("INPUT: what happens" messages, or a stage set directly)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.command = ""
        self._stages: dict[str, str] = {}
        # What a person must know if the run stops now (e.g. that batches keep running on the
        # server and how to resume), or None.
        self.farewell: Callable[[], str] | None = None
        # Who else follows the stages set directly (the live board, runs/board.py), or None.
        self.on_stage: Callable[[str, str], object] | None = None

    def begin(self, command: str) -> None:
        with self._lock:
            self.command = command

    def start(self, label: str) -> None:
        with self._lock:
            self._stages[label] = ""

    def end(self, label: str) -> None:
        with self._lock:
            self._stages.pop(label, None)

    def stage(self, label: str, what: str) -> None:
        with self._lock:
            if label in self._stages:
                self._stages[label] = what
        follow = self.on_stage
        if follow is not None:
            follow(label, what)

    def note(self, msg: str) -> None:
        """Take "INPUT: what happens" as INPUT's stage (other messages are ignored)."""
        with self._lock:
            for label in self._stages:
                if msg.startswith(f"{label}: "):
                    self._stages[label] = msg[len(label) + 2 :]

    def describe(self) -> str:
        """ "voiceover of a.mp4 (muxing into a.narrated.mp4), b.mp4 (speech)", or less."""
        with self._lock:
            items = list(self._stages.items())
            command = self.command
        shown = []
        for label, stage in items[:4]:
            # What, not why, as the board says it: "speech via auto: OpenAI serves ..., 3
            # segments" -> "speaking 3 lines"; a plain "muxing into a.narrated.mp4" stays.
            if ": " in stage:
                what, status = stage_of(stage)
                stage = f"{what} {status}".strip() if what else status
            if len(stage) > STAGE_CHARS:
                stage = stage[: STAGE_CHARS - 1] + "…"
            shown.append(f"{label} ({stage})" if stage else label)
        if len(items) > 4:
            shown.append(f"{len(items) - 4} more")
        if not command:
            return ""
        if not shown:
            return command
        return f"{command} of {', '.join(shown)}"


ACTIVITY = Activity()
_stopping = threading.Lock()


def stop(code: int, reason: str | None) -> None:
    """End the process now: remove every temporary file, say `reason` (if any) with what was in
    flight on stderr, exit with `code`. Safe from any thread and from a signal handler; only
    the first caller acts (a second signal during the sweep is ignored)."""
    if not _stopping.acquire(blocking=False):
        if threading.current_thread() is not threading.main_thread():
            threading.Event().wait()  # the first caller is about to end the process
        return
    with contextlib.suppress(Exception):  # finished products still reach the reader
        sys.stdout.flush()
    err = -1
    with contextlib.suppress(OSError):
        err = os.dup(2)
        # From here on other threads' output goes nowhere: stderr gets one line.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
    removed = TEMPS.sweep()
    if reason is not None and err >= 0:
        with contextlib.suppress(OSError):
            os.write(err, _message(reason, removed, tty=os.isatty(err)).encode("utf-8", "replace"))
    os._exit(code)


def _message(reason: str, removed: int, *, tty: bool) -> str:
    during = ACTIVITY.describe()
    line = f"vnarrate: interrupted ({reason})" + (f" during {during}" if during else "")
    if removed:
        line += f"; removed {removed} unfinished file{'s' if removed > 1 else ''}"
    farewell = ACTIVITY.farewell
    if farewell is not None:
        with contextlib.suppress(Exception):
            line += f"; {farewell()}"
    # A live board (runs/terminal.py) hid the cursor and is left as it was: show the cursor.
    return ("\x1b[?25h\n" if tty else "") + line + "\n"


def stdout_closed() -> None:
    """The reader of stdout went away: stop quietly (no traceback, no message), exit 141."""
    stop(EXIT_PIPE, None)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    stop(128 + signum, signal.Signals(signum).name)


_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Install the handler for SIGINT, SIGTERM and SIGHUP for the block (main thread only; a
    signal the process was started ignoring, like SIGINT for `cmd &` or SIGHUP under nohup,
    stays ignored); the previous handlers come back after it."""
    previous: list[tuple[int, Callable[[int, FrameType | None], object] | int | None]] = []
    if threading.current_thread() is threading.main_thread():
        for name in _SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:  # Windows has no SIGHUP
                continue
            old = signal.getsignal(signum)
            if old == signal.SIG_IGN:
                continue
            signal.signal(signum, _on_signal)
            previous.append((signum, old))
    try:
        yield
    finally:
        for signum, old in previous:
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
