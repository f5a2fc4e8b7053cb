"""Batch API runs (--batch): many inputs -> their chat requests in Batch API rounds -> outcomes.

Takes a Batch (the inputs), the command's work per input (check targets -> flow -> write) and a
deferring session; gives the exit code. A round replays every unfinished input's work: answers
come from the response cache; a request without one goes into the round's JSONL files and stops
that input before it writes anything. The files are uploaded and submitted (server/batches.py),
the run waits and shows each batch's status, then every answer goes into the cache under the
key a normal run uses, and the next round replays. Follow-up requests (a merge, a shortening)
surface in that round; when a round sends nothing, every input has finished exactly as a normal
run would, from the cache. The state file (batch_state.py) records every step, so a killed run
resumes without uploading or submitting anything twice; --no-wait submits and leaves.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from ..errors import ApiError, ConfigError, UsageError, redact
from ..models import Usage
from ..server.batches import FINISHED_WITH_OUTPUT, BatchServer, BatchStatus, ResultLine
from ..server.prices import format_usd
from ..vision.chat import AnswerMismatch, answer_from_body, store_answer
from .batch_state import (
    REPAIR,
    SCHEMAS,
    FileState,
    Ledger,
    RunState,
    fingerprint,
    load_state,
    new_state,
    save_state,
    state_path,
)
from .deferring import Deferred, DeferringSession
from .driver import Batch, ImagesWork, Outcome, Work, run_batch
from .interrupt import ACTIVITY

FIRST_POLL_S = 5.0  # then twice as long each time, up to --batch-poll


def run_all(batch: Batch, work: Work, images: ImagesWork | None = None) -> int:
    """The command's work over every input: at once, or through the Batch API (--batch)."""
    if isinstance(batch.session, DeferringSession):
        return BatchRun(batch, batch.session).run(work, images)
    return batch.run(work, images)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{max(1, round(n / 1e3))} kB"


def _unanswered(st: BatchStatus) -> str:
    """Why a request of a finished batch has no line in its output or error file."""
    again = "; run the same command again to send it again"
    if st.status == "expired":
        return f"batch {st.id} expired before it answered this request (24 h window){again}"
    if st.status in ("cancelled", "cancelling"):
        return f"batch {st.id} was cancelled before it answered this request{again}"
    if st.status == "failed":
        reasons = "; ".join(st.errors[:3]) or "no reason given"
        return f"the Batch API refused batch {st.id}: {reasons}"
    return f"batch {st.id} ended ({st.status}) without an answer to this request"


class BatchRun:
    """One --batch run: rounds of replay, submit, wait and collect, then the outcomes."""

    def __init__(self, batch: Batch, session: DeferringSession) -> None:
        self.batch, self.session = batch, session
        self.settings, self.reporter = batch.settings, batch.reporter
        self.fp = fingerprint(batch, session.options)
        self.path = state_path(batch, self.fp)
        self.finished: dict[str, Outcome] = {}
        self.shown: set[str] = set()  # batches whose status this process has shown
        self.state: RunState = new_state(self.fp, batch.command)
        self.ledger = Ledger(self.state, self.path.parent, self.path.stem)
        self.server = BatchServer(
            session.client,
            base_url=self.settings.base_url,
            key=session.key,
            provider=session.options.provider,
        )

    def _save(self) -> None:
        save_state(self.path, self.state)

    # -- the run --

    def run(self, work: Work, images: ImagesWork | None) -> int:
        if self.session.cache is None:
            raise UsageError("--batch keeps the answers in the response cache: drop --no-cache")
        self.server.check()
        self._load()
        while True:
            pending = self._running() or any(f.batch_id is None for f in self.state.files)
            if pending and not self._send_and_wait():
                return self._leave()
            self._replay(work, images)
            files = self.ledger.close_round()
            if not files:
                return self._finish()
            self.state.files.extend(files)
            self._save()  # the round's requests and their files, together
            sent = sum(len(f.custom_ids) for f in files)
            self.reporter.say(
                f"Batch API round {self.state.rounds}: {sent} request(s) in {len(files)} file(s)"
            )

    def _load(self) -> None:
        loaded = load_state(self.path, self.fp, self.batch.command)
        if loaded is None:
            return
        self.state = loaded
        for label, outcome in list(loaded.done.items()):
            written = outcome.get("record", {}).get("outputs") or []
            if not all(Path(p).exists() for p in written):
                del loaded.done[label]  # its outputs are gone: made again (from the cache)
        self.ledger = Ledger(loaded, self.path.parent, self.path.stem)
        if loaded.finished:
            # The last run reported every input; now its failed requests are sent again.
            loaded.attempt += 1
            loaded.finished = False
            self.ledger.retry_failed()
            self.reporter.say(f"{self.path}: the last run had failures; trying those again")
        else:
            self.reporter.say(f"resuming the batch run recorded in {self.path}")

    def _replay(self, work: Work, images: ImagesWork | None) -> None:
        """Every unfinished input's work, with the chat answering from the cache; an input whose
        request has no answer yet stops (Deferred) and waits for the next round."""
        self.session.ledger = self.ledger
        ended = self.finished.keys() | self.state.done.keys()
        labels = [u for u in self.batch.units if u not in ended]
        deferred: set[str] = set()
        lock = threading.Lock()

        def attempt(label: str) -> Outcome:
            try:
                return self.batch.unit(label, work, images)
            except Deferred:
                with lock:
                    deferred.add(label)
                return Outcome(input=label, status="skipped")

        secrets = self.session.secrets
        outcomes = run_batch(
            labels,
            attempt,
            jobs=self.settings.jobs,
            emit=lambda _: None,
            redact=lambda text: redact(text, *secrets),
        )
        for label, outcome in zip(labels, outcomes, strict=True):
            if label in deferred:
                continue
            self.finished[label] = outcome
            if outcome.status == "ok":
                self.state.done[label] = outcome.model_dump(mode="json")

    # -- submitting --

    def _running(self) -> list[FileState]:
        return [f for f in self.state.files if f.batch_id is not None and not f.collected]

    def _submit(self) -> None:
        for f in list(self.state.files):
            if f.batch_id is None:
                self._submit_one(f)

    def _submit_one(self, f: FileState) -> None:
        """Upload a file and start its batch. The step is written down before each call, so a
        run killed in between looks the file or the batch up instead of making another."""
        server, path = self.server, self.path.parent / f.name
        if f.file_id is None:
            if f.step == "uploading":
                f.file_id = server.find_upload(f.name)
            if f.file_id is None:
                if not path.is_file():
                    self._forget(f)
                    return
                f.step = "uploading"
                self._save()
                f.file_id = server.upload(path)
            f.step = "uploaded"
            self._save()
        if f.step == "submitting":
            f.batch_id = server.find_batch(f.file_id, since=self.state.created_at - 3600)
        if f.batch_id is None:
            f.step = "submitting"
            self._save()
            meta = {"vnarrate_run": self.state.run_id, "vnarrate_file": f.name}
            f.batch_id = server.submit(f.file_id, metadata=meta)
        f.step = "submitted"
        self._save()
        path.unlink(missing_ok=True)
        self.reporter.say(
            f"submitted batch {f.batch_id}: {len(f.custom_ids)} request(s), "
            f"{_size(f.bytes)}, {f.name}"
        )

    def _forget(self, f: FileState) -> None:
        """A file that was never uploaded and is gone from disk: its requests are built again."""
        self.state.files.remove(f)
        for cid in f.custom_ids:
            self.state.requests.pop(cid, None)
        self.ledger = Ledger(self.state, self.path.parent, self.path.stem)
        self._save()

    # -- waiting --

    def _send_and_wait(self) -> bool:
        """Submit what is built, then wait (see _wait). Interrupted (Ctrl-C) or failing, the
        state is kept, the batches keep running, and the message says how to resume."""
        # A signal ends the process at once (runs/interrupt.py): the state is on disk after
        # every step, and the last line says what keeps running and how to resume.
        ACTIVITY.farewell = self._farewell
        try:
            self._submit()
            return self._wait(block=self.settings.batch_wait)
        except KeyboardInterrupt:
            self._save()
            self.reporter.warn(self._farewell())
            raise
        except ApiError as exc:
            self._save()
            raise ApiError(
                exc.message,
                hint="batches submitted keep running on the server; run the same command again "
                "to resume",
            ) from None
        finally:
            ACTIVITY.farewell = None

    def _farewell(self) -> str:
        ids = ", ".join(str(f.batch_id) for f in self._running())
        running = f"the batches keep running on the server ({ids}). " if ids else ""
        return f"{running}Run the same command again to resume (state: {self.path})"

    def _wait(self, *, block: bool) -> bool:
        """Poll every running batch until all are done (True) or, without `block`, once (False
        when some still run): every 5 s at first, then twice as long, up to --batch-poll."""
        delay = min(FIRST_POLL_S, self.settings.batch_poll)
        while True:
            for f in self._running():
                self._poll(f)
            if not self._running():
                return True
            if not block:
                return False
            time.sleep(delay)
            delay = min(delay * 2, self.settings.batch_poll)

    def _poll(self, f: FileState) -> None:
        assert f.batch_id is not None
        st = self.server.status(f.batch_id)
        shown = st.counts()
        if shown != f.counts or f.batch_id not in self.shown:
            self.shown.add(f.batch_id)
            f.counts, f.status = shown, st.status
            self.reporter.say(f"batch {f.batch_id}: {shown}")
            self._save()
        if st.done:
            self._collect(f, st)
            f.collected = True
            self._save()

    # -- collecting --

    def _collect(self, f: FileState, st: BatchStatus) -> None:
        """Every line of a finished batch's output and error files: answers into the cache,
        failures noted for their inputs; requests with no line fail with the batch's reason."""
        lines: list[ResultLine] = []
        if st.status in FINISHED_WITH_OUTPUT:
            for file_id in (st.output_file_id, st.error_file_id):
                if file_id:
                    lines += self.server.read(file_id)
        ours, seen = set(f.custom_ids), set()
        for line in lines:
            if line.status_code is None and st.status != "completed":
                continue  # never run (an expired or cancelled batch): the batch's reason below
            if line.custom_id in ours and line.custom_id not in seen:
                seen.add(line.custom_id)
                self._take(line)
        why = _unanswered(st)
        for cid in f.custom_ids:
            if cid not in seen:
                self._fail(cid, why)
        if st.status == "failed":
            self.reporter.error(why)
        cache = self.session.cache
        if cache is not None and not cache.writable:
            raise ConfigError(
                f"cannot write the response cache in {cache.root}: --batch keeps its answers there",
                hint="fix the folder's permissions or pass --cache-dir, then run again to collect",
            )

    def _fail(self, cid: str, why: str) -> None:
        req = self.state.requests.get(cid)
        if req is not None and req.status == "sent":
            req.status, req.error = "failed", redact(why, self.session.key)

    def _take(self, line: ResultLine) -> None:
        req = self.state.requests.get(line.custom_id)
        if req is None or req.status != "sent":
            return
        if line.error is not None:
            self._fail(line.custom_id, line.error)
            return
        schema = SCHEMAS.get(req.schema_name)
        if schema is None:
            self._fail(line.custom_id, f"no answer of type {req.schema_name!r} is expected")
            return
        repaired = line.custom_id.endswith(REPAIR)
        options, key = self.session.options.chat, self.session.key
        try:
            answer, usage = answer_from_body(schema, line.body, options, key=key, repaired=repaired)
        except AnswerMismatch as m:
            req.status = "repair"  # the next round sends the repair turn a live run would send
            req.mismatch = {"content": m.content, "detail": m.detail, "usage": m.usage.model_dump()}
            return
        except ApiError as exc:
            self._fail(line.custom_id, str(exc))
            return
        first = self.state.requests.get(req.key) if repaired else None
        if first is not None and first.mismatch is not None:
            usage = usage + Usage.model_validate(first.mismatch.get("usage") or {})
        assert self.session.cache is not None
        store_answer(self.session.cache, req.key, answer, usage)
        req.status = "answered"

    # -- the end --

    def _leave(self) -> int:
        """--no-wait: the batches run on; their ids on stdout, how to collect on stderr."""
        ids = [str(f.batch_id) for f in self._running()]
        if self.batch.as_json:
            doc = {"status": "submitted", "batches": ids, "state": str(self.path)}
            self.reporter.product(json.dumps(doc))
        else:
            for batch_id in ids:
                self.reporter.product(batch_id)
        self.reporter.say(
            f"{len(ids)} batch(es) running on the server; run the same command again to "
            f"collect the answers and finish (state: {self.path})"
        )
        return 0

    def _finish(self) -> int:
        outcomes = []
        for label in self.batch.units:
            if label in self.finished:
                outcomes.append(self.finished[label])
            elif label in self.state.done:
                outcomes.append(Outcome.model_validate(self.state.done[label]))
            else:  # deferred with nothing left to send: cannot happen, but never lose an input
                outcomes.append(
                    Outcome(
                        input=label,
                        status="error",
                        exit_code=5,
                        error="the Batch API gave no answer for this input",
                    )
                )
        code = self.batch.report(outcomes)
        answered = sum(1 for r in self.state.requests.values() if r.status == "answered")
        if answered:
            costs = [o.record.get("cost_usd") for o in outcomes if o.status == "ok"]
            known = [c for c in costs if isinstance(c, int | float)]
            total = format_usd(sum(known)) if len(known) == len(costs) else "unknown"
            self.reporter.say(
                f"Batch API: {answered} answer(s) from {len(self.state.files)} batch(es), chat "
                f"at half price; the run cost {total}"
            )
        if code == 0:
            self.path.unlink(missing_ok=True)
        else:
            self.state.finished = True
            self._save()
        return code
