"""Batch stage: run one unit of work per input, concurrently and bounded, and collect outcomes.

Takes the inputs and a function that processes one; gives an Outcome per input, reported in
input order as soon as each (and every one before it) is done. A failing input never stops the
others; Ctrl-C cancels what has not started (the CLI then exits at once; atomic writes mean
no output is ever left half written).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import VnarrateError

Status = Literal["ok", "error", "skipped"]


class Outcome(BaseModel):
    """What happened to one input: its JSONL record, and the text for stdout (if any)."""

    input: str
    status: Status = "ok"
    exit_code: int = 0
    error: str | None = None
    record: dict[str, Any] = Field(default_factory=dict)
    text: str | None = None

    def as_record(self) -> dict[str, Any]:
        base: dict[str, Any] = {"input": self.input, "status": self.status}
        base.update(self.record)
        if self.status == "error":
            base.update({"error": self.error, "exit_code": self.exit_code})
        return base


def run_batch(
    inputs: Sequence[str],
    work: Callable[[str], Outcome],
    *,
    jobs: int,
    emit: Callable[[Outcome], None],
    redact: Callable[[str], str] = str,
) -> list[Outcome]:
    """Run `work` for every input with at most `jobs` at a time; emit outcomes in input order."""
    outcomes: list[Outcome | None] = [None] * len(inputs)
    next_to_emit = 0
    lock = threading.Lock()

    def guarded(i: int) -> Outcome:
        path = inputs[i]
        try:
            return work(path)
        except VnarrateError as exc:
            return Outcome(
                input=path, status="error", exit_code=exc.exit_code, error=redact(str(exc))
            )
        except Exception as exc:  # a bug in one input must not lose the others' results
            return Outcome(
                input=path,
                status="error",
                exit_code=1,
                error=redact(" ".join(f"unexpected error: {type(exc).__name__}: {exc}".split())),
            )

    def finish(i: int, outcome: Outcome) -> None:
        nonlocal next_to_emit
        with lock:
            outcomes[i] = outcome
            while next_to_emit < len(inputs) and outcomes[next_to_emit] is not None:
                done = outcomes[next_to_emit]
                assert done is not None
                emit(done)
                next_to_emit += 1

    workers = max(1, min(jobs, len(inputs)))
    if workers == 1:
        for i in range(len(inputs)):
            finish(i, guarded(i))
    else:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vnarrate-input")
        futures: list[Future[Outcome]] = []
        try:
            for i in range(len(inputs)):
                fut = pool.submit(guarded, i)
                fut.add_done_callback(functools.partial(_done, finish, i))
                futures.append(fut)
            for fut in futures:
                fut.result()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return [o for o in outcomes if o is not None]


def _done(finish: Callable[[int, Outcome], None], i: int, fut: Future[Outcome]) -> None:
    if not fut.cancelled():
        finish(i, fut.result())


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """0 when every input succeeded (or was skipped); else the first failed input's code."""
    for outcome in outcomes:
        if outcome.status == "error":
            return outcome.exit_code or 1
    return 0


def summary(outcomes: Sequence[Outcome]) -> str:
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("ok", "skipped", "error")}
    parts = [f"{counts['ok']} ok"]
    if counts["skipped"]:
        parts.append(f"{counts['skipped']} skipped")
    if counts["error"]:
        parts.append(f"{counts['error']} failed")
    return f"{len(outcomes)} inputs: " + ", ".join(parts)
