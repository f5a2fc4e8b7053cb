"""A local Realtime API server for the tests and the connection benchmark.

It speaks the part of the protocol the Realtime speech backend uses, on 127.0.0.1 at a random
port, in a thread of its own. Every event a client sends is validated with the openai SDK's own
client-event models (an unknown type, a wrong value or a field the SDK does not define is a
protocol violation: recorded, and answered with an `error` event); every event it sends is built
from the SDK's server-event models. Audio is real PCM (a tone as long as the text deserves).

Modes: ok, paraphrase (the transcript always differs from the text), paraphrase_once (only the
first reading of each text differs), error (an `error` event instead of a response), silent
(response.created, then nothing), drop (the socket is aborted halfway through the audio),
incomplete (response.done with status incomplete halfway), reject401 (the handshake is refused).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pydantic
from openai import BaseModel
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemDone,
    RealtimeClientEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemUserMessage,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeResponse,
    RealtimeResponseStatus,
    RealtimeResponseUsage,
    RealtimeSessionCreateRequest,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

Mode = Literal[
    "ok", "paraphrase", "paraphrase_once", "error", "silent", "drop", "incomplete", "reject401"
]
RATE = 24000

# type string -> the SDK's model for that client event, read from the SDK's own union.
CLIENT_EVENTS: dict[str, type[BaseModel]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(get_args(RealtimeClientEvent)[0])
}


class ProtocolViolation(Exception):
    """A client event the SDK's types do not describe."""


def _extra_fields(value: Any, path: str = "") -> Iterator[str]:
    """Paths of fields present in the data but not defined by the SDK's models (which allow
    extras, so validation alone would not notice a misspelled field)."""
    if isinstance(value, pydantic.BaseModel):
        for name in value.model_extra or {}:
            yield f"{path}.{name}".lstrip(".")
        for name in type(value).model_fields:
            yield from _extra_fields(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _extra_fields(item, f"{path}[{i}]")


def validate_client_event(data: Any) -> BaseModel:
    """The client event `data` parsed by the SDK's model for its type; ProtocolViolation if the
    SDK's types do not describe it exactly."""
    if not isinstance(data, dict):
        raise ProtocolViolation(f"a client event must be a JSON object, not {type(data).__name__}")
    kind = data.get("type")
    cls = CLIENT_EVENTS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolViolation(f"unknown client event type {kind!r}")
    try:
        event = cls.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ProtocolViolation(f"{kind}: {exc}") from None
    extras = list(_extra_fields(event))
    if extras:
        raise ProtocolViolation(f"{kind}: fields the SDK does not define: {extras}")
    return event


def tone(text: str, *, seconds_per_char: float = 0.02) -> bytes:
    """Real speech-like PCM for `text`: a tone whose pitch depends on the text and whose length
    grows with it (0.2 s + 20 ms per character), s16le mono 24 kHz."""
    n = int(RATE * (0.2 + seconds_per_char * len(text)))
    freq = 180 + zlib.crc32(text.encode()) % 300
    t = np.arange(n) / RATE
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)  # no clicks at the ends
    samples = 0.3 * 32767 * envelope * np.sin(2 * np.pi * freq * t)
    return samples.astype("<i2").tobytes()


def paraphrase(text: str) -> str:
    """What a chatty model might say instead of reading `text`."""
    words = text.split()
    return "Sure! In short: " + " ".join(words[: max(1, len(words) // 2)]) + ", and so on."


@dataclass
class Spoken:
    """One response the server completed (or began, for failing modes)."""

    text: str
    pcm: bytes
    transcript: str
    completed: bool


@dataclass
class _Conn:
    voice: str = "marin"
    items: list[str] = field(default_factory=list)  # user texts, in order
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class RealtimeServer:
    """Start with `with RealtimeServer(...) as server:`; point the SDK at `server.base_url`."""

    def __init__(
        self,
        *,
        mode: Mode = "ok",
        key: str = "sk-test-SECRET-0123456789abcdef",
        response_latency_s: float = 0.0,
        connect_delay_s: float = 0.0,
        chunk_s: float = 0.1,
        stream_factor: float | None = None,
    ) -> None:
        self.mode: Mode = mode
        self.key = key
        self.response_latency_s = response_latency_s  # before the first audio of each response
        self.connect_delay_s = connect_delay_s  # before the handshake is answered (TLS, auth)
        self.chunk_s = chunk_s  # audio per delta event
        self.stream_factor = stream_factor  # audio seconds streamed per second; None: at once
        self.client_events: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.sessions: list[dict[str, Any]] = []  # the `session` of every session.update
        self.spoken: list[Spoken] = []
        self.models: list[str] = []  # the model of every accepted connection
        self.connections = 0
        self.max_concurrent = 0
        self._active = 0
        self._readings: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What to pass as OpenAI(websocket_base_url=...)."""
        return f"ws://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> RealtimeServer:
        self._thread = threading.Thread(target=self._run, name="realtime-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test Realtime server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = self._loop.create_future()
            async with serve(
                self._handler,
                "127.0.0.1",
                0,
                process_request=self._process_request,
                max_size=None,
                compression=None,
                close_timeout=1,
            ) as server:
                self.port = next(iter(server.sockets)).getsockname()[1]
                self._ready.set()
                await self._stop

        asyncio.run(main())

    # --- protocol ----------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self.connect_delay_s:
            await asyncio.sleep(self.connect_delay_s)
        auth = request.headers.get("Authorization", "")
        if self.mode == "reject401" or auth != f"Bearer {self.key}":
            # Like OpenAI's answer, and with the key in it, so tests can check it is redacted.
            given = auth.removeprefix("Bearer ")
            return self._json_response(
                connection,
                HTTPStatus.UNAUTHORIZED,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {given}.",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
        url = urlsplit(request.path)
        model = parse_qs(url.query).get("model", [""])[0]
        if url.path != "/v1/realtime" or not model:
            return self._json_response(
                connection,
                HTTPStatus.NOT_FOUND,
                {"error": {"message": f"no Realtime endpoint at {request.path}", "code": None}},
            )
        self.models.append(model)
        return None  # go on with the WebSocket handshake

    @staticmethod
    def _json_response(
        connection: ServerConnection, status: HTTPStatus, body: dict[str, Any]
    ) -> Response:
        response = connection.respond(status, json.dumps(body))
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    async def _send(self, ws: ServerConnection, event: BaseModel) -> None:
        await ws.send(event.to_json(indent=None))

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._active += 1
        self.max_concurrent = max(self.max_concurrent, self._active)
        conn = _Conn()
        try:
            session = RealtimeSessionCreateRequest(
                type="realtime",
                model=self.models[-1] if self.models else None,
                output_modalities=["audio"],
                instructions="You are a helpful assistant.",
            )
            await self._send(
                ws,
                SessionCreatedEvent(
                    event_id=self._id("event"), session=session, type="session.created"
                ),
            )
            async for message in ws:
                await self._on_message(ws, conn, message)
        except Exception:  # a client that went away mid-send: nothing to answer
            pass
        finally:
            self._active -= 1
            for task in conn.tasks:
                task.cancel()

    async def _on_message(self, ws: ServerConnection, conn: _Conn, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            self.client_events.append(data)
            event = validate_client_event(data)
        except (ValueError, ProtocolViolation) as exc:
            self.violations.append(str(exc))
            await self._error(ws, "invalid_request_error", "invalid_event", str(exc)[:500])
            return
        kind = data["type"]
        if kind == "session.update":
            self.sessions.append(data["session"])
            voice = data["session"].get("audio", {}).get("output", {}).get("voice")
            if isinstance(voice, str):
                conn.voice = voice
            merged = RealtimeSessionCreateRequest.model_validate(
                {"model": self.models[-1] if self.models else None, **data["session"]}
            )
            await self._send(
                ws,
                SessionUpdatedEvent(
                    event_id=self._id("event"), session=merged, type="session.updated"
                ),
            )
        elif kind == "conversation.item.create":
            item = data["item"]
            text = " ".join(
                part.get("text", "")
                for part in item.get("content", [])
                if part.get("type") == "input_text"
            )
            conn.items.append(text)
            item_id = item.get("id") or self._id("item")
            user = RealtimeConversationItemUserMessage.model_validate(
                {**item, "id": item_id, "status": "completed"}
            )
            for cls, name in (
                (ConversationItemAdded, "conversation.item.added"),
                (ConversationItemDone, "conversation.item.done"),
            ):
                await self._send(
                    ws, cls(event_id=self._id("event"), item=user, type=name, previous_item_id=None)
                )
        elif kind == "response.create":
            params = data.get("response") or {}
            if params.get("input"):  # an out-of-band response brings its own context
                texts = [
                    part.get("text", "")
                    for item in params["input"]
                    for part in item.get("content", [])
                    if part.get("type") == "input_text"
                ]
                text = " ".join(texts)
            else:
                text = conn.items[-1] if conn.items else ""
            task = asyncio.create_task(self._respond(ws, conn, text, params.get("metadata")))
            conn.tasks.add(task)
            task.add_done_callback(conn.tasks.discard)
        del event

    async def _error(self, ws: ServerConnection, kind: str, code: str, message: str) -> None:
        error = RealtimeError(type=kind, code=code, message=message)
        await self._send(
            ws, RealtimeErrorEvent(error=error, event_id=self._id("event"), type="error")
        )

    async def _respond(
        self, ws: ServerConnection, conn: _Conn, text: str, metadata: dict[str, str] | None
    ) -> None:
        mode = self.mode
        response_id = self._id("resp")
        item_id = self._id("item")
        head = dict(response_id=response_id, item_id=item_id, output_index=0)
        created = RealtimeResponse(
            id=response_id,
            object="realtime.response",
            status="in_progress",
            output=[],
            output_modalities=["audio"],
            conversation_id=None if metadata is not None else "conv_1",
            metadata=metadata,
        )
        await self._send(
            ws,
            ResponseCreatedEvent(
                event_id=self._id("event"), response=created, type="response.created"
            ),
        )
        if mode == "error":
            await self._error(
                ws,
                "server_error",
                "server_error",
                "The server had an error while processing your request.",
            )
            return
        if mode == "silent":
            return
        if self.response_latency_s:
            await asyncio.sleep(self.response_latency_s)

        self._readings[text] += 1
        off = mode == "paraphrase" or (mode == "paraphrase_once" and self._readings[text] == 1)
        transcript = paraphrase(text) if off else text
        pcm = tone(transcript)
        spoken = Spoken(text=text, pcm=pcm, transcript=transcript, completed=False)
        self.spoken.append(spoken)

        item = RealtimeConversationItemAssistantMessage(
            id=item_id,
            type="message",
            role="assistant",
            status="in_progress",
            object="realtime.item",
            content=[],
        )
        await self._send(
            ws,
            ResponseOutputItemAddedEvent(
                event_id=self._id("event"),
                item=item,
                output_index=0,
                response_id=response_id,
                type="response.output_item.added",
            ),
        )
        await self._send(
            ws,
            ResponseContentPartAddedEvent.model_validate(
                {
                    "event_id": self._id("event"),
                    "type": "response.content_part.added",
                    "content_index": 0,
                    "part": {"type": "audio", "transcript": ""},
                    **head,
                }
            ),
        )

        step = int(RATE * self.chunk_s) * 2
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        words = transcript.split(" ")
        per_chunk = max(1, -(-len(words) // max(1, len(chunks))))
        for n, chunk in enumerate(chunks):
            if mode in ("drop", "incomplete") and n == len(chunks) // 2:
                if mode == "drop":
                    ws.transport.abort()  # no close frame: what a dropped network looks like
                    return
                await self._finish(ws, head, transcript, item, "incomplete")
                return
            said = " ".join(words[n * per_chunk : (n + 1) * per_chunk])
            if said:
                await self._send(
                    ws,
                    ResponseAudioTranscriptDeltaEvent(
                        event_id=self._id("event"),
                        type="response.output_audio_transcript.delta",
                        delta=said + " ",
                        content_index=0,
                        **head,
                    ),
                )
            audio = base64.b64encode(chunk).decode()
            await self._send(
                ws,
                ResponseAudioDeltaEvent(
                    event_id=self._id("event"),
                    type="response.output_audio.delta",
                    delta=audio,
                    content_index=0,
                    **head,
                ),
            )
            if self.stream_factor:
                await asyncio.sleep(self.chunk_s / self.stream_factor)
        await self._finish(ws, head, transcript, item, "completed")
        spoken.completed = True

    async def _finish(
        self,
        ws: ServerConnection,
        head: dict[str, Any],
        transcript: str,
        item: RealtimeConversationItemAssistantMessage,
        status: Literal["completed", "incomplete"],
    ) -> None:
        await self._send(
            ws,
            ResponseAudioDoneEvent(
                event_id=self._id("event"),
                type="response.output_audio.done",
                content_index=0,
                **head,
            ),
        )
        await self._send(
            ws,
            ResponseAudioTranscriptDoneEvent(
                event_id=self._id("event"),
                type="response.output_audio_transcript.done",
                transcript=transcript,
                content_index=0,
                **head,
            ),
        )
        await self._send(
            ws,
            ResponseContentPartDoneEvent.model_validate(
                {
                    "event_id": self._id("event"),
                    "type": "response.content_part.done",
                    "content_index": 0,
                    "part": {"type": "audio", "transcript": transcript},
                    **head,
                }
            ),
        )
        done_item = RealtimeConversationItemAssistantMessage.model_validate(
            {
                **item.to_dict(),
                "status": status,
                "content": [{"type": "output_audio", "transcript": transcript}],
            }
        )
        await self._send(
            ws,
            ResponseOutputItemDoneEvent(
                event_id=self._id("event"),
                item=done_item,
                output_index=0,
                response_id=head["response_id"],
                type="response.output_item.done",
            ),
        )
        details = (
            None
            if status == "completed"
            else RealtimeResponseStatus(type="incomplete", reason="max_output_tokens")
        )
        response = RealtimeResponse(
            id=head["response_id"],
            object="realtime.response",
            status=status,
            status_details=details,
            output=[done_item],
            output_modalities=["audio"],
            usage=RealtimeResponseUsage(input_tokens=50, output_tokens=200, total_tokens=250),
        )
        await self._send(
            ws,
            ResponseDoneEvent(event_id=self._id("event"), response=response, type="response.done"),
        )


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[RealtimeServer]:
    """`with running(mode=...) as server:`, the same as `with RealtimeServer(...)`."""
    with RealtimeServer(**kwargs) as server:
        yield server
