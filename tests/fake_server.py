"""A small OpenAI-shaped HTTP server on 127.0.0.1 for tests that run vnarrate as a subprocess
(examples/, shell pipelines), where respx cannot reach.

It answers /v1/chat/completions (a Description, a Script or ShortenedLines, chosen by the
response_format's schema name), /v1/audio/speech (real PCM, length proportional to the text),
/v1/models, and the Files and Batches endpoints (fake_batch.py); it validates every JSON body
against the OpenAPI schema (when ../shared/openapi is present), logs every request, can fail
chosen requests, and can answer late (`latency_s`, as a remote model would).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

Fault = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]] | None]


@dataclass
class FakeOpenAI:
    url: str = ""
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # schema violations seen
    fault: Fault | None = None  # (path, body) -> (status, json) to fail a request, or None
    words_per_second: float = 2.5
    latency_s: float = 0.0  # every POST is answered this long after it arrived
    batches: Any = None  # fake_batch.FakeBatches: the Files and Batches endpoints

    def calls(self, suffix: str) -> int:
        return sum(1 for path, _ in self.log if path.endswith(suffix))


def _duration_from(messages: list[dict[str, Any]]) -> float:
    for msg in messages:
        content = msg.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for part in parts:
            text = part.get("text") or ""
            if "The video lasts" in text and "(" in text and " s)" in text:
                try:
                    return float(text.split("(", 1)[1].split(" s)", 1)[0])
                except ValueError:
                    pass
    return 6.0


def chat_answer(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("response_format") or {}
    name = (fmt.get("json_schema") or {}).get("name", "")
    if name == "Script":
        duration = _duration_from(body["messages"])
        n = max(1, int(duration // 3))
        segments = [
            {
                "start_s": round(i * duration / n, 2),
                "end_s": round((i + 1) * duration / n, 2),
                "text": "A short line of narration.",
            }
            for i in range(n)
        ]
        return {"title": "A test video", "language": "en", "segments": segments}
    if name == "ShortenedLines":
        return {"lines": []}
    return {"title": "A test video", "description": "Things happen on screen, in order."}


def _pcm(text: str, words_per_second: float) -> bytes:
    seconds = max(0.3, len(text.split()) / words_per_second)
    t = np.arange(int(seconds * 24000)) / 24000
    return (0.3 * np.sin(2 * math.pi * 220 * t) * 32767).astype("<i2").tobytes()


@contextmanager
def serve() -> Iterator[FakeOpenAI]:
    """Run the server for the duration of the block; yields its state (url ends in /v1)."""
    from conftest import validate_request_body
    from fake_batch import FakeBatches

    state = FakeOpenAI(batches=FakeBatches())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _batch_api(self, method: str) -> bool:
            if not self.path.startswith(("/v1/files", "/v1/batches")):
                return False
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length) if length else b""
            state.log.append((self.path, {}))
            ctype = self.headers.get("content-type", "")
            status, reply_type, payload = state.batches.handle(method, self.path, ctype, body)
            self._send(status, payload, reply_type)
            return True

        def do_GET(self) -> None:
            if self._batch_api("GET"):
                return
            state.log.append((self.path, {}))
            known = ("gpt-5.4-mini", "gpt-4o-mini-tts")
            model_id = (
                self.path.rstrip("/").rsplit("/models/", 1)[-1] if "/models/" in self.path else None
            )
            if model_id is not None:
                if model_id in known:
                    doc = {"id": model_id, "object": "model", "created": 0, "owned_by": "test"}
                    self._send(200, json.dumps(doc).encode(), "application/json")
                else:
                    self._send(
                        404,
                        b'{"error": {"message": "model not found", "code": "model_not_found"}}',
                        "application/json",
                    )
            elif self.path.rstrip("/").endswith("/models"):
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "test"}
                    for m in ("gpt-5.4-mini", "gpt-4o-mini-tts")
                ]
                self._send(
                    200, json.dumps({"object": "list", "data": data}).encode(), "application/json"
                )
            else:
                self._send(404, b'{"error": {"message": "not found"}}', "application/json")

        def do_POST(self) -> None:
            if self._batch_api("POST"):
                return
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            state.log.append((self.path, body))
            try:
                validate_request_body(self.path, body)
            except AssertionError as exc:
                state.errors.append(str(exc))
                self._send(
                    400, json.dumps({"error": {"message": str(exc)}}).encode(), "application/json"
                )
                return
            if state.fault is not None:
                failed = state.fault(self.path, body)
                if failed is not None:
                    self._send(failed[0], json.dumps(failed[1]).encode(), "application/json")
                    return
            if state.latency_s > 0:
                time.sleep(state.latency_s)
            if self.path.endswith("/chat/completions"):
                content = json.dumps(chat_answer(body))
                reply = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "m"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content, "refusal": None},
                        }
                    ],
                    "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
                }
                self._send(200, json.dumps(reply).encode(), "application/json")
            elif self.path.endswith("/audio/speech"):
                self._send(
                    200,
                    _pcm(body.get("input", ""), state.words_per_second),
                    "application/octet-stream",
                )
            else:
                self._send(404, b'{"error": {"message": "not found"}}', "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
