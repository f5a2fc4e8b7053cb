"""Speech clips: a video's audio and its speech regions -> each region as a small FLAC file.

Takes a path and the speech regions of its SpeechMap (seconds from the start of the file); gives,
in time order, one SpeechClip per region: 16 kHz mono 16-bit FLAC, ready to upload for
transcription. A region longer than `max_piece_s` (a long monologue, or music the detector heard
as speech) is cut into pieces at its quietest moment before the cap, so no word is cut in two
where a pause exists; every piece keeps its region's index.

Why FLAC at 16 kHz (measured on 10 minutes of the shared dialogue's speech, 2 cores): it encodes
in 0.5 s where MP3 takes 5-8 s and Ogg Opus 9 s, loses nothing the recogniser could use, and every
server kind decodes it (OpenAI; whisper.cpp's built-in decoders take WAV, MP3 and FLAC, not Opus;
vLLM's libsndfile; faster-whisper's PyAV). It is ~3x the size of 48 kbps MP3 (11 MB against
3.6 MB per 10 minutes of speech), which a piece of at most 300 s keeps far under the API's 25 MB.
16 kHz is what speech recognisers listen at.

Audio is decoded once, front to back, with the speech detector's own decoder (same downmix,
resampler and timeline, so the regions' times mean the same samples), and only a region's own
samples are held, so memory stays small however long the video is. Output is deterministic
(FFmpeg's bitexact mode): the same region gives the same bytes, so the cache can key on them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .detect import SAMPLE_RATE, SoundtrackError, _Decoded, _pcm, open_audio

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.float32]

MAX_PIECE_S = 300.0  # under every known per-request duration limit, ~10 MB of FLAC at most
CUT_SEARCH_S = 10.0  # a long region is cut at its quietest 20 ms within this before the cap
QUIET_WINDOW = SAMPLE_RATE // 50  # 20 ms
CLIP_FORMAT = "flac/16000/mono/s16"  # what a clip is, for cache keys


@dataclass(frozen=True)
class SpeechClip:
    """One piece of speech, encoded for upload."""

    region: int  # index into the SpeechMap's regions
    start_s: float
    end_s: float
    audio: bytes  # FLAC

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


def piece_count(regions: Sequence[tuple[float, float]], max_piece_s: float = MAX_PIECE_S) -> int:
    """How many clips (requests) `speech_clips` makes of `regions`, for a plan."""
    return sum(max(1, -int(-(b - a) // max_piece_s)) for a, b in regions if b > a)


def speech_clips(
    path: str | Path, regions: Sequence[tuple[float, float]], *, max_piece_s: float = MAX_PIECE_S
) -> Iterator[SpeechClip]:
    """Every region's audio as FLAC, in time order (a long region in several pieces).

    Raises SoundtrackError when the audio cannot be read; a track that ends before a region
    does gives that region what there is."""
    import av

    if not regions:
        return
    with open_audio(path) as (container, stream):
        if stream is None or stream.codec_context is None:
            raise SoundtrackError(f"{path}: no readable audio track to transcribe")
        decoded, warnings = _Decoded(), list[str]()
        try:
            chunks = _pcm(container, stream, decoded, warnings)
            for region, first, samples in _cut(chunks, decoded, regions, max_piece_s):
                start = decoded.origin_s + first / SAMPLE_RATE
                end = start + len(samples) / SAMPLE_RATE
                yield SpeechClip(region, round(start, 3), round(end, 3), encode_flac(samples))
        except (av.FFmpegError, ValueError) as exc:
            raise SoundtrackError(f"cannot read the audio of {path}: {exc}") from None


def _cut(
    chunks: Iterator[Samples],
    decoded: _Decoded,
    regions: Sequence[tuple[float, float]],
    max_piece_s: float,
) -> Iterator[tuple[int, int, Samples]]:
    """(region index, first sample, samples) of every piece, from the decoder's 16 kHz chunks.
    Sample 0 is the first decoded sample (at `decoded.origin_s`, known once a chunk arrived)."""
    import numpy as np

    cap = max(QUIET_WINDOW * 2, round(max_piece_s * SAMPLE_RATE))
    search = min(round(CUT_SEARCH_S * SAMPLE_RATE), cap // 3)
    bounds: list[tuple[int, int]] | None = None
    r, pos, first, held = 0, 0, 0, 0
    pending: list[Samples] = []
    for chunk in chunks:
        if bounds is None:  # the origin is set before the first chunk is handed over
            bounds = [_samples(a, b, decoded.origin_s) for a, b in regions]
        end = pos + len(chunk)
        while r < len(bounds):
            a, b = bounds[r]
            lo, hi = max(a, pos), min(b, end)
            if lo < hi:
                if not held:
                    first = lo
                pending.append(chunk[lo - pos : hi - pos])
                held += hi - lo
                while held >= cap:
                    joined = np.concatenate(pending)
                    at = quietest_cut(joined[:cap], search)
                    yield r, first, joined[:at]
                    pending, first, held = [joined[at:]], first + at, len(joined) - at
            if b > end:
                break
            if held:
                yield r, first, np.concatenate(pending)
            pending, held, r = [], 0, r + 1
        pos = end
        if r >= len(regions):
            return  # nothing more to cut: stop decoding
    if held:  # the audio ended inside a region
        yield r, first, np.concatenate(pending)


def _samples(start_s: float, end_s: float, origin_s: float) -> tuple[int, int]:
    return round((start_s - origin_s) * SAMPLE_RATE), round((end_s - origin_s) * SAMPLE_RATE)


def quietest_cut(samples: Samples, search: int) -> int:
    """Where to cut `samples` short: the middle of its quietest 20 ms within the last `search`
    samples (the end itself when there is no room to search)."""
    import numpy as np

    lo = max(QUIET_WINDOW, len(samples) - search)
    n = (len(samples) - lo) // QUIET_WINDOW
    if n < 1:
        return len(samples)
    windows = samples[lo : lo + n * QUIET_WINDOW].reshape(n, QUIET_WINDOW)
    quiet = int(np.argmin(np.mean(windows.astype(np.float64) ** 2, axis=1)))
    return lo + quiet * QUIET_WINDOW + QUIET_WINDOW // 2


def encode_flac(samples: Samples) -> bytes:
    """16 kHz mono float32 -> a FLAC file (16-bit), the same bytes for the same samples."""
    import av
    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    buf = io.BytesIO()
    # bitexact: no encoder version in the file; no padding block (8 KB of zeros by default)
    options = {"fflags": "+bitexact", "metadata_header_padding": "0"}
    with av.open(buf, "w", format="flac", options=options) as out:
        stream = out.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        step = SAMPLE_RATE * 4
        for pos in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(
                pcm[pos : pos + step].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = SAMPLE_RATE, pos
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
