"""A fake of OpenAI's Files and Batches endpoints, in memory, for tests: served by respx routes
(`install`, in-process CLI tests) and by fake_server.py (subprocess tests).

It validates every request, and every line of every uploaded batch file (its shape, and its body
against CreateChatCompletionRequest), against the OpenAPI subset; its own answers are checked
against OpenAIFile and Batch. A batch moves validating -> in_progress -> finalizing -> completed
one step per status check, answers each line as the chat fake does, and can fail chosen lines,
expire (answering only the first half), stay in progress until released, or fail validation.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conftest import check_upload, multipart_fields, validate_against
from fake_server import chat_answer

LineFault = Callable[[str, dict[str, Any]], tuple[int, str] | None]
USAGE = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}
STEPS = ["validating", "in_progress", "finalizing", "completed"]


def _drop_nulls(doc: dict[str, Any]) -> dict[str, Any]:
    # The spec declares fields non-nullable that the API sends as null (openapi/README.md, 6).
    return {k: v for k, v in doc.items() if v is not None}


@dataclass
class FakeBatches:
    answer: Callable[[dict[str, Any]], dict[str, Any] | str] = chat_answer  # str: raw content
    fail_line: LineFault | None = None  # (custom_id, body) -> (status, message) to fail a line
    expire: set[int] = field(default_factory=set)  # batch numbers (1-based) that expire
    reject: set[int] = field(default_factory=set)  # batch numbers that fail validation
    hold: threading.Event | None = None  # while not set, batches stay in_progress
    max_file_bytes: int = 200 * 1000 * 1000
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)  # every uploaded line
    errors: list[str] = field(default_factory=list)  # what failed validation
    log: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.log if m == method and p == path)

    @property
    def uploads(self) -> int:
        return self.calls("POST", "/files")

    @property
    def created(self) -> int:
        return self.calls("POST", "/batches")

    # -- HTTP --

    def handle(
        self, method: str, url: str, content_type: str, body: bytes
    ) -> tuple[int, str, bytes]:
        """(status, content type, bytes) for one request; `url` is the full URL or path."""
        parts = urlsplit(url)
        path = "/" + parts.path.split("/v1/", 1)[-1].strip("/")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.log.append((method, path))
            try:
                status, doc = self._route(method, path, query, content_type, body)
            except AssertionError as exc:
                self.errors.append(str(exc))
                status, doc = 400, {"error": {"message": str(exc), "type": "invalid_request"}}
        if isinstance(doc, bytes):
            return status, "application/octet-stream", doc
        return status, "application/json", json.dumps(doc).encode()

    def _route(
        self, method: str, path: str, query: dict[str, str], ctype: str, body: bytes
    ) -> tuple[int, Any]:
        seg = path.strip("/").split("/")
        if seg[0] == "files" and method == "POST" and len(seg) == 1:
            return 200, self._upload(*multipart_fields(ctype, body))
        if seg[0] == "files" and method == "GET":
            if len(seg) == 1:
                data = [f for f in self.files.values() if f["purpose"] == query.get("purpose")]
                return 200, {"object": "list", "data": data, "has_more": False}
            if seg[1] not in self.files:
                return 404, {"error": {"message": "no such file"}}
            return 200, self.contents[seg[1]] if seg[-1] == "content" else self.files[seg[1]]
        if seg[0] == "batches" and method == "POST" and len(seg) == 1:
            doc = json.loads(body)
            validate_against("CreateBatchRequest", doc)
            return 200, self._create(doc)
        if seg[0] == "batches" and method == "GET" and len(seg) == 1:
            data = sorted(self.batches.values(), key=lambda b: -b["created_at"])
            data = data[: int(query.get("limit", "20"))]
            return 200, {
                "object": "list",
                "data": [self._public(b) for b in data],
                "has_more": False,
            }
        if seg[0] == "batches" and method == "GET" and seg[1] in self.batches:
            return 200, self._advance(self.batches[seg[1]])
        return 404, {"error": {"message": f"no route for {method} {path}"}}

    # -- files --

    def _file(self, name: str, purpose: str, data: bytes) -> dict[str, Any]:
        file_id = f"file-{next(self._ids)}"
        doc = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": 1_800_000_000 + len(self.files),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        validate_against("OpenAIFile", _drop_nulls(doc))
        self.files[file_id], self.contents[file_id] = doc, data
        return doc

    def _upload(self, fields: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        lines = check_upload(fields, files)
        name, data = fields["file"], files["file"]
        assert len(data) <= self.max_file_bytes, f"{name}: {len(data)} bytes, over the limit"
        assert len(lines) <= 50_000
        self.lines.extend(lines)
        return self._file(str(name), str(fields["purpose"]), data)

    # -- batches --

    def _create(self, doc: dict[str, Any]) -> dict[str, Any]:
        assert doc["input_file_id"] in self.files, "no such input file"
        assert doc["endpoint"] == "/v1/chat/completions" and doc["completion_window"] == "24h"
        number = len(self.batches) + 1
        batch = {
            "id": f"batch_{number}",
            "object": "batch",
            "endpoint": doc["endpoint"],
            "errors": None,
            "input_file_id": doc["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": 1_800_000_000 + number,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": doc.get("metadata"),
            "_number": number,
        }
        self.batches[batch["id"]] = batch
        return self._public(batch)

    def _public(self, batch: dict[str, Any]) -> dict[str, Any]:
        doc = {k: v for k, v in batch.items() if not k.startswith("_")}
        validate_against("Batch", _drop_nulls(doc))
        return doc

    def _advance(self, batch: dict[str, Any]) -> dict[str, Any]:
        if batch["status"] in STEPS[:-1]:
            if batch["status"] == "validating":
                self._validate(batch)
            elif batch["status"] == "in_progress" and self.hold and not self.hold.is_set():
                return self._public(batch)
            elif batch["status"] == "in_progress" and batch["_number"] in self.expire:
                self._finish(batch, expired=True)
                return self._public(batch)
            if batch["status"] != "failed":
                batch["status"] = STEPS[STEPS.index(batch["status"]) + 1]
            if batch["status"] == "completed":
                self._finish(batch, expired=False)
        return self._public(batch)

    def _validate(self, batch: dict[str, Any]) -> None:
        lines = [json.loads(x) for x in self.contents[batch["input_file_id"]].splitlines()]
        batch["_lines"] = lines
        batch["request_counts"]["total"] = len(lines)
        models = {line["body"].get("model") for line in lines}
        ids = [line["custom_id"] for line in lines]
        problem = None
        if batch["_number"] in self.reject:
            problem = {"code": "invalid_request", "message": "the file is not valid", "line": 1}
        elif len(models) > 1:
            problem = {"code": "mixed_models", "message": "one model per batch", "line": 1}
        elif len(set(ids)) != len(ids):
            problem = {"code": "duplicate_custom_id", "message": "duplicate custom_id", "line": 1}
        if problem is not None:
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [problem]}

    def _finish(self, batch: dict[str, Any], *, expired: bool) -> None:
        lines = batch["_lines"]
        answered = lines[: len(lines) // 2] if expired else lines
        out, err = [], []
        for n, line in enumerate(answered):
            cid, body = line["custom_id"], line["body"]
            fault = self.fail_line(cid, body) if self.fail_line else None
            if fault is not None:
                status, message = fault
                response = {"error": {"message": message, "type": "invalid_request_error"}}
                err.append(self._line(n, cid, status, response))
                continue
            answer = self.answer(body)
            content = answer if isinstance(answer, str) else json.dumps(answer)
            completion = {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content, "refusal": None},
                    }
                ],
                "usage": USAGE,
            }
            out.append(self._line(n, cid, 200, completion))
        for n, line in enumerate(lines[len(answered) :], start=len(answered)):
            # As the API does: the requests an expired batch never ran are in its error file.
            message = "This request could not be executed before the completion window expired."
            error = {"code": "batch_expired", "message": message}
            err.append({"id": f"batch_req_{n}", "custom_id": line["custom_id"], "response": None,
                        "error": error})  # fmt: skip
        if out:
            batch["output_file_id"] = self._file("output.jsonl", "batch_output", _jsonl(out))["id"]
        if err:
            batch["error_file_id"] = self._file("errors.jsonl", "batch_output", _jsonl(err))["id"]
        batch["request_counts"].update(
            completed=len(out), failed=len(err) - len(lines) + len(answered)
        )
        batch["status"] = "expired" if expired else "completed"

    @staticmethod
    def _line(n: int, cid: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
        response = {"status_code": status, "request_id": f"req_{n}", "body": body}
        return {"id": f"batch_req_{n}", "custom_id": cid, "response": response, "error": None}


def _jsonl(docs: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(d).encode() + b"\n" for d in docs)


def install(router: Any, fake: FakeBatches) -> FakeBatches:
    """Serve `fake` on a respx router (the `api` fixture) for /files and /batches."""
    import respx

    def handler(request: Any) -> respx.MockResponse:
        status, ctype, body = fake.handle(
            request.method, str(request.url), request.headers.get("content-type", ""),
            request.content,
        )  # fmt: skip
        return respx.MockResponse(status, content=body, headers={"content-type": ctype})

    router.route(url__regex=r"/v1/(files|batches)").mock(side_effect=handler)
    return fake
