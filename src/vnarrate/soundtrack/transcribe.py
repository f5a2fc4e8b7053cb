"""Transcription: a video's speech regions -> what is said in each, placed by the detector's times.

Takes the path, its SpeechMap, TranscribeOptions, an OpenAI client (OpenAI or any server with
`POST /v1/audio/transcriptions`), the response cache and how many requests may run at once;
gives a Transcript: one SpokenLine per speech region, with the region's own start and end
whatever the model returns, the text the server heard there, and what was sent (requests,
seconds of audio: what is billed). `transcribe_clips` does the same for clips cut elsewhere
(narration/verify.py: the narration heard back, one clip per line).

ONE region per request (a long region in pieces, clips.py), never several joined: `gpt-transcribe`
returns no timestamps (only whisper-1, which shuts down, and some compatible servers do), so the
text of a joined request could not be split back onto its regions, and a line without its time is
no use to a prompt or to narration placed between speakers. Per-region requests put every line at
its exact time on every server, cost the same (audio is billed by its length), keep each upload
small (a piece is at most 300 s, ~10 MB of FLAC, far under the 25 MB limit) and run `jobs` at a
time; the audio is cut and encoded while earlier requests are in flight. Each request asks for
`json`, the one response format every model and server takes.

Never trusted: an answer that is not a transcription (an HTML page, JSON without `text`) is an
ApiError; control characters are dropped, whitespace collapsed, and text far longer than anyone
can say in the region's time (a recogniser looping on music) is cut. An empty text is an answer:
nobody intelligible spoke there. HTTP failures are the SDK's to retry, then one clear ApiError
(server/client.map_api_error); a server without the endpoint (404/405) raises
NoTranscriptionEndpoint, so a run can stop asking it. Only validated answers are cached; the key
holds the model, the server, the format and the audio bytes' hash, never an API key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from ..errors import ApiError, redact
from ..models import Plan, Soundtrack, SpeechMap, SpokenLine
from ..server.cache import request_key
from ..server.client import map_api_error, one_line
from ..server.prices import PriceBasis, PriceTable, total_cost, transcription_cost
from .clips import CLIP_FORMAT, SpeechClip, piece_count, speech_clips

if TYPE_CHECKING:
    import openai

TranscribeMode = Literal["auto", "on", "off"]
RESPONSE_FORMAT: Literal["json"] = "json"
# Nobody says more than ~25 characters a second; allow for a slack margin before calling a text
# a recogniser's loop.
MAX_CHARS_PER_S = 40
MAX_CHARS_BASE = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class TranscribeOptions(BaseModel):
    """What transcription needs (session/options.py builds it once per run from Settings)."""

    model_config = ConfigDict(frozen=True)

    mode: TranscribeMode  # auto: when speech is found, a failure is a warning; on: it is an error
    model: str
    provider: str  # of the speech-to-text server, for the cache key
    base_url: str | None  # of the speech-to-text server (None: OpenAI), for keys and messages
    # How the speech-to-text server is priced, as chat and speech are (server/prices.price_basis):
    # OpenAI's table on OpenAI, free on a local server kind, else unknown unless the user's
    # prices file names the model; `prices` is that server's table.
    pricing: PriceBasis
    prices: PriceTable


class Store(Protocol):
    """What transcription needs from a response cache (see server/cache.py)."""

    def get_json(self, key: str) -> dict[str, Any] | None: ...

    def put_json(self, key: str, value: dict[str, Any]) -> None: ...


class NoTranscriptionEndpoint(ApiError):
    """The server has no transcription endpoint (or not this model): asking again is useless."""


@dataclass
class Transcript:
    """What is said in each speech region, and what it took."""

    lines: list[SpokenLine]
    requests: int = 0  # sent to the server (cache hits are not)
    seconds: float = 0.0  # of audio sent: what is billed
    cached: int = 0
    warnings: list[str] = field(default_factory=list)


def transcribe(
    path: str | Path,
    speech: SpeechMap,
    options: TranscribeOptions,
    *,
    client: openai.OpenAI,
    cache: Store | None = None,
    key: str = "",
    jobs: int = 4,
) -> Transcript:
    """One line per speech region with what the server heard there (see the module docstring).

    Raises ApiError (NoTranscriptionEndpoint for a server without the endpoint) or
    SoundtrackError (the audio cannot be read)."""
    clips = speech_clips(path, speech.regions)
    return transcribe_clips(
        clips, speech.regions, options, client=client, cache=cache, key=key, jobs=jobs
    )


def transcribe_clips(
    clips: Iterator[SpeechClip],
    regions: Sequence[tuple[float, float]],
    options: TranscribeOptions,
    *,
    client: openai.OpenAI,
    cache: Store | None = None,
    key: str = "",
    jobs: int = 4,
) -> Transcript:
    """`transcribe` for clips already cut (each naming its region's index in `regions`): one
    line per region, with the text of its clips in time order."""
    result = Transcript(lines=[])
    texts: dict[int, list[tuple[float, str]]] = {}
    warned: set[str] = set()

    def one(clip: SpeechClip) -> tuple[SpeechClip, str, bool]:
        return (clip, *_answer(clip, options, client, cache, key))

    for clip, text, hit in _run(one, clips, jobs):
        text, note = clean_text(text, clip.seconds)
        if note and note not in warned:
            warned.add(note)
            result.warnings.append(note)
        texts.setdefault(clip.region, []).append((clip.start_s, text))
        result.cached += hit
        result.requests += not hit
        result.seconds += 0.0 if hit else clip.seconds
    for i, (start, end) in enumerate(regions):
        said = " ".join(t for _, t in sorted(texts.get(i, [])) if t)
        result.lines.append(SpokenLine(start_s=start, end_s=end, text=said))
    result.seconds = round(result.seconds, 3)
    if result.lines and not any(line.text for line in result.lines):
        result.warnings.append(
            f"the speech-to-text server heard no words in {len(result.lines)} speech region(s)"
        )
    return result


def _run(
    work: Any, clips: Iterator[SpeechClip], jobs: int
) -> Iterator[tuple[SpeechClip, str, bool]]:
    """`work(clip)` for every clip, `jobs` at a time, while the next clips are cut and encoded;
    at most 2 x jobs clips are held. The first clip goes alone: a server without the endpoint,
    or a rejected key or model, then fails one request, not `jobs` of them. The first failure
    cancels what has not started."""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="vnarrate-stt")
    running: set[Future[tuple[SpeechClip, str, bool]]] = set()
    try:
        for n, clip in enumerate(clips):
            running.add(pool.submit(work, clip))
            if n == 0 or len(running) >= 2 * max(1, jobs):
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def cache_key(clip: SpeechClip, options: TranscribeOptions) -> str:
    request = {
        "model": options.model,
        "response_format": RESPONSE_FORMAT,
        "format": CLIP_FORMAT,
        "file": clip.audio,  # hashed
    }
    return request_key(
        "transcription", request, provider=options.provider, base_url=options.base_url
    )


def _answer(
    clip: SpeechClip,
    options: TranscribeOptions,
    client: openai.OpenAI,
    cache: Store | None,
    key: str,
) -> tuple[str, bool]:
    """The text of one clip (from the cache when the same audio was asked before) and whether
    it came from the cache."""
    entry = cache_key(clip, options) if cache is not None else ""
    if cache is not None:
        hit = cache.get_json(entry)
        if hit is not None and isinstance(hit.get("text"), str):
            return hit["text"], True
    text = ask(clip, options, client, key)
    if cache is not None:
        cache.put_json(entry, {"text": text})
    return text, False


def ask(clip: SpeechClip, options: TranscribeOptions, client: openai.OpenAI, key: str) -> str:
    """One request: the clip's text as the server gave it (checked, not yet cleaned)."""
    import openai

    # One dot: some servers take the format from everything after the first one.
    name = f"speech-{clip.region + 1:04d}-{round(clip.start_s * 1000):09d}ms.flac"
    try:
        raw = client.audio.transcriptions.with_raw_response.create(
            file=(name, clip.audio, "audio/flac"),
            model=options.model,
            response_format=RESPONSE_FORMAT,
        )
        body, ctype = raw.content, raw.headers.get("content-type", "")
    except openai.APIError as exc:
        raise transcription_error(exc, options, key) from None
    return answer_text(body, ctype, options, key)


def transcription_error(exc: BaseException, options: TranscribeOptions, key: str) -> ApiError:
    """What a failed transcription request says: a missing endpoint by name, else the errors
    every endpoint gives (server/client.map_api_error)."""
    import openai

    where = options.base_url or "https://api.openai.com/v1"
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else 0
    if status in (404, 405):
        return NoTranscriptionEndpoint(
            f"{redact(where, key)} has no transcription endpoint for {options.model!r} "
            f"({status}): {one_line(redact(str(getattr(exc, 'message', exc)), key), 120)}",
            hint="point --stt-base-url at a speech-to-text server, pick another --stt-model, "
            "or pass --transcribe off",
        )
    error = map_api_error(exc, model=options.model, base_url=options.base_url, key=key)
    if status == 401:
        error.hint = "check --stt-api-key (a separate --stt-base-url never gets your main key)"
    return error


def answer_text(body: bytes, content_type: str, options: TranscribeOptions, key: str = "") -> str:
    """The transcribed text in a server's answer: JSON with `text` (or with `segments` only),
    or plain text from a server that ignored `response_format`. Anything else is an ApiError."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_a_transcription("binary data", options) from None
    kind = content_type.split(";")[0].strip().lower()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
        if kind == "text/plain" and not text.lstrip().startswith("<"):
            return text
    if isinstance(data, dict):
        if isinstance(data.get("text"), str):
            return str(data["text"])
        segments = data.get("segments")
        if isinstance(segments, list) and all(
            isinstance(s, dict) and isinstance(s.get("text"), str) for s in segments
        ):
            return " ".join(str(s["text"]) for s in segments)
    raise _not_a_transcription(one_line(redact(text[:200], key), 80) or "an empty body", options)


def _not_a_transcription(what: str, options: TranscribeOptions) -> ApiError:
    return ApiError(
        f"the speech-to-text server's answer is not a transcription: {what}",
        hint=f"check --stt-base-url ({options.base_url or 'https://api.openai.com/v1'}): "
        "it usually ends in /v1",
    )


def clean_text(text: str, seconds: float) -> tuple[str, str | None]:
    """Text fit for a prompt: no control characters, single spaces, and no longer than anyone
    could say in `seconds` (a note says when it was cut)."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    limit = round(MAX_CHARS_BASE + MAX_CHARS_PER_S * max(0.0, seconds))
    if len(text) <= limit:
        return text, None
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut + " …", (
        "the speech-to-text server returned more text than fits the time spoken; it was cut "
        "(a recogniser repeating itself?)"
    )


def price(options: TranscribeOptions, seconds: float) -> float | None:
    """Dollars for `seconds` of audio sent on the speech-to-text server (0 on a local server
    kind or when nothing was sent; None: no price known for that server and model)."""
    if options.pricing == "free" or seconds <= 0:
        return 0.0
    return transcription_cost(options.model, seconds, options.prices)


def unpriced_note(options: TranscribeOptions, what: str) -> str:
    """Why `what` (transcription, --verify) has no price."""
    if options.pricing == "unknown":
        return (
            f"speech-to-text server is not OpenAI: {what} cost unknown (price "
            f"{options.model!r} for it in a prices file: --prices FILE)"
        )
    return (
        f"no price for speech-to-text model {options.model!r}: {what} cost unknown "
        "(add it to a prices file: --prices FILE)"
    )


def with_transcript(heard: Soundtrack, said: Transcript, options: TranscribeOptions) -> Soundtrack:
    """`heard` with what is said in each region, and what transcribing it sent and cost."""
    return heard.model_copy(
        update={
            "lines": said.lines,
            "transcribed": True,
            "warnings": [*heard.warnings, *said.warnings],
            "transcription_model": options.model,
            "transcription_requests": said.requests,
            "transcription_seconds": said.seconds,
            "transcription_cost_usd": price(options, said.seconds),
        }
    )


def plan_transcription(plan: Plan, speech: SpeechMap, options: TranscribeOptions | None) -> Plan:
    """`plan` with where people speak and, when `options` say it will be transcribed, the
    requests, seconds and dollars that takes (counted in the plan's totals)."""
    if options is None or options.mode == "off" or not speech.regions:
        return plan.model_copy(update={"soundtrack": speech})
    seconds = round(speech.speech_s, 3)
    cost = price(options, seconds)
    notes = [*plan.notes, unpriced_note(options, "transcription")] if cost is None else plan.notes
    return plan.model_copy(
        update={
            "soundtrack": speech,
            "stt_pricing": options.pricing,
            "transcription_model": options.model,
            "transcription_requests": piece_count(speech.regions),
            "transcription_seconds": seconds,
            "transcription_cost_usd": cost,
            "cost_usd": total_cost(plan.cost_usd, cost),
            "max_cost_usd": total_cost(plan.max_cost_usd, cost),
            "notes": notes,
        }
    )
