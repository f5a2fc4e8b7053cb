"""Batch runner: bounded concurrency, outcomes in input order, failures isolated, exit codes."""

from __future__ import annotations

import threading
import time

import pytest

from vnarrate.errors import ApiError, InputError
from vnarrate.runs.driver import Outcome, exit_code, run_batch, summary


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
