"""The batch driver: one command over many inputs -> an Outcome per input and an exit code.

Takes what the user named (paths, folders, URLs, `-`) and a function that processes one input;
expands and names the inputs (inputs.py), runs the function `--jobs` at a time, reports outcomes
in input order as soon as each (and every one before it) is done, through a small Reporter (the
CLI's stderr/stdout, or anything else), and gives the documented exit code. A failing input never
stops the others (with --verbose, an unexpected error shows its traceback). A signal or a closed
stdout ends the whole run at once (interrupt.py); atomic writes and the partial run manifest
mean no output is ever left half written, and a rerun resumes.
"""

from __future__ import annotations

import functools
import json
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

from pydantic import BaseModel, Field

from ..errors import InputError, VnarrateError, redact
from ..media import load_media_libraries
from ..media.probe import check_file
from ..session import Session, open_session
from ..settings import Settings
from .deferring import deferring
from .inputs import Input, assign_stems, check_mix, expand_inputs, output_path
from .interrupt import ACTIVITY, stdout_closed
from .manifest import manifest_complete, manifest_suffix

Progress = Callable[[int, int], None]


class Reporter(Protocol):
    """Where a run says what happens: diagnostics (stderr in the CLI) and products (stdout)."""

    def info(self, msg: str) -> None:
        """What happens, for --verbose (or a terminal)."""

    def say(self, msg: str) -> None:
        """A result line for people (summaries, files written), unless --quiet."""

    def warn(self, msg: str) -> None: ...

    def debug(self, msg: str) -> None:
        """Details for --verbose only (a traceback), never on stdout."""

    def error(self, msg: str) -> None: ...

    def product(self, text: str) -> None:
        """The product itself: a description, a plan, or one JSON line (stdout in the CLI)."""

    def progress(self, label: str) -> Progress | None:
        """A progress callback for one input, or None when nobody watches."""

    def begin(self, total: int) -> None:
        """A batch of `total` inputs starts."""

    def start(self, label: str) -> None:
        """One input starts."""

    def end(self, label: str) -> None:
        """One input has ended (done, failed or skipped)."""

    def finish(self) -> None:
        """The batch has ended."""


Status = Literal["ok", "error", "skipped"]


class Outcome(BaseModel):
    """What happened to one input: its JSONL record, and the text for stdout (if any)."""

    input: str
    status: Status = "ok"
    exit_code: int = 0
    error: str | None = None
    record: dict[str, Any] = Field(default_factory=dict)
    text: str | None = None
    detail: str | None = Field(default=None, exclude=True)  # an unexpected error's traceback

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
                detail=redact(traceback.format_exc()),
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
        load_media_libraries()
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


Work = Callable[[Input], Outcome]
ImagesWork = Callable[[list[Input]], Outcome]


class Batch:
    """One command over many inputs: expansion, naming, grouping, skipping, concurrency,
    products or JSON lines, the exit code."""

    def __init__(
        self,
        args: Sequence[str],
        settings: Settings,
        reporter: Reporter,
        *,
        command: str,
        recursive: bool = False,
        as_json: bool = False,
        skip_existing: bool = False,
        stdin: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.reporter = reporter
        self.command = command
        self.as_json = as_json
        self.skip_existing = skip_existing
        # Where each input's run manifest is (a job that names its outputs after -o says so).
        self.manifest_path: Callable[[Input], Path] | None = None
        self._warned: set[str] = set()
        ACTIVITY.begin(command)
        warnings: list[str] = []
        self.inputs = expand_inputs(args, recursive=recursive, stdin=stdin, warnings=warnings)
        for w in warnings:
            reporter.warn(w)
        self.stems = assign_stems(self.inputs)
        self.session: Session | None = None
        # Videos run one by one; images (files and URLs) go together in one request.
        groups = check_mix(
            [inp.kind for inp in self.inputs],
            command=command,
            names=[inp.source for inp in self.inputs],
        )
        self.units: dict[str, list[Input]] = {}
        for group in groups:
            members = [self.inputs[i] for i in group.indexes]
            label = members[0].source
            if group.kind == "images":
                label = " + ".join(m.source for m in members)
            self.units[label] = members

    @property
    def single(self) -> bool:
        return len(self.inputs) == 1

    def open_session(self, *, chat: bool = True, speech: bool = False) -> Session:
        """The run's session (client, cache, options); fails early (exit 3) without a key for a
        server the run uses (`chat`: the vision server, `speech`: the speech server). With
        --batch its chat answers from the cache or defers (runs/batch_api.py)."""
        self.session = open_session(
            self.settings,
            report=self._info,
            warn=self.reporter.warn,
            chat=chat,
            speech=speech,
        )
        if self.settings.batch:
            self.session = deferring(self.session)
        self._cache_warnings()
        return self.session

    def _info(self, msg: str) -> None:
        ACTIVITY.note(msg)  # "INPUT: what happens" is what a signal would interrupt
        self.reporter.info(msg)

    def _cache_warnings(self) -> None:
        """Cache trouble as it happens (a write fails mid-run, not only at the start), once."""
        cache = self.session.cache if self.session is not None else None
        for w in cache.warnings if cache is not None else []:
            if w not in self._warned:
                self._warned.add(w)
                self.reporter.warn(w)

    def path_for(self, inp: Input, suffix: str) -> Path:
        return output_path(self.settings.out_dir, self.stems[inp], suffix)

    def manifest_for(self, inp: Input) -> Path:
        if self.manifest_path is not None:
            return self.manifest_path(inp)
        return self.path_for(inp, manifest_suffix(self.command))

    def _skip(self, inp: Input) -> bool:
        return self.skip_existing and manifest_complete(
            self.manifest_for(inp), command=self.command
        )

    def _unit(self, label: str, work: Work, images: ImagesWork | None) -> Outcome:
        ACTIVITY.start(label)
        try:
            return self._one(label, work, images)
        finally:
            ACTIVITY.end(label)

    def _one(self, label: str, work: Work, images: ImagesWork | None) -> Outcome:
        members = self.units[label]
        for m in members:  # a FIFO or a device is refused before anything reads from it
            if m.kind != "url" and m.source != "-":
                check_file(Path(m.source))
        if len(members) > 1 or members[0].kind != "video":
            if images is None:
                raise InputError(
                    f"{label}: `{self.command}` takes videos",
                    hint="images can only be described: vnarrate describe",
                )
            return images(members).model_copy(update={"input": label})
        inp = members[0]
        if self._skip(inp):
            return Outcome(input=label, status="skipped", record={"reason": "complete"})
        self.reporter.start(label)
        try:
            return work(inp)
        finally:
            self.reporter.end(label)

    def _emit(self, outcome: Outcome) -> None:
        try:
            self._cache_warnings()
            self._show(outcome)
        except BrokenPipeError:  # nobody reads any more (`| head -1`): stop quietly
            stdout_closed()

    def _show(self, outcome: Outcome) -> None:
        if outcome.status == "error":
            if outcome.detail:
                self.reporter.debug(outcome.detail.rstrip("\n"))
            msg = outcome.error or ""  # input errors already start with the path
            named = msg.startswith(f"{outcome.input}:")
            self.reporter.error(msg if named else f"{outcome.input}: {msg}")
        elif outcome.status == "skipped":
            self.reporter.say(f"{outcome.input}: skipped (already complete)")
        if self.as_json:
            self.reporter.product(json.dumps(outcome.as_record(), ensure_ascii=False))
        elif outcome.text:
            self.reporter.product(outcome.text.rstrip("\n"))

    def run(self, work: Work, images: ImagesWork | None = None) -> int:
        """Run `work` per video (and `images` once for all images); report every outcome in
        input order; give the documented exit code."""
        secrets = self.session.secrets if self.session else []
        self.reporter.begin(len(self.units))
        try:
            outcomes = run_batch(
                list(self.units),
                lambda label: self._unit(label, work, images),
                jobs=self.settings.jobs,
                emit=self._emit,
                redact=lambda text: redact(text, *secrets),
            )
        finally:
            self.reporter.finish()
        if len(self.units) > 1:
            self.reporter.say(summary(outcomes))
        return exit_code(outcomes)

    def unit(self, label: str, work: Work, images: ImagesWork | None = None) -> Outcome:
        """One unit (a video, or all the images), as `run` does it: skipped when complete."""
        return self._unit(label, work, images)

    def report(self, outcomes: Sequence[Outcome]) -> int:
        """Report outcomes gathered elsewhere (a --batch run) as `run` does: in input order, a
        summary, the exit code."""
        for outcome in outcomes:
            self._emit(outcome)
        if len(self.units) > 1:
            self.reporter.say(summary(outcomes))
        return exit_code(outcomes)
