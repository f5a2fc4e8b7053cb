"""Speech stage: text -> mono 16-bit PCM at the rate the server really spoke it, behind a small
backend interface.

Takes a segment's text and SpeechOptions; gives a Synthesis (PCM and its sample rate: never
assumed, read from the audio). Backends: the /v1/audio/speech endpoint (here, asked for `wav`,
which says its own rate) and the Realtime API (`realtime.py`). `synthesize_all` speaks many
texts at once.
"""

from __future__ import annotations

import io
import re
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ApiError, ConfigError, VnarrateError, redact
from ..media.audio import TRACK_RATE, resample_mono
from ..server.cache import request_key
from ..server.client import map_api_error, one_line

if TYPE_CHECKING:
    import openai

    from ..server.cache import ResponseCache

SAMPLE_RATE = TRACK_RATE  # what OpenAI's `pcm` format and the Realtime API's pcm16 deliver
RESPONSE_FORMAT: Literal["wav"] = (
    "wav"  # self-describing: a Piper server speaks 22,050 Hz, OpenAI 24 kHz
)
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
    """The /v1/audio/speech endpoint (OpenAI, or a compatible server), asked for `wav`: the
    rate comes from the audio itself (`decode_speech`), never assumed.

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
        parts = [self._one(piece, options) for piece in pieces]
        rate = parts[0][1]
        pcm = b"".join(_at_rate(data, r, rate) for data, r in parts)
        return Synthesis(pcm=pcm, sample_rate=rate, characters=len(text.strip()))

    def _one(self, text: str, options: SpeechOptions) -> tuple[bytes, int]:
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
                response_format=RESPONSE_FORMAT,
                speed=options.speed,
                **kwargs,
            )
            data = answer.content
            headers = answer.response.headers
        except openai.OpenAIError as exc:
            raise self._error(exc, options.model) from None
        ctype = headers.get("content-type", "")
        _check_audio_type(ctype, data, key=self._client.api_key or "")
        pcm, rate = decode_speech(
            data, content_type=ctype, rate_header=headers.get("x-sample-rate")
        )
        if not pcm:
            raise ApiError(
                f"the speech server returned no audio for {len(text)} characters of text",
                hint=f"check that {options.model!r} is a speech model on this server",
            )
        return pcm, rate

    def _error(self, exc: BaseException, model: str) -> ApiError:
        base = str(self._client.base_url).rstrip("/")
        where = None if base == "https://api.openai.com/v1" else base
        return map_api_error(exc, model=model, base_url=where, key=self._client.api_key or "")


class CachedSpeech:
    """A SpeechBackend that answers a request it has seen before from the response cache.

    The key is everything that shapes the audio (backend, model, voice, speed, the instructions
    the model would honour, the text) plus the provider and endpoint; never the key. Entries are
    WAV files (`CACHE_FORMAT` in the key), so each one carries its own sample rate. A hit costs
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
        instructions = options.instructions if supports_instructions(options.model) else None
        request = {
            "backend": self.backend.name,
            "model": options.model,
            "voice": options.voice,
            "speed": options.speed,
            "instructions": instructions,
            "input": text.strip(),
            "format": CACHE_FORMAT,
        }
        return request_key("speech", request, provider=self._provider, base_url=self._base_url)

    def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
        key = self.key(text, options)
        cached = self.cache.get_bytes(key)
        stored = read_wav(cached) if cached is not None else None
        if stored is not None and stored[0]:
            return Synthesis(pcm=stored[0], sample_rate=stored[1], characters=0)
        synthesis = self.backend.synthesize(text, options)
        if synthesis.pcm and synthesis.faithful is not False:
            self.cache.put_bytes(key, wav_bytes(synthesis.pcm, synthesis.sample_rate))
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


# --- what a speech server sends -> PCM and its rate ----------------------------------------------

CACHE_FORMAT = "wav/s16le"  # what CachedSpeech stores: PCM in a WAV header that holds its rate
_RATE_PARAM = re.compile(r"\brate=(\d+)", re.IGNORECASE)
MIN_RATE, MAX_RATE = 4000, 192000
# Raw PCM can start with any bytes (0xFFFF, a sample of -1, looks like an MP3 frame sync): only
# magic numbers that cannot be PCM, or the server's own word for a compressed format, count.
_CONTAINER_TYPES = {
    "audio/mpeg", "audio/mp3", "audio/aac", "audio/mp4", "audio/ogg", "audio/opus",
    "audio/flac", "audio/x-flac", "audio/webm",
}  # fmt: skip


def decode_speech(
    data: bytes, *, content_type: str = "", rate_header: str | None = None
) -> tuple[bytes, int]:
    """(s16le mono PCM, its sample rate) from what a speech server sent. The rate is read, never
    assumed: from a WAV header (OpenAI streams one with its sizes unset, 0xFFFFFFFF), from the
    container (MP3, Ogg, FLAC, answered by servers that ignore `response_format`), or for raw
    PCM from the `x-sample-rate` header or a `rate=` in the content type; only raw PCM with
    neither is taken at OpenAI's documented `pcm` rate, 24 kHz. Compressed audio is recognised by
    its magic number or its content type (an MP3 without ID3 has no unambiguous magic)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        wav = read_wav(data)
        if wav is not None:
            return wav
        return _decode_container(data)
    kind = content_type.split(";")[0].strip().lower()
    if data[:4] in (b"OggS", b"fLaC") or data[:3] == b"ID3" or kind in _CONTAINER_TYPES:
        return _decode_container(data)
    rate = _declared_rate(content_type, rate_header) or SAMPLE_RATE
    return data[: len(data) // 2 * 2], rate  # an odd trailing byte is half a sample


def to_pcm16(data: bytes) -> bytes:
    """Raw s16le mono at 24 kHz from what a server sent (resampled when it says another rate)."""
    pcm, rate = decode_speech(data)
    return _at_rate(pcm, rate, SAMPLE_RATE)


def _declared_rate(content_type: str, rate_header: str | None) -> int | None:
    candidates = [rate_header or ""]
    if m := _RATE_PARAM.search(content_type):
        candidates.append(m.group(1))
    for text in candidates:
        try:
            rate = int(float(text.strip()))
        except ValueError:
            continue
        if MIN_RATE <= rate <= MAX_RATE:
            return rate
    return None


def read_wav(data: bytes) -> tuple[bytes, int] | None:
    """(s16le mono PCM, rate) from a WAV file of integer PCM (8/16/24/32 bit) or float samples,
    any channel count (averaged); None when it is not one this reader knows (PyAV then tries).
    A data chunk whose size is unset (0, 0xFFFFFFFF: streamed) or too large runs to the end."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt " and size >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag follows
                tag = struct.unpack_from("<H", data, body + 24)[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                return None
            end = len(data) if size in (0, 0xFFFFFFFF) or body + size > len(data) else body + size
            return _wav_samples(data[body:end], *fmt)
        pos = body + size + (size & 1)
    return None


def _wav_samples(
    raw: bytes, tag: int, channels: int, rate: int, bits: int
) -> tuple[bytes, int] | None:
    import numpy as np

    if channels < 1 or not MIN_RATE <= rate <= MAX_RATE:
        return None
    width = bits // 8
    usable = len(raw) // (width * channels) * width * channels if width else 0
    raw = raw[:usable]
    if tag == 1 and bits == 16:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif tag == 1 and bits == 8:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif tag == 1 and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | b[:, 1] << 8 | b[:, 2] << 16) << 8 >> 8).astype(np.float32) / 8388608
    elif tag == 1 and bits == 32:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648
    elif tag == 3 and bits in (32, 64):
        x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float32)
    else:
        return None
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return (np.clip(x * 32768, -32768, 32767).astype("<i2").tobytes(), rate)


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """s16le mono PCM in a WAV header (how CachedSpeech stores speech with its rate)."""
    pcm = pcm[: len(pcm) // 2 * 2]
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", len(pcm),
    )  # fmt: skip
    return header + pcm


def _at_rate(pcm: bytes, rate: int, target: int) -> bytes:
    """s16le mono PCM at `rate` resampled to `target` (as it is when they match)."""
    import numpy as np

    if rate == target or not pcm:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.int16)
    return resample_mono(samples, rate, target).astype("<i2").tobytes()


def _decode_container(data: bytes) -> tuple[bytes, int]:
    import av
    import numpy as np

    try:
        with av.open(io.BytesIO(data), "r") as container:
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or stream.rate
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            chunks: list[np.ndarray] = []
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except (av.FFmpegError, IndexError) as exc:
        raise ApiError(f"the speech server's audio could not be decoded: {exc}") from None
    if not chunks or not rate:
        return b"", SAMPLE_RATE
    return np.concatenate(chunks).astype("<i2").tobytes(), int(rate)


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
