"""Speech stage: text -> mono 16-bit PCM at 24 kHz, behind a small backend interface.

Takes a segment's text and SpeechOptions; gives a Synthesis. Backends: the /v1/audio/speech
endpoint (here) and the Realtime API (`realtime.py`). `synthesize_all` speaks many texts at once.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ApiError, ConfigError, VnarrateError, redact
from ..media.audio import TRACK_RATE
from ..server.client import one_line

if TYPE_CHECKING:
    import openai

    from ..server.cache import ResponseCache

SAMPLE_RATE = TRACK_RATE  # what OpenAI's `pcm` format and the Realtime API's pcm16 deliver
MAX_INPUT_CHARS = 4096  # /v1/audio/speech rejects longer `input` (and longer `instructions`)

# Models that ignore or reject `instructions` (tone): the tts-1 family, dated variants included.
_NO_INSTRUCTIONS = re.compile(r"^tts-1(-hd)?(-\d+)?$")


class SpeechOptions(BaseModel):
    """What a backend needs to speak one text."""

    model: str
    voice: str
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    instructions: str | None = None  # tone; only some models honour it


class Synthesis(BaseModel):
    """One backend call's result: complete PCM audio (never partial) and what was said."""

    model_config = ConfigDict(frozen=True)

    pcm: bytes = Field(repr=False)
    sample_rate: int = SAMPLE_RATE
    transcript: str | None = None  # what the backend reports it spoke, when it can tell
    characters: int = 0  # billed input characters
    # Set by backends that can check the transcript against the text (Realtime): the word error
    # rate and whether it was within the threshold. None: not checked. False must be reported.
    wer: float | None = None
    faithful: bool | None = None


class SpeechBackend(Protocol):
    """Anything that turns text into speech. Implementations must be safe to call from threads."""

    name: str

    def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
        """Speak `text`; raise ApiError (or a subclass) on failure, never return partial audio."""
        ...


def faithfulness_note(segment: int, syn: Synthesis) -> str | None:
    """A note when a backend reported that it said something else than the script's line."""
    if syn.faithful is not False:
        return None
    wer = f" (word error rate {syn.wer:.0%})" if syn.wer is not None else ""
    said = f': "{syn.transcript}"' if syn.transcript else ""
    return f"segment {segment + 1} was spoken differently from the script{wer}{said}"


def supports_instructions(model: str) -> bool:
    """Whether the speech endpoint honours `instructions` for `model` (not tts-1 / tts-1-hd)."""
    return _NO_INSTRUCTIONS.match(model.strip().lower()) is None


# A sentence ends at . ! ? … (with closing quotes/brackets) before whitespace or the end, or at
# CJK full stops, which are not followed by a space.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?:\s+|$)|[。！？]+[」』”’)]*\s*")


def split_text(text: str, limit: int = MAX_INPUT_CHARS) -> list[str]:
    """`text` cut into pieces of at most `limit` characters: at sentence ends where possible,
    else between words, else (one unbroken "word" longer than the limit) anywhere."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    units: list[str] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > pos:
            units.append(text[pos : m.end()])
            pos = m.end()
    if pos < len(text):
        units.append(text[pos:])

    pieces: list[str] = []
    current = ""

    def flush() -> None:
        nonlocal current
        if current.strip():
            pieces.append(current.strip())
        current = ""

    for unit in units:
        if len(current) + len(unit.rstrip()) <= limit:
            current += unit
            continue
        flush()
        if len(unit.rstrip()) <= limit:
            current = unit
            continue
        for word in re.findall(r"\S+\s*", unit):  # one sentence over the limit: by words
            if len(current) + len(word.rstrip()) <= limit:
                current += word
                continue
            flush()
            while len(word.rstrip()) > limit:
                pieces.append(word[:limit])
                word = word[limit:]
            current = word
    flush()
    return pieces


class SpeechEndpointBackend:
    """The /v1/audio/speech endpoint (OpenAI, or a compatible server), asked for raw `pcm`.

    One HTTP request per piece of at most 4096 characters; the SDK does the retrying. Thread-safe:
    the OpenAI client is, and this object holds no other state.
    """

    name = "speech"

    def __init__(self, client: openai.OpenAI) -> None:
        self._client = client

    def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
        pieces = split_text(text)
        if not pieces:  # nothing to say is not worth a request (the API rejects empty input)
            return Synthesis(pcm=b"", characters=0)
        if options.instructions and len(options.instructions) > MAX_INPUT_CHARS:
            raise ConfigError(
                f"the speech instructions are {len(options.instructions)} characters long; "
                f"the speech endpoint takes at most {MAX_INPUT_CHARS}"
            )
        pcm = b"".join(self._one(piece, options) for piece in pieces)
        return Synthesis(pcm=pcm, sample_rate=SAMPLE_RATE, characters=len(text.strip()))

    def _one(self, text: str, options: SpeechOptions) -> bytes:
        import openai

        kwargs: dict[str, Any] = {}
        if options.instructions and supports_instructions(options.model):
            kwargs["instructions"] = options.instructions
        # A custom voice id goes as an object; a name goes as it is.
        voice: Any = {"id": options.voice} if options.voice.startswith("voice_") else options.voice
        try:
            answer = self._client.audio.speech.create(
                model=options.model,
                voice=voice,
                input=text,
                response_format="pcm",
                speed=options.speed,
                **kwargs,
            )
            data = answer.content
            ctype = answer.response.headers.get("content-type", "")
        except openai.OpenAIError as exc:
            raise self._error(exc, options.model) from None
        _check_audio_type(ctype, data, key=self._client.api_key or "")
        pcm = to_pcm16(data)
        if not pcm:
            raise ApiError(
                f"the speech server returned no audio for {len(text)} characters of text",
                hint=f"check that {options.model!r} is a speech model on this server",
            )
        return pcm

    def _error(self, exc: BaseException, model: str) -> ApiError:
        from ..server.client import map_api_error

        base = str(self._client.base_url).rstrip("/")
        where = None if base == "https://api.openai.com/v1" else base
        return map_api_error(exc, model=model, base_url=where, key=self._client.api_key or "")


class CachedSpeech:
    """A SpeechBackend that answers a request it has seen before from the response cache.

    The key is everything that shapes the audio (backend, model, voice, speed, the instructions
    the model would honour, the text) plus the provider and endpoint; never the key. A hit costs
    nothing, so its Synthesis bills 0 characters. Audio a backend flagged as unfaithful to the
    text (`faithful is False`) is not stored: a rerun should try again, not repeat the mistake.
    """

    def __init__(
        self,
        backend: SpeechBackend,
        cache: ResponseCache,
        *,
        provider: str,
        base_url: str | None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.name = backend.name
        self._provider = provider
        self._base_url = base_url

    def key(self, text: str, options: SpeechOptions) -> str:
        from ..server.cache import request_key

        instructions = options.instructions if supports_instructions(options.model) else None
        request = {
            "backend": self.backend.name,
            "model": options.model,
            "voice": options.voice,
            "speed": options.speed,
            "instructions": instructions,
            "input": text.strip(),
            "format": f"pcm_s16le/{SAMPLE_RATE}",
        }
        return request_key("speech", request, provider=self._provider, base_url=self._base_url)

    def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
        key = self.key(text, options)
        cached = self.cache.get_bytes(key)
        if cached is not None and len(cached) % 2 == 0:
            return Synthesis(pcm=cached, sample_rate=SAMPLE_RATE, characters=0)
        synthesis = self.backend.synthesize(text, options)
        if (
            synthesis.pcm
            and synthesis.sample_rate == SAMPLE_RATE
            and synthesis.faithful is not False
        ):
            self.cache.put_bytes(key, synthesis.pcm)
        return synthesis


def _check_audio_type(content_type: str, data: bytes, *, key: str = "") -> None:
    """Refuse a body that says it is text (an HTML error page or JSON with status 200): spoken
    as PCM it would be noise. Audio may come with any other type, or none."""
    kind = content_type.split(";")[0].strip().lower()
    if kind.startswith("text/") or kind == "application/json" or kind.endswith("+json"):
        snippet = one_line(redact(data[:200].decode("utf-8", "replace"), key), 80)
        raise ApiError(
            f"the speech server answered with {kind}, not audio: {snippet}",
            hint="check --tts-base-url / --base-url: it usually ends in /v1",
        )


def to_pcm16(data: bytes) -> bytes:
    """Raw s16le mono 24 kHz from what a server sent: as is when it honoured `pcm`; decoded
    and resampled when a compatible server answered with a container (WAV, MP3 with ID3, Ogg,
    FLAC) instead. Only unambiguous magic numbers count: raw PCM can start with any bytes."""
    wav = data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    if wav or data[:4] in (b"OggS", b"fLaC") or data[:3] == b"ID3":
        return _decode_container(data)
    return data[: len(data) // 2 * 2]  # an odd trailing byte is half a sample


def _decode_container(data: bytes) -> bytes:
    import av
    import numpy as np

    try:
        with av.open(io.BytesIO(data), "r") as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            chunks: list[np.ndarray] = []
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except (av.FFmpegError, IndexError) as exc:
        raise ApiError(f"the speech server's audio could not be decoded: {exc}") from None
    if not chunks:
        return b""
    return np.concatenate(chunks).astype("<i2").tobytes()


def segment_error(exc: BaseException, index: int, total: int) -> BaseException:
    """`exc` saying that it was speech, and for which segment (numbered from 1, as in every
    message and record): "segment 3 of 5: speech failed: ..."; other errors as they are."""
    if not isinstance(exc, VnarrateError):
        return exc
    error = type(exc)(
        f"segment {index + 1} of {total}: speech failed: {exc.message}", hint=exc.hint
    )
    return error.with_traceback(exc.__traceback__)


def synthesize_segment(
    backend: SpeechBackend, texts: Sequence[str], index: int, options: SpeechOptions
) -> Synthesis:
    """Speak segment `index` of `texts` alone (a re-take); a failure names the segment."""
    try:
        return backend.synthesize(texts[index], options)
    except VnarrateError as exc:
        raise segment_error(exc, index, len(texts)) from None


def synthesize_all(
    backend: SpeechBackend,
    texts: Sequence[str],
    options: SpeechOptions,
    *,
    jobs: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Synthesis]:
    """Speak every text, at most `jobs` requests at a time; results in the order of `texts`.

    The first failure cancels every call not yet started and is raised at once (calls already in
    flight cannot be interrupted; their results are dropped). `progress(done, total)` is called
    after each completed text, from the worker thread that completed it.
    """
    total = len(texts)
    if total == 0:
        return []
    if jobs <= 1 or total == 1:
        results = []
        for i in range(total):
            results.append(synthesize_segment(backend, texts, i, options))
            if progress:
                progress(i + 1, total)
        return results

    done_count = 0
    lock = threading.Lock()

    def on_done(_: Future[Synthesis]) -> None:
        nonlocal done_count
        with lock:
            done_count += 1
            n = done_count
        if progress:
            progress(n, total)

    pool = ThreadPoolExecutor(max_workers=min(jobs, total), thread_name_prefix="vnarrate-tts")
    futures: list[Future[Synthesis]] = []
    try:
        for text in texts:
            fut = pool.submit(backend.synthesize, text, options)
            fut.add_done_callback(on_done)
            futures.append(fut)
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for i, fut in enumerate(futures):  # the earliest text that failed, for a stable message
            error = fut.exception() if fut in finished else None
            if error is not None:
                raise segment_error(error, i, total) from None
        return [fut.result() for fut in futures]
    finally:
        # On success every future is done; on failure or Ctrl-C, queued calls are dropped here
        # instead of being paid for, and we do not wait for those already in flight.
        pool.shutdown(wait=False, cancel_futures=True)
