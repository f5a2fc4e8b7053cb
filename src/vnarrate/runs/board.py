"""The live board: what each input in flight is doing, drawn to fit the terminal's width.

Takes the runs layer's "INPUT: what happens" messages and frame counts (through
TerminalReporter, terminal.py); gives a rich renderable (BoardView) of one line per input in
flight under an overall line, and the Board that keeps it live on stderr. Each line is the short
name, the stage ("transcribing", "speaking"), a bar and its count, the elapsed time, and a short
status ("3 lines"); at any width the status is what gives way (cut with an ellipsis), never the
name, the stage, the count or the time. A message becomes a stage and a status by `stage_of`:
what happens, for people, not the --verbose reasoning (that stays in -v lines). A new stage
replaces the status and drops the counts of the one before. rich is imported only when a board
is drawn.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

STARTING = "starting"
FRAMES = "reading frames"  # the stage the frame counts belong to (every progress callback)
STAGE_CHARS = 14  # the stage column: the longest stage of _STAGES
BAR_CHARS = 20  # the bar's widest


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


def _n(count: str, one: str, many: str) -> str:
    return f"{count} {one if count == '1' else many}"


# What a message says happens -> (stage, status). The messages are pipeline's and session's
# --verbose lines; the board says what, not why ("speech via auto: compatible server, so ..."
# is "speaking 3 lines").
_STAGES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[str, str]]]] = [
    (re.compile(r"(\d+) frames from .*, asking (\S+)"),
     lambda m: ("describing", f"{_n(m[1], 'frame', 'frames')} with {m[2]}")),
    (re.compile(r"packed (\d+) frames into (\d+) sheet"),
     lambda m: ("packing", f"{m[1]} frames into {_n(m[2], 'sheet', 'sheets')}")),
    (re.compile(r"request (\d+)/(\d+)"), lambda m: ("describing", f"request {m[1]}/{m[2]}")),
    (re.compile(r"merging (\d+) partial"), lambda m: ("merging", f"{m[1]} partial descriptions")),
    (re.compile(r"transcribing (\d+) stretch"),
     lambda m: ("transcribing", _n(m[1], "stretch of speech", "stretches of speech"))),
    (re.compile(r"finding the voice's pace"), lambda m: ("pacing", "measuring the voice")),
    (re.compile(r"word budgets at ([\d.]+) words/s"), lambda m: ("pacing", f"{m[1]} words/s")),
    (re.compile(r"speech in (\d+) stretch\S*; (\d+) slot"),
     lambda m: ("planning", f"{_n(m[2], 'slot', 'slots')} between speech")),
    (re.compile(r"writing an? .*script \((\d+)/(\d+)\)"),
     lambda m: ("writing script", f"part {m[1]}/{m[2]}" if m[2] != "1" else "")),
    (re.compile(r"(\d+) line\(s\) over their word budget"),
     lambda m: ("shortening", _n(m[1], "line", "lines"))),
    (re.compile(r"speech via .*, (\d+) segments, --jobs"),
     lambda m: ("speaking", _n(m[1], "line", "lines"))),
    (re.compile(r"verify: hearing (\d+) line"),
     lambda m: ("verifying", f"hearing {_n(m[1], 'line', 'lines')} back")),
    (re.compile(r"verify: (.*)"), lambda m: ("verifying", m[1])),
    (re.compile(r"muxing into (.*)"), lambda m: ("muxing", f"into {os.path.basename(m[1])}")),
    (re.compile(r"wrote (.*)"), lambda m: ("saving", os.path.basename(m[1]))),
    (re.compile(r"writing (.*)"), lambda m: ("saving", os.path.basename(m[1]))),
    (re.compile(r"drawing (.*)"), lambda m: ("drawing", os.path.basename(m[1]))),
]  # fmt: skip


def stage_of(what: str) -> tuple[str, str]:
    """(stage, status) of "what happens" (a message without its input); an unknown message
    keeps the stage ("") and shows what it says before its first colon: what, not why."""
    for pattern, show in _STAGES:
        m = pattern.match(what)
        if m:
            return show(m)
    return "", " ".join(what.split(": ", 1)[0].split())


@dataclass
class Row:
    """One input in flight (or, for the overall line, all of them)."""

    name: str
    started: float = field(default_factory=time.monotonic)
    stage: str = ""  # "starting" for an input in flight, until it says what it does
    status: str = ""
    done: int = 0
    total: int | None = None


def _elapsed(seconds: float) -> str:
    s = int(max(0.0, seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def _fit_name(name: str, width: int) -> str:
    """`name` in `width` characters: its start and, mostly, its end (the file's own name)."""
    if len(name) <= width:
        return name
    if width <= 1:
        return name[:width]
    head = min(4, (width - 1) // 4)
    return name[:head] + "…" + name[len(name) - (width - 1 - head) :]


class BoardView:
    """The board's lines at the width the console gives (a rich renderable, thread-safe)."""

    def __init__(
        self, total: int, *, first: str = STARTING, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._first = first  # an input's stage until it says what it does
        self._clock = clock
        self.overall = Row("inputs", started=clock(), total=max(1, total))
        self.rows: dict[str, Row] = {}
        self.single = total <= 1  # one input: its own line is the whole board
        self._spinner: Any = None  # rich's Spinner, made at the first drawing
        # The widest name and count shown so far: columns do not move as inputs come and go.
        self._widest = {"name": 0, "count": 0}

    def add(self, label: str) -> None:
        with self._lock:
            self.rows[label] = Row(short_name(label), started=self._clock(), stage=self._first)

    def remove(self, label: str) -> None:
        with self._lock:
            self.rows.pop(label, None)
            self.overall.done += 1

    def count(self, label: str, done: int, total: int) -> None:
        """Frames read of `total` (the only counts the runs layer gives): shown while reading
        frames is the input's stage; once a later stage began, they are not its counts."""
        with self._lock:
            row = self.rows.get(label)
            if row is None or row.stage not in (self._first, FRAMES):
                return
            row.stage, row.done, row.total = FRAMES, done, total

    def say(self, label: str, what: str) -> bool:
        """Show `what` happens to `label` (if it is in flight): a new stage replaces the status
        and drops the counts of the one before."""
        stage, status = stage_of(what)
        with self._lock:
            row = self.rows.get(label)
            if row is None:
                return False
            if stage and stage != row.stage:
                row.stage, row.done, row.total = stage, 0, None
            # "clip.srt" on clip.mp4's line is "srt": the line already names the clip.
            stem = os.path.splitext(os.path.basename(row.name))[0] + "."
            row.status = status.removeprefix(stem) if stage else status
            return True

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        with self._lock:
            rows = [] if self.single else [_copy(self.overall)]
            rows += [_copy(r) for r in self.rows.values()]
        if self._spinner is None:
            from rich.spinner import Spinner

            self._spinner = Spinner("dots")
        now = self._clock()
        frame = self._spinner.render(now)
        for row in rows:
            self._widest["name"] = max(self._widest["name"], len(row.name))
            whole = f"{row.total}/{row.total}" if row.total is not None else ""
            self._widest["count"] = max(self._widest["count"], len(whole))
        yield from _lines(rows, console, options, now, str(frame), self._widest)


def _copy(row: Row) -> Row:
    return Row(row.name, row.started, row.stage, row.status, row.done, row.total)


def _count(row: Row) -> str:
    return f"{row.done}/{row.total}" if row.total is not None else ""


def _lines(
    rows: list[Row], console: Any, options: Any, now: float, spin: str, widest: dict[str, int]
) -> Iterator[Any]:
    """One Text per row: name, stage, bar and count, elapsed at widths that fit the console; the
    status takes what is left (none below 6 characters), cut with an ellipsis."""
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    if not rows:
        return
    width = options.max_width
    name_w = min(widest["name"], max(8, width * 3 // 10))
    stage_w, count_w = STAGE_CHARS, widest["count"]
    time_w = max(len(_elapsed(now - r.started)) for r in rows)
    fixed = 2 + name_w + 1 + stage_w + 1 + (count_w + 1 if count_w else 0) + time_w
    room = width - fixed - 1
    bar_w = min(BAR_CHARS, max(6, room // 3)) if room >= 6 else 0
    status_w = room - bar_w - 1 if bar_w else room
    for row in rows:
        line = Text(no_wrap=True, overflow="ellipsis", end="\n")
        line.append(spin, style="green")
        line.append(" " + _fit_name(row.name, name_w).ljust(name_w) + " ", style="bold")
        line.append(_fit_name(row.stage, stage_w).ljust(stage_w) + " ", style="cyan")
        if bar_w:
            bar = ProgressBar(row.total, row.done, width=bar_w, pulse=row.total is None,
                              animation_time=now)  # fmt: skip
            drawn = Text()
            # Without colours a pulse would look like a full bar: no counts, no bar.
            if row.total is not None or console.color_system is not None:
                for seg in console.render(bar, options.update_width(bar_w)):
                    drawn.append(seg.text, style=seg.style)
            # Without colours rich leaves the bar's undone part out: keep the columns aligned.
            line.append_text(drawn)
            line.append(" " * (bar_w - drawn.cell_len + 1))
        if count_w:
            line.append(_count(row).rjust(count_w) + " ")
        line.append(_elapsed(now - row.started).rjust(time_w), style="yellow")
        if row.status and status_w >= 6:
            status = Text(" " + row.status, style="dim")
            status.truncate(status_w + 1, overflow="ellipsis")
            line.append_text(status)
        yield line


class Board:
    """The board kept live on `stream` (10 redraws a second) until stopped; lines printed
    through it go above it."""

    def __init__(self, total: int, stream: TextIO, *, stderr: bool, first: str = STARTING) -> None:
        from rich.console import Console
        from rich.live import Live

        self.view = BoardView(total, first=first)
        self._seen: set[str] = set()
        self._console = Console(file=stream, stderr=stderr)
        self._live = Live(self.view, console=self._console, refresh_per_second=10, transient=True)
        self._live.start()

    def add(self, label: str) -> None:
        self._seen.add(label)
        self.view.add(label)

    def remove(self, label: str) -> None:
        self.view.remove(label)

    def count(self, label: str, done: int, total: int) -> None:
        self.view.count(label, done, total)

    def follow(self, label: str, what: str) -> None:
        """A stage set directly (runs/interrupt.ACTIVITY: "writing clip.srt"): shown when it is
        one of the board's stages (not the job's own names for its parts)."""
        if stage_of(what)[0]:
            self.view.say(label, what)

    def stage(self, msg: str) -> bool:
        """Show `msg` ("INPUT: what happens") on its input's line; False when it names none."""
        for label in list(self.view.rows):
            if msg.startswith(f"{label}: "):
                return self.view.say(label, msg[len(label) + 2 :])
        return False

    def shorten(self, msg: str) -> str:
        """`msg` with the input it names first (if any it has seen, after "vnarrate: warning: "
        or "vnarrate: error: ") by its short name."""
        prefix = ""
        for lead in ("vnarrate: warning: ", "vnarrate: error: "):
            if msg.startswith(lead):
                prefix, msg = lead, msg[len(lead) :]
        for label in self._seen:
            if msg.startswith(f"{label}: "):
                return prefix + short_name(label) + msg[len(label) :]
        return prefix + msg

    def print(self, msg: str) -> None:
        self._console.print(msg, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self._live.stop()
