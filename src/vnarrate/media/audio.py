"""Audio (PyAV + numpy): mono speech samples -> trimmed, resampled, stretched, encoded.

Takes int16 PCM and its rate; gives int16 samples at the track rate (24 kHz) with TTS silence
trimmed, time-stretched without changing pitch (atempo), or an encoded .mp3/.wav/.m4a file.
PyAV (bundled FFmpeg) does the stretching, resampling and encoding; numpy holds the samples.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import OutputError, UsageError
from ..models import Clip

if TYPE_CHECKING:
    import av
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.int16]

TRACK_RATE = 24000  # what OpenAI's `pcm` format and the Realtime API's pcm16 deliver
BLOCK = 48000  # samples per processing block (1 s at 48 kHz): bounded memory for long audio


class _AudioFormat(NamedTuple):
    container: str
    codec: str
    bit_rate: int | None


AUDIO_FORMATS: dict[str, _AudioFormat] = {
    ".mp3": _AudioFormat("mp3", "libmp3lame", 64_000),  # 64 kbps mono is plenty for speech
    ".wav": _AudioFormat("wav", "pcm_s16le", None),
    ".m4a": _AudioFormat("ipod", "aac", 96_000),
}


def check_audio_path(path: Path) -> None:
    """Raise UsageError unless `path`'s extension is an audio format we encode."""
    if path.suffix.lower() not in AUDIO_FORMATS:
        raise UsageError(
            f"{path}: cannot tell the audio format from {path.suffix or 'no extension'!r}",
            hint="name the output .mp3, .wav or .m4a",
        )


def trim_silence(
    samples: Samples,
    sample_rate: int = TRACK_RATE,
    *,
    threshold_db: float = -50.0,
    keep_lead_s: float = 0.01,
    keep_tail_s: float = 0.06,
) -> Samples:
    """`samples` without the silence TTS leaves before and after the words (10 ms windows under
    `threshold_db` dBFS RMS), keeping a short lead-in and tail so no onset or decay is clipped.
    Placing the words, not the silence, at the segment's start is what puts speech on time."""
    import numpy as np

    win = max(1, sample_rate // 100)
    n = len(samples) // win
    if n == 0:
        return samples
    frames = samples[: n * win].astype(np.float32).reshape(n, win) / 32768.0
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 10 ** (threshold_db / 20))
    if len(loud) == 0:
        return samples[:0]
    start = max(0, int(loud[0]) * win - round(keep_lead_s * sample_rate))
    end = min(len(samples), (int(loud[-1]) + 1) * win + round(keep_tail_s * sample_rate))
    return samples[start:end]


def clip_samples(clip: Clip) -> Samples:
    """A clip's PCM as int16 samples at the track's rate (24 kHz), resampled if it is not."""
    import numpy as np

    samples = np.frombuffer(clip.pcm[: len(clip.pcm) // 2 * 2], dtype="<i2").astype(np.int16)
    if clip.sample_rate != TRACK_RATE and len(samples):
        samples = resample_mono(samples, clip.sample_rate, TRACK_RATE)
    return samples


def seconds(samples: Samples, rate: int = TRACK_RATE) -> float:
    return len(samples) / rate


# --- PyAV helpers ------------------------------------------------------------------------------


def mono_frame(samples: Samples, sample_rate: int, pts: int) -> av.AudioFrame:
    import av
    import numpy as np

    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = sample_rate
    frame.pts = pts
    frame.time_base = Fraction(1, sample_rate)
    return frame


def time_stretch(samples: Samples, sample_rate: int, factor: float) -> Samples:
    """`samples` played `factor` times faster without changing pitch (FFmpeg's atempo filter)."""
    import av
    import numpy as np
    from av.filter import Graph

    if len(samples) == 0 or abs(factor - 1.0) < 1e-6:
        return samples
    graph = Graph()
    src = graph.add_abuffer(
        format="s16", sample_rate=sample_rate, layout="mono", time_base=Fraction(1, sample_rate)
    )
    tempo = graph.add("atempo", f"{factor:.6f}")
    sink = graph.add("abuffersink")
    src.link_to(tempo)
    tempo.link_to(sink)
    graph.configure()

    out: list[Samples] = []

    def drain() -> None:
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            out.append(frame.to_ndarray().reshape(-1).astype(np.int16))

    for pos in range(0, len(samples), BLOCK):
        graph.push(mono_frame(samples[pos : pos + BLOCK], sample_rate, pos))
        drain()
    graph.push(None)
    drain()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


def resample_mono(samples: Samples, rate_in: int, rate_out: int) -> Samples:
    import av
    import numpy as np

    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_out)
    out: list[Samples] = []
    for pos in range(0, len(samples), BLOCK):
        frame = mono_frame(samples[pos : pos + BLOCK], rate_in, pos)
        out.extend(f.to_ndarray().reshape(-1).astype(np.int16) for f in resampler.resample(frame))
    out.extend(f.to_ndarray().reshape(-1).astype(np.int16) for f in resampler.resample(None))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


# --- encoding ----------------------------------------------------------------------------------


def encode_audio(
    samples: Samples, sample_rate: int, path: Path, *, label: Path | None = None
) -> Path:
    """Encode the mono track once into `path`, in the format its extension names (.mp3, .wav,
    .m4a); errors name `label` (the file the user asked for) when `path` is a temporary file.
    MP3 gets a LAME header with the encoder delay, so decoders trim the priming samples and
    speech stays on time."""
    import av

    check_audio_path(path)
    fmt = AUDIO_FORMATS[path.suffix.lower()]
    options = {"movflags": "+faststart"} if fmt.container == "ipod" else {}
    try:
        with av.open(str(path), "w", format=fmt.container, options=options) as out:
            stream: Any = out.add_stream(fmt.codec, rate=sample_rate, layout="mono")
            if fmt.bit_rate:
                stream.bit_rate = fmt.bit_rate
            for pos in range(0, len(samples), BLOCK):
                frame = mono_frame(samples[pos : pos + BLOCK], sample_rate, pos)
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    except (av.FFmpegError, OSError) as exc:
        raise OutputError(f"cannot write {label or path}: {exc}") from exc
    return path
