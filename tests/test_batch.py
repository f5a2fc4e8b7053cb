"""Batch runner: bounded concurrency, outcomes in input order, failures isolated, exit codes; a
bug's traceback with -v; cache trouble warned about when it happens."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import respx
from _media import make_video
from conftest import TEST_KEY, chat_response, run_cli

from vnarrate.errors import ApiError, InputError
from vnarrate.runs import jobs
from vnarrate.runs.driver import Outcome, exit_code, run_batch, summary
from vnarrate.server.cache import ResponseCache

DESC = {"title": "A test", "description": "Things happen."}


def test_outcomes_in_input_order_with_bounded_concurrency() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(name: str) -> Outcome:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02 * (5 - int(name)))  # later inputs finish first
        with lock:
            running -= 1
        return Outcome(input=name, text=name)

    emitted: list[str] = []
    outs = run_batch(
        [str(i) for i in range(5)], work, jobs=3, emit=lambda o: emitted.append(o.input)
    )
    assert emitted == ["0", "1", "2", "3", "4"]
    assert [o.input for o in outs] == emitted
    assert peak <= 3 and peak >= 2


def test_failures_are_isolated_and_coded() -> None:
    def work(name: str) -> Outcome:
        if name == "bad":
            raise InputError("bad: not a video")
        if name == "api":
            raise ApiError("rate limited")
        if name == "bug":
            raise RuntimeError("boom sk-secret-1234567890")
        return Outcome(input=name)

    outs = run_batch(
        ["ok1", "bad", "api", "bug", "ok2"],
        work,
        jobs=2,
        emit=lambda o: None,
        redact=lambda t: t.replace("sk-secret-1234567890", "***"),
    )
    assert [o.status for o in outs] == ["ok", "error", "error", "error", "ok"]
    assert [o.exit_code for o in outs] == [0, 4, 5, 1, 0]
    assert "sk-secret" not in (outs[3].error or "")
    assert exit_code(outs) == 4
    assert summary(outs) == "5 inputs: 2 ok, 3 failed"
    assert outs[1].as_record() == {
        "input": "bad",
        "status": "error",
        "error": "bad: not a video",
        "exit_code": 4,
    }


def test_all_ok_or_skipped_exits_zero() -> None:
    outs = [Outcome(input="a"), Outcome(input="b", status="skipped")]
    assert exit_code(outs) == 0
    assert summary(outs) == "2 inputs: 1 ok, 1 skipped"


def test_interrupt_propagates() -> None:
    def work(name: str) -> Outcome:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(["a"], work, jobs=1, emit=lambda o: None)


# --- through the command line ------------------------------------------------------------------


@pytest.fixture
def two_videos(tmp_path: Path) -> list[Path]:
    return [make_video(tmp_path / f"{n}.mp4", seconds=1.0) for n in "ab"]


def test_verbose_shows_the_traceback_of_an_unexpected_error_in_one_input(
    api: respx.Router,
    two_videos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    real = jobs.describe_flow

    def flaky(path: str, *args: Any, **kwargs: Any) -> Any:
        if path.endswith("a.mp4"):
            raise RuntimeError("a bug")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(jobs, "describe_flow", flaky)
    args = ["describe", *two_videos, "--frames", "1", "--no-cache"]
    quiet = run_cli(args)
    assert quiet.code == 1 and "Traceback" not in quiet.err, quiet
    assert f"{two_videos[0]}: unexpected error: RuntimeError: a bug" in quiet.err
    loud = run_cli([*args, "-v"])
    assert loud.code == 1, loud
    assert (
        "Traceback (most recent call last)" in loud.err
        and 'raise RuntimeError("a bug")' in loud.err
    )
    assert "Traceback" not in loud.out  # stderr only
    assert loud.out.count("Things happen") == 1  # the other input still ran


def test_a_cache_write_that_fails_mid_run_is_warned_about_once(
    api: respx.Router, two_videos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    api.post("/chat/completions").respond(200, json=chat_response(DESC))

    def disk_full(self: ResponseCache, key: str, suffix: str, payload: bytes) -> None:
        self._disable_writes(exc_text="No space left on device")

    monkeypatch.setattr(ResponseCache, "_write", disk_full)
    r = run_cli(["describe", *two_videos, "--frames", "1", "--jobs", "1"])
    assert r.code == 0, r
    warnings = [ln for ln in r.err.splitlines() if "cache write" in ln]
    assert len(warnings) == 1 and "No space left on device" in warnings[0], r.err
    assert warnings[0].startswith("vnarrate: warning: ")
