"""Batch API: chat requests -> JSONL input files -> batches on the server -> answer lines.

Takes /chat/completions bodies with their custom ids and an OpenAI client; gives input files in
the Batch API's line format (`{custom_id, method, url, body}`), split so that none exceeds 200 MB
or 50,000 lines and each holds one model; uploads them (`purpose=batch`), submits them for 24 h,
reads a batch's status and request counts, and reads its output and error files back as lines
(`{custom_id, response: {status_code, body}, error}`), trusting none of what comes back. Also the
probe that refuses a server without the Batch API before anything is built. Knows nothing of
the pipeline: runs/batch_api.py decides what is sent and what the answers mean.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from ..errors import ApiError, ConfigError
from .advice import explain_bad_request
from .client import map_api_error, one_line

if TYPE_CHECKING:
    import openai

ENDPOINT: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"
WINDOW: Final[Literal["24h"]] = "24h"
MAX_FILE_BYTES = 200 * 1000 * 1000  # "up to 200 MB" per input file; base64 frames count
MAX_FILE_LINES = 50_000
PROBE_TIMEOUT_S = 15.0
DONE = ("completed", "failed", "expired", "cancelled")  # nothing more will happen to these
FINISHED_WITH_OUTPUT = ("completed", "expired", "cancelled")  # output/error files may exist


# --- input files --------------------------------------------------------------------------------


def request_line(custom_id: str, body: dict[str, Any]) -> bytes:
    """One line of a batch input file: a POST of `body` to /v1/chat/completions."""
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    text = json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


@dataclass
class Part:
    """One input file: where it is, its name on the server, what it holds."""

    path: Path
    model: str
    custom_ids: list[str] = field(default_factory=list)
    bytes: int = 0

    @property
    def name(self) -> str:
        return self.path.name


class PartWriter:
    """Writes request lines to JSONL files in `folder` as they come (no request is held in
    memory), one model per file, starting a new file before one would pass `max_bytes` or
    `max_lines`. Safe to call from several threads."""

    def __init__(
        self,
        folder: Path,
        stem: str,
        *,
        max_bytes: int | None = None,
        max_lines: int | None = None,
    ) -> None:
        self.folder, self.stem = folder, stem
        self.max_bytes = max_bytes or MAX_FILE_BYTES
        self.max_lines = max_lines or MAX_FILE_LINES
        self.parts: list[Part] = []
        self._open: dict[str, Part] = {}
        self._lock = threading.Lock()

    def add(self, custom_id: str, body: dict[str, Any]) -> None:
        line = request_line(custom_id, body)
        if len(line) > self.max_bytes:
            raise ApiError(
                f"one request is {len(line) / 1e6:.0f} MB, over the Batch API's "
                f"{self.max_bytes / 1e6:.0f} MB per file",
                hint="send fewer or smaller frames (--max-frames, --resize, --detail low)",
            )
        model = str(body.get("model", ""))
        with self._lock:
            part = self._open.get(model)
            full = part is not None and (
                part.bytes + len(line) > self.max_bytes or len(part.custom_ids) >= self.max_lines
            )
            if part is None or full:
                part = Part(self.folder / f"{self.stem}-p{len(self.parts) + 1}.jsonl", model)
                self.folder.mkdir(parents=True, exist_ok=True)
                part.path.write_bytes(b"")
                self.parts.append(part)
                self._open[model] = part
            with open(part.path, "ab") as fh:
                fh.write(line)
            part.bytes += len(line)
            part.custom_ids.append(custom_id)


# --- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchStatus:
    """What a batch says of itself (every field checked: servers are not trusted)."""

    id: str
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.status in DONE

    def counts(self) -> str:
        if not self.total:
            return self.status
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.status}, {self.completed}/{self.total} done{failed}"


def _count(counts: Any, name: str) -> int:
    value = getattr(counts, name, 0)
    return value if isinstance(value, int) and value >= 0 else 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _batch_errors(errors: Any) -> tuple[str, ...]:
    """A failed batch's reasons ("line 3: ..."), from `errors.data[]`."""
    out = []
    for err in getattr(errors, "data", None) or []:
        msg = one_line(str(getattr(err, "message", "") or getattr(err, "code", "") or "?"), 200)
        line = getattr(err, "line", None)
        out.append(f"line {line}: {msg}" if isinstance(line, int) else msg)
    return tuple(out)


@dataclass(frozen=True)
class BatchServer:
    """The Files and Batches endpoints of one server, through the run's client; every SDK
    failure becomes one ApiError naming the cause (the key never shown)."""

    client: openai.OpenAI
    base_url: str | None
    key: str = ""
    provider: str | None = None

    def _error(self, exc: BaseException) -> ApiError:
        return map_api_error(exc, base_url=self.base_url, key=self.key, provider=self.provider)

    def check(self) -> None:
        """Refuse (ConfigError, exit 3) a server that has no Batch API, before anything is
        built: one `GET /batches?limit=1`, no retries, a short timeout. A 404/405/501, or an
        answer that is not a list of batches, means none (most local servers)."""
        import openai

        where = self.base_url or "api.openai.com"
        probe = self.client.with_options(max_retries=0, timeout=PROBE_TIMEOUT_S)
        try:
            raw = probe.batches.with_raw_response.list(limit=1)
        except openai.APIStatusError as exc:
            if exc.status_code in (404, 405, 501):
                raise ConfigError(
                    f"--batch: {where} has no Batch API (GET /batches answered {exc.status_code})",
                    hint="run without --batch",
                ) from None
            raise self._error(exc) from None
        except openai.APIError as exc:
            raise self._error(exc) from None
        try:
            doc = json.loads(raw.text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            raise ConfigError(
                f"--batch: {where} does not answer GET /batches like the Batch API",
                hint="run without --batch",
            )

    def upload(self, path: Path) -> str:
        """Upload an input file (`purpose=batch`, named as on disk); its file id."""
        import openai

        try:
            with open(path, "rb") as fh:
                made = self.client.files.create(
                    file=(path.name, fh, "application/jsonl"), purpose="batch"
                )
        except openai.APIError as exc:
            raise self._error(exc) from None
        except OSError as exc:
            raise ApiError(f"cannot read the batch file {path}: {exc.strerror or exc}") from None
        file_id = getattr(made, "id", None)
        if not isinstance(file_id, str) or not file_id:
            raise ApiError("the server accepted the batch file but gave no file id")
        return file_id

    def find_upload(self, name: str) -> str | None:
        """The id of an uploaded batch file named `name` (a run killed after its upload but
        before it wrote the id down); None when there is none or the server lists no files."""
        import openai

        try:
            for f in self.client.files.list(purpose="batch"):
                if getattr(f, "filename", None) == name and isinstance(getattr(f, "id", None), str):
                    return str(f.id)
        except (openai.APIError, TypeError, AttributeError):
            return None  # listing is optional: another upload costs nothing but time
        return None

    def submit(self, file_id: str, *, metadata: dict[str, str]) -> str:
        """Start a batch over an uploaded file; its id. Never retried: a retry after a lost
        answer could start a second batch, so a failure is an error and the next run looks the
        batch up (find_batch) before it submits again."""
        import openai

        try:
            made = self.client.with_options(max_retries=0).batches.create(
                input_file_id=file_id,
                endpoint=ENDPOINT,
                completion_window=WINDOW,
                metadata=metadata,
            )
        except openai.APIError as exc:
            raise self._error(exc) from None
        batch_id = getattr(made, "id", None)
        if not isinstance(batch_id, str) or not batch_id:
            raise ApiError("the server accepted the batch but gave no batch id")
        return batch_id

    def find_batch(self, file_id: str, *, since: float) -> str | None:
        """The batch already started over `file_id` (newest first, back to `since`), or None."""
        import openai

        try:
            for b in self.client.batches.list(limit=100):
                if getattr(b, "input_file_id", None) == file_id:
                    return str(b.id)
                created = getattr(b, "created_at", None)
                if isinstance(created, int | float) and created < since:
                    break
        except openai.APIError as exc:
            raise self._error(exc) from None
        return None

    def status(self, batch_id: str) -> BatchStatus:
        """The batch's status, request counts, output and error files, and why it failed."""
        import openai

        try:
            b = self.client.batches.retrieve(batch_id)
        except openai.APIError as exc:
            raise self._error(exc) from None
        counts = getattr(b, "request_counts", None)
        state = getattr(b, "status", None)
        return BatchStatus(
            id=batch_id,
            status=state if isinstance(state, str) and state else "unknown",
            total=_count(counts, "total"),
            completed=_count(counts, "completed"),
            failed=_count(counts, "failed"),
            output_file_id=_text(getattr(b, "output_file_id", None)),
            error_file_id=_text(getattr(b, "error_file_id", None)),
            errors=_batch_errors(getattr(b, "errors", None)),
        )

    def read(self, file_id: str) -> list[ResultLine]:
        """An output or error file's lines."""
        import openai

        try:
            data = self.client.files.content(file_id).read()
        except openai.APIError as exc:
            raise self._error(exc) from None
        return list(parse_lines(data, provider=self.provider))


# --- output and error files ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResultLine:
    """One line of an output or error file: the answer's body, or why there is none."""

    custom_id: str
    status_code: int | None
    body: Any
    error: str | None  # None: status 200 and a body to read


def _line_error(doc: dict[str, Any], response: Any, provider: str | None) -> str | None:
    code = response.get("status_code") if isinstance(response, dict) else None
    body = response.get("body") if isinstance(response, dict) else None
    err = doc.get("error")
    if code == 200 and body is not None and not err:
        return None
    msg = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        msg = str(body["error"].get("message") or "")
    if not msg and isinstance(err, dict):
        msg = str(err.get("message") or err.get("code") or "")
    msg = one_line(msg or "no answer", 300)
    if code == 400:
        advice = explain_bad_request(msg, provider) if provider else None
        return f"the server rejected the request (400): {msg}" + (f" ({advice})" if advice else "")
    if isinstance(code, int) and code != 200:
        return f"the request failed in the batch ({code}): {msg}"
    return f"the request failed in the batch: {msg}"


def parse_lines(data: bytes, *, provider: str | None = None) -> Iterator[ResultLine]:
    """The lines of an output or error file; lines that are not JSON objects with a custom id
    are skipped (a server's noise must not fail a run)."""
    for raw in data.splitlines():
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("custom_id"), str):
            continue
        response = doc.get("response")
        code = response.get("status_code") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        yield ResultLine(
            custom_id=doc["custom_id"],
            status_code=code if isinstance(code, int) else None,
            body=body,
            error=_line_error(doc, response, provider),
        )
