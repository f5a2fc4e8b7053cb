"""Reporters: plain lines on a pipe, a live board (one line per input in flight, an overall bar)
on a terminal, nothing at all for Python callers; short names, not repeated absolute paths."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from vnarrate.runs.terminal import SilentReporter, TerminalReporter, short_name


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_short_names(tmp_path: Path) -> None:
    assert short_name(os.path.join(os.getcwd(), "a", "clip.mp4")) == os.path.join("a", "clip.mp4")
    assert short_name("/somewhere/else/videos/clip.mp4") == "videos/clip.mp4"
    assert short_name("https://example.com/a.jpg") == "https://example.com/a.jpg"


def test_on_a_pipe_only_results_warnings_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    r = TerminalReporter(stderr=err)
    r.begin(2)
    r.start("a.mp4")
    r.info("a.mp4: asking the model")  # progress is for people watching, or --verbose
    assert r.progress("a.mp4") is None
    r.warn("careful")
    r.say("a.mp4: wrote a.md")
    r.end("a.mp4")
    r.finish()
    r.product('{"input": "a.mp4"}')
    assert err.getvalue().splitlines() == ["vnarrate: warning: careful", "a.mp4: wrote a.md"]
    assert capsys.readouterr().out == '{"input": "a.mp4"}\n'


def test_verbose_on_a_pipe_says_everything() -> None:
    err = io.StringIO()
    TerminalReporter(verbose=True, stderr=err).info("a.mp4: asking the model")
    assert err.getvalue() == "a.mp4: asking the model\n"


def test_quiet_keeps_only_errors() -> None:
    err = Tty()
    r = TerminalReporter(quiet=True, stderr=err)
    r.begin(1)
    r.info("x")
    r.say("y")
    r.warn("z")
    r.error("bad")
    r.finish()
    assert err.getvalue() == "vnarrate: error: bad\n"


def test_board_shows_inputs_in_flight_by_short_name() -> None:
    err = Tty()
    r = TerminalReporter(stderr=err)
    r.begin(2)
    long = os.path.join(os.getcwd(), "videos", "first.mp4")
    r.start(long)
    r.start("second.mp4")
    count = r.progress(long)
    assert count is not None
    count(3, 10)
    r.info(f"{long}: asking gpt-5.4-mini")  # becomes the input's stage, not a line of its own
    r.warn("something to know")  # printed above the board
    time.sleep(0.3)  # the board redraws 10 times a second
    threads = [threading.Thread(target=r.end, args=(label,)) for label in (long, "second.mp4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r.finish()
    out = err.getvalue()
    assert "vnarrate: warning: something to know" in out
    assert os.path.join("videos", "first.mp4") in out and long not in out
    assert "asking gpt-5.4-mini" in out and "3/10" in out


def test_silent_reporter_says_nothing() -> None:
    s = SilentReporter()
    s.begin(1)
    s.start("a")
    s.info("a: b")
    s.error("c")
    s.end("a")
    s.finish()
    assert s.progress("a") is None


SPEECH = "speech via auto: compatible server, so its /audio/speech endpoint, 3 segments, --jobs 2"


def test_board_says_what_happens_not_why() -> None:
    err = Tty()
    r = TerminalReporter(stderr=err)
    r.begin(2)
    r.start("a.mp4")
    r.info("a.mp4: transcribing 2 stretch(es) of speech with gpt-4o-transcribe")
    r.info(f"a.mp4: {SPEECH}")
    r.warn("a.mp4: a note")  # a line above the board, named as the board names it
    r.finish()  # the board's last drawing: speaking, not transcribing any more
    out = err.getvalue()
    last = out.rsplit("a.mp4", 1)[-1]
    assert "speaking" in last and "3 lines" in last and "transcribing" not in last
    assert "compatible server" not in out and "vnarrate: warning: a.mp4: a note" in out


def test_verbose_on_a_terminal_keeps_the_full_lines() -> None:
    err = Tty()
    r = TerminalReporter(verbose=True, stderr=err)
    r.begin(2)
    r.start("a.mp4")
    r.info(f"a.mp4: {SPEECH}")
    r.finish()
    assert f"a.mp4: {SPEECH}" in err.getvalue()


def test_stages_set_directly_reach_the_board_while_it_is_up() -> None:
    from vnarrate.runs.interrupt import ACTIVITY

    err = Tty()
    r = TerminalReporter(stderr=err)
    r.begin(2)
    r.start("a.mp4")
    r.info(f"a.mp4: {SPEECH}")
    ACTIVITY.stage("a.mp4", "script and speech")  # the job's own name for its part: not shown
    ACTIVITY.stage("a.mp4", "writing out/a.narration.mp3")
    r.finish()
    last = err.getvalue().rsplit("a.mp4", 1)[-1]
    assert "saving" in last and " narration.mp3" in last and "speaking" not in last
    assert "script and speech" not in err.getvalue()
    assert ACTIVITY.on_stage is None  # no board, nobody to tell
