"""Speech detection: a video's own audio -> where people speak (SpeechMap), offline, no key.

Takes a path and VadOptions; gives a SpeechMap (merged speech regions and every gap between
them, in seconds from the start of the file), or None when the file has no audio stream.

How: the default (else the first) audio stream is decoded with PyAV on a worker thread, downmixed
and resampled to 16 kHz mono inside FFmpeg, and handed over in 16 s blocks, so memory stays flat
however long the video is. Silero VAD (v6, MIT; its 16 kHz "sequence" ONNX export, shipped
beside this module) gives one speech probability per 32 ms window; onnxruntime runs it on one
thread while the other core decodes. An hour of audio takes about 7 s on 2 cores
(BENCHMARKS.md, "Speech detection").

The rule from probabilities to regions (the defaults live in Settings, measured in BENCHMARKS.md):
a window at or above `threshold` starts speech, and speech goes on until the probability falls
below `threshold - 0.15` (hysteresis, Silero's own rule, so a word's soft end does not flicker);
pauses shorter than `min_silence_s` are bridged (commas and breaths stay inside a line); regions
shorter than `min_speech_s` are dropped (a cough, a drum hit); each region is then widened by
`pad_s` on both sides (the model reacts about a window late and a word's faint edges sit under the
threshold), clipped to the file and merged where the padding made regions touch.

Failures: no audio stream -> None (nothing to do, not an error). An audio stream that yields no
decodable audio at all, or a model that cannot be loaded, raises SoundtrackError (an InputError):
callers say "warning: ... continuing without the soundtrack" and go on. Damaged packets in an
otherwise good track are skipped; the stretch they covered counts as silence and the result
carries a warning saying how much was lost.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..media import load_media_libraries
from ..media.probe import main_stream
from ..models import AudioTrack, Soundtrack, SpeechMap, SpokenLine, VadOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.float32]

SAMPLE_RATE = 16_000  # the model's rate
WINDOW = 512  # samples per probability (32 ms), fixed by the model
CONTEXT = 64  # samples of the previous window the model sees before each window
HOP_S = WINDOW / SAMPLE_RATE
BLOCK_WINDOWS = 512  # windows per model call: 16.4 s, ~1.2 MB of input
NEG_OFFSET = 0.15  # hysteresis: speech ends below threshold - NEG_OFFSET (Silero's rule)
MODEL_FILE = "silero_vad_16k_sequence.onnx"
DETECTOR = "silero-vad 6.2.3 (16 kHz sequence ONNX)"
# Timestamps further apart than this from the samples decoded so far mean lost audio: the hole is
# filled with silence so that later speech keeps its true time.
MAX_DRIFT_S = 0.1

_session_lock = threading.Lock()
_session: Any = None


class SoundtrackError(InputError):
    """The audio track (or the speech model) is unusable: go on without the soundtrack."""


@contextlib.contextmanager
def open_audio(path: str | Path) -> Iterator[tuple[Any, Any]]:
    """The open container and its default (else first) audio stream, None without one;
    SoundtrackError when the file cannot be opened."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SoundtrackError(f"cannot read the audio of {path}: {exc}") from None
    with container:
        yield container, main_stream(container.streams.audio)


def detect_speech(path: str | Path, options: VadOptions) -> SpeechMap | None:
    """Where people speak in the video's default (else first) audio track; None without audio.

    Raises SoundtrackError when the file cannot be opened, the track yields no audio, or the
    speech model cannot be loaded."""
    import av

    with open_audio(path) as (container, stream):
        if stream is None:
            return None
        track = _track_info(stream)
        if stream.codec_context is None:
            raise SoundtrackError(f"audio track {track.index}: no decoder for its codec")
        session = load_model()
        warnings: list[str] = []
        decoded = _Decoded()
        # closing(): the decoding thread stops before the container closes, even on an error
        with contextlib.closing(
            _in_background(_blocks(container, stream, decoded, warnings))
        ) as bl:
            try:
                probs = _probabilities(session, bl)
            except (av.FFmpegError, ValueError) as exc:
                raise SoundtrackError(f"audio track {track.index} ({track.codec}): {exc}") from None
        duration = _duration(container, decoded)
    if decoded.frames == 0:
        raise SoundtrackError(f"audio track {track.index} ({track.codec}) could not be decoded")
    regions = speech_regions(probs, options, duration_s=duration, offset_s=decoded.origin_s)
    return SpeechMap(
        duration_s=round(duration, 3),
        regions=regions,
        gaps=speech_gaps(regions, duration),
        speech_s=round(sum(e - s for s, e in regions), 3),
        detector=DETECTOR,
        track=track,
        warnings=warnings,
    )


# --- which stream, how long ---------------------------------------------------------------------


def _track_info(stream: Any) -> AudioTrack:
    ctx = stream.codec_context
    layout = getattr(getattr(ctx, "layout", None), "name", "") or ""
    return AudioTrack(
        index=stream.index,
        codec=getattr(ctx, "name", None) or "unknown",
        sample_rate=int(getattr(ctx, "sample_rate", 0) or 0),
        channels=int(getattr(ctx, "channels", 0) or 0),
        layout=layout,
        language=stream.metadata.get("language"),
    )


class _Decoded:
    """What the decoding thread found out, read by the caller once it has finished."""

    def __init__(self) -> None:
        self.frames = 0  # audio frames decoded
        self.origin_s = 0.0  # time of the first decoded sample
        self.samples = 0  # at 16 kHz, holes filled included


def _duration(container: Any, decoded: _Decoded) -> float:
    # The container's duration is what the video player shows and what the ground truth uses;
    # the decoded audio may run a few ms past it (padding of the last AAC frame).
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / 1_000_000
    return decoded.origin_s + decoded.samples / SAMPLE_RATE


# --- decoding ------------------------------------------------------------------------------------


def _blocks(
    container: Any, stream: Any, decoded: _Decoded, warnings: list[str]
) -> Iterator[Samples]:
    """16 kHz mono float32 in blocks of BLOCK_WINDOWS windows (the last one shorter)."""
    import numpy as np

    size = BLOCK_WINDOWS * WINDOW
    pending: list[Samples] = []
    held = 0
    for chunk in _pcm(container, stream, decoded, warnings):
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            joined = np.concatenate(pending)
            whole = len(joined) // size * size
            for start in range(0, whole, size):
                yield joined[start : start + size]
            pending, held = [joined[whole:]], len(joined) - whole
    if held:
        yield np.concatenate(pending)


def _pcm(container: Any, stream: Any, decoded: _Decoded, warnings: list[str]) -> Iterator[Samples]:
    """The stream's audio as 16 kHz mono chunks, holes in the timestamps filled with silence."""
    import numpy as np

    resampler = _Resampler()
    lost = 0
    for frame in _frames(container, stream, warnings):
        if frame is None:
            lost += 1
            continue
        if decoded.frames == 0 and frame.time is not None:
            decoded.origin_s = float(frame.time)
        decoded.frames += 1
        if frame.time is not None:
            hole = round((frame.time - decoded.origin_s) * SAMPLE_RATE) - decoded.samples
            if hole > MAX_DRIFT_S * SAMPLE_RATE:
                decoded.samples += hole
                yield np.zeros(hole, np.float32)
        for chunk in resampler.resample(frame):
            decoded.samples += len(chunk)
            yield chunk
    for chunk in resampler.resample(None):
        decoded.samples += len(chunk)
        yield chunk
    if lost and decoded.frames:
        warnings.append(
            f"{lost} damaged audio packet{'s' if lost > 1 else ''} skipped: "
            "speech there is unknown and was treated as silence"
        )


class _Resampler:
    """Any layout and rate -> 16 kHz mono float32 (FFmpeg's downmix and resampler). A stream
    that changes layout or rate mid-way (an ADTS or TS broadcast may) gets a new resampler."""

    def __init__(self) -> None:
        self._current: Any = None

    def resample(self, frame: Any) -> list[Samples]:
        import av
        import numpy as np

        if self._current is None:
            self._current = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        try:
            outs = self._current.resample(frame)
        except ValueError:  # "Frame does not match AudioResampler setup"
            outs = self._current.resample(None)
            self._current = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            outs += self._current.resample(frame)
        return [o.to_ndarray().reshape(-1).astype(np.float32, copy=False) for o in outs]


def _frames(container: Any, stream: Any, warnings: list[str]) -> Iterator[Any]:
    """Decoded audio frames; None for a packet that failed to decode. A read error ends the
    stream early with a warning (what was decoded before it is kept)."""
    import av

    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                yield None
                continue
            yield from frames
    except av.FFmpegError as exc:
        warnings.append(f"the audio could not be read to its end ({exc}); the rest is unknown")


def _in_background(items: Iterator[Samples], depth: int = 3) -> Generator[Samples, None, None]:
    """Run `items` on a worker thread, `depth` blocks ahead: decoding (PyAV) and the model
    (onnxruntime) both release the GIL, so on 2 cores they overlap. Exceptions are re-raised
    here; leaving early stops the worker."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for block in items:
                if not put(("block", block)):
                    return
            put(("end", None))
        except BaseException as exc:  # re-raised in the caller's thread
            put(("error", exc))

    load_media_libraries()
    worker = threading.Thread(target=work, name="vnarrate-soundtrack-decode", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


# --- the model -----------------------------------------------------------------------------------


def load_model() -> Any:
    """The Silero VAD onnxruntime session, loaded once per process (~0.1 s) and shared.

    onnxruntime's `run` is thread-safe and the model's state is passed in and out of each call,
    so concurrent detections may share it. One intra-op thread: the other core decodes."""
    global _session
    with _session_lock:
        if _session is None:
            _session = _new_session()
        return _session


def _new_session() -> Any:
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
    except ImportError as exc:
        raise SoundtrackError(f"speech detection needs onnxruntime ({exc})") from None
    ort.set_default_logger_severity(3)  # errors only: core modules never print
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    model = resources.files(__package__).joinpath(MODEL_FILE).read_bytes()
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exception classes
        raise SoundtrackError(f"cannot load the speech model {MODEL_FILE}: {exc}") from None


def _probabilities(session: Any, blocks: Iterator[Samples]) -> Samples:
    """One speech probability per 32 ms window, the model's state carried across blocks."""
    import numpy as np

    h = np.zeros((1, 1, 128), np.float32)
    c = np.zeros((1, 1, 128), np.float32)
    context = np.zeros(CONTEXT, np.float32)
    out: list[Samples] = []
    for block in blocks:
        n = -(-len(block) // WINDOW)
        windows = np.zeros((n, WINDOW), np.float32)
        windows.reshape(-1)[: len(block)] = block
        contexts = np.empty((n, CONTEXT), np.float32)
        contexts[0] = context
        contexts[1:] = windows[:-1, -CONTEXT:]
        context = windows[-1, -CONTEXT:].copy()
        feed = {"input": np.concatenate((contexts, windows), axis=1), "h": h, "c": c}
        probs, h, c = session.run(["speech_probs", "hn", "cn"], feed)
        out.append(np.asarray(probs, np.float32).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


# --- probabilities -> regions -> gaps ------------------------------------------------------------


def speech_regions(
    probs: Sequence[float] | Samples,
    options: VadOptions,
    *,
    duration_s: float,
    offset_s: float = 0.0,
    hop_s: float = HOP_S,
) -> list[tuple[float, float]]:
    """Merged speech regions in seconds from per-window speech probabilities (the rule in the
    module docstring). Window i covers offset_s + [i, i + 1) * hop_s."""
    runs = _hysteresis_runs(probs, options.threshold)
    runs = _bridge(runs, round(options.min_silence_s / hop_s))
    runs = [(s, e) for s, e in runs if (e - s) * hop_s >= options.min_speech_s]
    regions: list[tuple[float, float]] = []
    for s, e in runs:
        start = max(0.0, offset_s + s * hop_s - options.pad_s)
        end = min(duration_s, offset_s + e * hop_s + options.pad_s)
        if end <= start:
            continue
        if regions and start <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(regions[-1][1], end))
        else:
            regions.append((start, end))
    return [(round(s, 3), round(e, 3)) for s, e in regions]


def _hysteresis_runs(probs: Sequence[float] | Samples, threshold: float) -> list[tuple[int, int]]:
    """Runs [start, end) of windows in speech: every stretch at or above threshold - 0.15 that
    reaches the threshold somewhere (hysteresis in both directions: offline, a word's soft start
    counts as well as its soft end)."""
    import numpy as np

    p = np.asarray(probs, np.float32)
    if p.size == 0:
        return []
    above = p >= max(threshold - NEG_OFFSET, 0.01)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], above.astype(np.int8), [0]))))
    starts, ends = edges[::2], edges[1::2]
    if starts.size == 0:
        return []
    # The max from each start to the next covers only windows below the low mark past the run's
    # end, so it is the run's own peak as far as the threshold is concerned.
    peaks = np.maximum.reduceat(p, starts)
    keep = peaks >= threshold
    return [(int(s), int(e)) for s, e in zip(starts[keep], ends[keep], strict=True)]


def _bridge(runs: list[tuple[int, int]], min_gap: int) -> list[tuple[int, int]]:
    """Join runs separated by fewer than `min_gap` windows."""
    merged: list[tuple[int, int]] = []
    for s, e in runs:
        if merged and s - merged[-1][1] < min_gap:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def speech_gaps(
    regions: Sequence[tuple[float, float]], duration_s: float
) -> list[tuple[float, float]]:
    """Every stretch of [0, duration_s] outside `regions` (sorted, disjoint), lead-in and tail
    included, as in the shared ground truth's `gaps`."""
    gaps: list[tuple[float, float]] = []
    at = 0.0
    for start, end in regions:
        if start > at:
            gaps.append((round(at, 3), round(start, 3)))
        at = max(at, end)
    if duration_s > at:
        gaps.append((round(at, 3), round(duration_s, 3)))
    return gaps


def speech_in(
    path: str | Path, options: VadOptions, *, warn: Callable[[str], None]
) -> Soundtrack | None:
    """Where people speak, as a Soundtrack with one (not yet transcribed) line per region; None
    without an audio track, or when the track cannot be read (then `warn` is told and the run
    goes on without the soundtrack)."""
    try:
        speech = detect_speech(path, options)
    except SoundtrackError as exc:
        warn(f"{path}: {exc}; continuing without the soundtrack")
        return None
    if speech is None:
        return None
    lines = [SpokenLine(start_s=a, end_s=b) for a, b in speech.regions]
    return Soundtrack(speech=speech, lines=lines, warnings=speech.warnings)
