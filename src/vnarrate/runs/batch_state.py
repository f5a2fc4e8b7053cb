"""Batch API run state: what a --batch run has built, uploaded, submitted and collected.

Takes the run's inputs and the options that shape its requests; gives a state file in the out
folder named after their fingerprint (so a file from other inputs or settings is never picked
up), written atomically after every step, and the ledger the deferring session asks (answered?
failed? send this one): the round's requests go straight into JSONL files on disk, never held
in memory. A killed run reloads this file and carries on from the last step it wrote down.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from ..errors import ConfigError
from ..models import Description, Script, ShortenedLines
from ..server.batches import PartWriter
from ..session import StageOptions
from ..vision.chat import repair_body
from .driver import Batch
from .output import write_text

STATE_FORMAT = 1
REPAIR = "-repair"  # suffix of a JSON-mode repair turn's custom id
# The answers a flow may ask for, by the name their request carries.
SCHEMAS: dict[str, type[BaseModel]] = {m.__name__: m for m in (Description, Script, ShortenedLines)}

FileStep = Literal["built", "uploading", "uploaded", "submitting", "submitted"]
RequestStatus = Literal["sent", "answered", "failed", "repair"]


class FileState(BaseModel):
    """One input file and the batch that runs it."""

    name: str
    model: str = ""
    custom_ids: list[str] = Field(default_factory=list)
    bytes: int = 0
    step: FileStep = "built"  # uploading/submitting: the call was made, its answer not yet kept
    file_id: str | None = None
    batch_id: str | None = None
    status: str = ""  # the batch's own status, as last seen
    counts: str = ""  # "in_progress, 3/10 done", as last shown
    collected: bool = False


class RequestState(BaseModel):
    """One request line: its cache key, the answer's schema, and what became of it."""

    key: str
    schema_name: str
    status: RequestStatus = "sent"
    error: str | None = None
    # JSON mode: the answer that did not validate, for the repair turn a live run would send.
    mismatch: dict[str, Any] | None = None


class RunState(BaseModel):
    """Everything a --batch run must remember to resume."""

    format: int = STATE_FORMAT
    fingerprint: str
    command: str
    run_id: str
    created_at: float
    attempt: int = 1
    finished: bool = False  # the last process reported every input (some failed)
    rounds: int = 0
    files: list[FileState] = Field(default_factory=list)
    requests: dict[str, RequestState] = Field(default_factory=dict)  # by custom id
    done: dict[str, dict[str, Any]] = Field(default_factory=dict)  # unit label -> Outcome


def _identity(source: str, is_url: bool) -> list[Any]:
    if is_url:
        return [source]
    path = Path(source).resolve()
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def fingerprint(batch: Batch, options: StageOptions) -> str:
    """What makes two runs the same run: the command, every input (resolved path, size, time
    of last change) and every option that shapes a request."""
    inputs = [_identity(m.source, m.is_url) for members in batch.units.values() for m in members]
    shape = {
        name: getattr(options, name).model_dump(mode="json")
        for name in ("sampling", "pack", "prompts", "chat", "images")
    }
    shape["plan"] = options.plan.model_dump(
        mode="json",
        include={"model", "detail", "limits", "reasoning_effort", "words_per_second"}
        | {"segment_seconds"},
    )
    doc = {"format": STATE_FORMAT, "command": batch.command, "inputs": inputs, "shape": shape}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def state_path(batch: Batch, fp: str) -> Path:
    folder = batch.settings.out_dir or Path.cwd()
    return folder / f"vnarrate-batch-{batch.command}-{fp[:12]}.json"


def load_state(path: Path, fp: str, command: str) -> RunState | None:
    """The state at `path`, or None when there is none. A file that cannot be read, or that
    belongs to another run, is an error: starting over could submit what is running."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the batch state {path}: {exc.strerror or exc}") from None
    try:
        state = RunState.model_validate_json(text)
    except ValidationError:
        raise ConfigError(
            f"the batch state {path} is damaged",
            hint="delete it to start over (batches it started keep running on the server)",
        ) from None
    if state.fingerprint != fp or state.command != command or state.format != STATE_FORMAT:
        raise ConfigError(
            f"the batch state {path} belongs to another run",
            hint="delete it, or run the command that made it",
        )
    return state


def new_state(fp: str, command: str) -> RunState:
    return RunState(
        fingerprint=fp, command=command, run_id=os.urandom(4).hex(), created_at=time.time()
    )


class Ledger:
    """The deferring session's view of the run (runs/deferring.ChatLedger), backed by the state: which
    keys this run's batches answered or failed, and where the next round's requests go."""

    def __init__(self, state: RunState, folder: Path, stem: str) -> None:
        self.state, self.folder, self.stem = state, folder, stem
        self._lock = threading.Lock()
        # A request sent is in a file; one that is not (a run stopped between building a round
        # and writing it down) is built again.
        filed = {cid for f in state.files for cid in f.custom_ids}
        for cid, req in list(state.requests.items()):
            if req.status == "sent" and cid not in filed:
                del state.requests[cid]
        self._by_key: dict[str, list[str]] = {}
        for cid, req in state.requests.items():
            self._by_key.setdefault(req.key, []).append(cid)
        self.writer: PartWriter | None = None

    def _latest(self, key: str) -> RequestState | None:
        cids = self._by_key.get(key)
        return self.state.requests[cids[-1]] if cids else None

    def answered(self, key: str) -> bool:
        with self._lock:
            cids = self._by_key.get(key, [])
            return any(self.state.requests[c].status == "answered" for c in cids)

    def failure(self, key: str) -> str | None:
        with self._lock:
            req = self._latest(key)
            return req.error if req is not None and req.status == "failed" else None

    def defer(self, key: str, schema: type[BaseModel], body: dict[str, Any]) -> None:
        with self._lock:
            req = self._latest(key)
            if req is not None and req.status == "sent":
                return  # already in this round (another chunk or input asked the same)
            cid = key
            if req is not None and req.status == "repair" and req.mismatch is not None:
                cid = key + REPAIR
                body = repair_body(body, req.mismatch["content"], req.mismatch["detail"])
            if self.writer is None:
                self.state.rounds += 1
                name = f"{self.stem}-{self.state.run_id}-r{self.state.rounds}"
                self.writer = PartWriter(self.folder, name)
            self.writer.add(cid, body)
            self.state.requests[cid] = RequestState(key=key, schema_name=schema.__name__)
            cids = self._by_key.setdefault(key, [])
            if cid in cids:
                cids.remove(cid)
            cids.append(cid)

    def close_round(self) -> list[FileState]:
        """The files this round wrote (none: every input had its answers)."""
        with self._lock:
            writer, self.writer = self.writer, None
        if writer is None:
            return []
        return [
            FileState(name=p.name, model=p.model, custom_ids=p.custom_ids, bytes=p.bytes)
            for p in writer.parts
        ]

    def retry_failed(self) -> None:
        """A new attempt after a finished one: failed requests are sent again, afresh."""
        with self._lock:
            for cid, req in list(self.state.requests.items()):
                if req.status in ("failed", "repair"):
                    del self.state.requests[cid]
                    self._by_key[req.key].remove(cid)


def save_state(path: Path, state: RunState) -> None:
    write_text(path, state.model_dump_json(indent=1), force=True)
