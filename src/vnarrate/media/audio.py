"""Audio stage: speech clips -> one track on the video's timeline -> an audio file or a muxed video.

Takes the script's Segments and their Clips (mono s16 PCM); gives an int16 track at 24 kHz with
the Placements where each clip ended up (the subtitles' timings), then files written atomically:
mp3/wav/m4a encoded once, and a copy of the video with the narration over its ducked audio.
PyAV (bundled FFmpeg) does the time-stretching, resampling, encoding and muxing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import InputError, OutputError, UsageError
from ..models import Clip, Placement, Segment
from ..narration.speech import SAMPLE_RATE
from ..runs.output import atomic_path

if TYPE_CHECKING:
    import av
    import av.container
    import av.stream

Samples = npt.NDArray[np.int16]
Resynthesize = Callable[[int, float], Clip]

UNTIMED_GAP_S = 0.5  # pause between clips in the untimed (notebook-style) narration

# Ducking envelope around each spoken span: the original audio is already down when the narrator
# starts, and comes back gently after. Spans closer than ATTACK + RELEASE are merged, so the
# original does not pump up and down in the short pauses between lines.
DUCK_ATTACK_S = 0.25
DUCK_RELEASE_S = 0.40

MUX_RATE = 48000  # AAC in a video: the rate every player handles

_BLOCK = 48000  # samples per mixing block (1 s at 48 kHz): bounded memory for long videos


class _AudioFormat(NamedTuple):
    container: str
    codec: str
    bit_rate: int | None


AUDIO_FORMATS: dict[str, _AudioFormat] = {
    ".mp3": _AudioFormat("mp3", "libmp3lame", 64_000),  # 64 kbps mono is plenty for speech
    ".wav": _AudioFormat("wav", "pcm_s16le", None),
    ".m4a": _AudioFormat("ipod", "aac", 96_000),
}
MUX_FORMATS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def check_audio_path(path: Path) -> None:
    """Raise UsageError unless `path`'s extension is an audio format we encode."""
    if path.suffix.lower() not in AUDIO_FORMATS:
        raise UsageError(
            f"{path}: cannot tell the audio format from {path.suffix or 'no extension'!r}",
            hint="name the output .mp3, .wav or .m4a",
        )


def check_mux_path(path: Path) -> None:
    """Raise UsageError unless `path`'s extension is a video container we mux into."""
    if path.suffix.lower() not in MUX_FORMATS:
        raise UsageError(
            f"{path}: cannot mux into {path.suffix or 'a file without extension'!r}",
            hint="name the muxed video .mp4, .mov, .m4v or .mkv",
        )


# --- timeline --------------------------------------------------------------------------------


def fit_timeline(
    segments: Sequence[Segment],
    clips: Sequence[Clip],
    duration_s: float,
    *,
    resynthesize: Resynthesize | None,
    max_speed: float = 1.25,
    max_stretch: float = 1.25,
    min_gap_s: float = 0.15,
) -> tuple[Samples, list[Placement]]:
    """Place each clip's speech at its segment's start on a silent 24 kHz track as long as the
    video (the TTS's leading and trailing silence trimmed first, see `trim_silence`).

    A clip's slot runs from its segment's start to the next segment's start (less `min_gap_s`)
    or to the end of the video. A clip longer than its slot is fitted, in this order:
    1. spoken again faster by `resynthesize(segment, speed)`, up to `max_speed`;
    2. time-stretched without changing pitch (atempo), up to `max_stretch`;
    3. left as it is, pushing the following clips later (their `pushed_s`).
    Speech is never cut: a last clip that runs past the video's end makes the track longer.
    `clips` are matched to `segments` by `Clip.segment`; placements come in timeline order.
    """
    sr = SAMPLE_RATE
    by_segment = {clip.segment: clip for clip in clips}
    order = sorted(range(len(segments)), key=lambda i: segments[i].start_s)
    gap = round(max(0.0, min_gap_s) * sr)
    video_end = round(max(0.0, duration_s) * sr)

    placed: list[tuple[int, Samples]] = []
    placements: list[Placement] = []
    cursor = 0  # first sample the next clip may start at (previous clip's end + gap)
    for k, i in enumerate(order):
        clip = by_segment.get(i)
        if clip is None:
            continue
        slot_start = round(segments[i].start_s * sr)
        last = k + 1 == len(order)
        slot_end = (
            max(slot_start, video_end) if last else round(segments[order[k + 1]].start_s * sr)
        )
        limit = slot_end if last else slot_end - gap  # no pause needed after the last line
        start = max(slot_start, cursor)
        samples, speed, stretch = _fit_clip(
            i,
            clip,
            room=(limit - start) / sr,
            resynthesize=resynthesize,
            max_speed=max_speed,
            max_stretch=max_stretch,
        )
        placed.append((start, samples))
        placements.append(
            Placement(
                segment=i,
                text=clip.text,
                start_s=start / sr,
                end_s=(start + len(samples)) / sr,
                slot_start_s=slot_start / sr,
                slot_end_s=slot_end / sr,
                speed=speed,
                stretch=stretch,
                pushed_s=(start - slot_start) / sr,
            )
        )
        cursor = start + len(samples) + gap

    length = max([video_end] + [start + len(s) for start, s in placed])
    track = np.zeros(length, dtype=np.int16)
    for start, samples in placed:  # clips never overlap: each starts after the previous + gap
        track[start : start + len(samples)] = samples
    return track, placements


def _fit_clip(
    index: int,
    clip: Clip,
    *,
    room: float,
    resynthesize: Resynthesize | None,
    max_speed: float,
    max_stretch: float,
) -> tuple[Samples, float, float]:
    """The clip's samples made to fit `room` seconds as far as the bounds allow; with the TTS
    speed and the stretch factor that were used."""
    samples = trim_silence(clip_samples(clip))
    speed = clip.speed
    if _seconds(samples) <= room:
        return samples, speed, 1.0

    if resynthesize is not None and speed < max_speed - 1e-6:
        # Speech duration scales about inversely with TTS speed; the 2 % margin covers what does
        # not (pauses, the model's own variation between takes).
        need = speed * _seconds(samples) / room if room > 0 else math.inf
        target = min(max_speed, math.ceil(need * 1.02 * 100) / 100)
        again = resynthesize(index, target)
        faster = trim_silence(clip_samples(again))
        if len(faster) < len(samples):  # a new take can come out longer: keep the shorter one
            samples, speed = faster, again.speed
        if _seconds(samples) <= room:
            return samples, speed, 1.0

    stretch = 1.0
    if max_stretch > 1.0:
        need = _seconds(samples) / room if room > 0 else math.inf
        factor = min(max_stretch, need * 1.002)  # atempo's output can run a few ms long
        if factor > 1.001:
            samples = time_stretch(samples, SAMPLE_RATE, factor)
            stretch = factor
    return samples, speed, stretch


def _seconds(samples: Samples) -> float:
    return len(samples) / SAMPLE_RATE


def trim_silence(
    samples: Samples,
    sample_rate: int = SAMPLE_RATE,
    *,
    threshold_db: float = -50.0,
    keep_lead_s: float = 0.01,
    keep_tail_s: float = 0.06,
) -> Samples:
    """`samples` without the silence TTS leaves before and after the words (10 ms windows under
    `threshold_db` dBFS RMS), keeping a short lead-in and tail so no onset or decay is clipped.
    Placing the words, not the silence, at the segment's start is what puts speech on time."""
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
    samples = np.frombuffer(clip.pcm[: len(clip.pcm) // 2 * 2], dtype="<i2").astype(np.int16)
    if clip.sample_rate != SAMPLE_RATE and len(samples):
        samples = _resample_mono(samples, clip.sample_rate, SAMPLE_RATE)
    return samples


def untimed_track(clips: Sequence[Clip]) -> Samples:
    """The notebook's narration: clips one after another with a short pause, as long as the
    speech (no relation to the video's timeline)."""
    gap = np.zeros(round(UNTIMED_GAP_S * SAMPLE_RATE), dtype=np.int16)
    parts: list[Samples] = []
    for n, clip in enumerate(clips):
        if n:
            parts.append(gap)
        parts.append(clip_samples(clip))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


# --- PyAV helpers ------------------------------------------------------------------------------


def _mono_frame(samples: Samples, sample_rate: int, pts: int) -> av.AudioFrame:
    import av

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

    for pos in range(0, len(samples), _BLOCK):
        graph.push(_mono_frame(samples[pos : pos + _BLOCK], sample_rate, pos))
        drain()
    graph.push(None)
    drain()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


def _resample_mono(samples: Samples, rate_in: int, rate_out: int) -> Samples:
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_out)
    out: list[Samples] = []
    for pos in range(0, len(samples), _BLOCK):
        frame = _mono_frame(samples[pos : pos + _BLOCK], rate_in, pos)
        out.extend(f.to_ndarray().reshape(-1).astype(np.int16) for f in resampler.resample(frame))
    out.extend(f.to_ndarray().reshape(-1).astype(np.int16) for f in resampler.resample(None))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


# --- encoding ----------------------------------------------------------------------------------


def encode_audio(samples: Samples, sample_rate: int, path: Path, *, force: bool) -> Path:
    """Encode the mono track once, in the format `path`'s extension names (.mp3, .wav, .m4a),
    atomically. MP3 gets a LAME header with the encoder delay, so decoders trim the priming
    samples and speech stays on time."""
    import av

    check_audio_path(path)
    fmt = AUDIO_FORMATS[path.suffix.lower()]
    with atomic_path(path, force=force) as tmp:
        options = {"movflags": "+faststart"} if fmt.container == "ipod" else {}
        try:
            with av.open(str(tmp), "w", format=fmt.container, options=options) as out:
                stream: Any = out.add_stream(fmt.codec, rate=sample_rate, layout="mono")
                if fmt.bit_rate:
                    stream.bit_rate = fmt.bit_rate
                for pos in range(0, len(samples), _BLOCK):
                    frame = _mono_frame(samples[pos : pos + _BLOCK], sample_rate, pos)
                    for packet in stream.encode(frame):
                        out.mux(packet)
                for packet in stream.encode(None):
                    out.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {path}: {exc}") from exc
    return path


# --- muxing ------------------------------------------------------------------------------------


def mux(
    video: Path,
    narration: Samples,
    sample_rate: int,
    placements: Sequence[Placement],
    out: Path,
    *,
    duck_db: float = -12.0,
    replace_audio: bool = False,
    force: bool,
    report: Callable[[str], None] | None = None,
) -> Path:
    """A copy of `video` with `narration` mixed over its audio, written atomically to `out`.

    The original audio (the default or first audio track) is lowered by `duck_db` while the
    narrator speaks, with smooth ramps, or dropped with `replace_audio`; a video without audio
    gets the narration as its only track. The video stream (the default or first one) is copied
    packet for packet when `out`'s container can hold its codec, else re-encoded as H.264, which
    `report` is told. Other streams (extra tracks, subtitles) are not carried over. Audio: AAC.
    """
    import av

    check_mux_path(out)
    if out.resolve() == video.resolve():
        raise OutputError(f"{out} is the input video", hint="mux into another file")
    try:
        src = av.open(str(video), "r")
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{video}: cannot open the video: {exc}") from exc
    with src, atomic_path(out, force=force) as tmp:
        fmt = MUX_FORMATS[out.suffix.lower()]
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            with av.open(str(tmp), "w", format=fmt, options=options) as dst:
                _remux(src, dst, narration, sample_rate, placements, duck_db, replace_audio, report)
        except av.FFmpegError as exc:
            raise OutputError(f"cannot write {out}: {exc}") from exc
    return out


def _main_stream(streams: Sequence[Any]) -> Any:
    """The stream flagged default, else the first one, else None. Cover art (a "video" stream
    holding one picture) is never the video."""
    from av.stream import Disposition

    usable = [s for s in streams if not s.disposition & Disposition.attached_pic]
    for stream in usable:
        if stream.disposition & Disposition.default:
            return stream
    return usable[0] if usable else None


def _remux(
    src: av.container.InputContainer,
    dst: av.container.OutputContainer,
    narration: Samples,
    sample_rate: int,
    placements: Sequence[Placement],
    duck_db: float,
    replace_audio: bool,
    report: Callable[[str], None] | None,
) -> None:
    import av

    vin = _main_stream(src.streams.video)
    if vin is None:
        raise InputError(f"{src.name}: no video stream to mux the narration into")
    ain = None if replace_audio else _main_stream(src.streams.audio)

    copy = True
    try:
        vout = dst.add_stream_from_template(vin)
    except ValueError:
        copy = False
        vout = _reencoder(dst, vin)
        if report:
            report(
                f"{vin.codec_context.name} video cannot go in {dst.format.name}: "
                "re-encoding it as H.264 (use .mkv to copy it as it is)"
            )

    channels = 2 if ain is not None and ain.codec_context.channels >= 2 else 1
    layout = "stereo" if channels == 2 else "mono"
    aout = dst.add_stream("aac", rate=MUX_RATE, layout=layout)
    aout.bit_rate = 128_000 if channels == 2 else 96_000
    for stream_in, stream_out in ((vin, vout), (ain, aout)):
        if stream_in is not None and stream_in.language:  # players pick tracks by language
            stream_out.metadata["language"] = stream_in.language

    # Narration time 0 is the first frame of the video: that is what segment times refer to.
    t0 = float(vin.start_time * vin.time_base) if vin.start_time is not None else 0.0
    t0 = max(0.0, t0)
    mixer = _Mixer(
        dst,
        aout,
        narration,
        sample_rate,
        channels=channels,
        pts0=round(t0 * MUX_RATE),
        spans=_speech_spans(placements),
        duck=10 ** (duck_db / 20),
    )
    resampler = (
        av.AudioResampler(format="fltp", layout=layout, rate=MUX_RATE) if ain is not None else None
    )
    orig_next: int | None = None  # output index where the next original sample goes

    streams = [vin] if ain is None else [vin, ain]
    first_frame = True
    for packet in src.demux(streams):
        if packet.stream.index == vin.index:
            if copy:
                if packet.dts is None and packet.pts is None:
                    continue  # the demuxer's end-of-stream marker, nothing to copy
                packet.stream = vout
                dst.mux(packet)
            else:
                for frame in _decode(packet):
                    if first_frame:
                        first_frame = False
                        if frame.rotation:
                            vout.set_display_rotation(frame.rotation)
                    for out_packet in vout.encode(frame):
                        dst.mux(out_packet)
            if ain is None and packet.pts is not None and packet.time_base is not None:
                # Narration only: keep the audio written up to the video (good interleaving).
                mixer.emit_until(round((float(packet.pts * packet.time_base) - t0) * MUX_RATE))
        elif resampler is not None:
            for frame in _decode(packet):
                if orig_next is None:
                    start = frame.time if frame.time is not None else t0
                    orig_next = round((start - t0) * MUX_RATE)
                for chunk in resampler.resample(frame):
                    orig_next = mixer.add_original(_planar(chunk), orig_next)
    if resampler is not None and orig_next is not None:
        for chunk in resampler.resample(None):
            orig_next = mixer.add_original(_planar(chunk), orig_next)
    if not copy:
        for out_packet in vout.encode(None):
            dst.mux(out_packet)
    mixer.finish()


def _planar(frame: Any) -> npt.NDArray[np.float32]:
    """A resampled fltp frame as a (channels, samples) float32 array."""
    return np.asarray(frame.to_ndarray(), dtype=np.float32)


def _decode(packet: Any) -> list[Any]:
    """A packet's frames; a damaged packet yields none instead of failing the whole copy."""
    import av

    try:
        return list(packet.decode())
    except av.InvalidDataError:
        return []


def _reencoder(dst: av.container.OutputContainer, vin: Any) -> Any:
    """An H.264 stream for a video whose codec the target container cannot hold."""
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    vout = dst.add_stream("libx264", rate=rate)
    # yuv420p needs even sizes; the encoder's scaler does the rest.
    vout.width = max(2, vin.codec_context.width // 2 * 2)
    vout.height = max(2, vin.codec_context.height // 2 * 2)
    vout.pix_fmt = "yuv420p"
    vout.time_base = vin.time_base  # keep the source's timestamps, even for variable frame rates
    vout.codec_context.time_base = vin.time_base
    vout.options = {"preset": "veryfast", "crf": "18"}
    return vout


def _speech_spans(placements: Sequence[Placement]) -> list[tuple[float, float]]:
    """When the narrator speaks, with spans closer than the ducking ramps merged."""
    spans: list[tuple[float, float]] = []
    for p in sorted(placements, key=lambda p: p.start_s):
        if p.end_s <= p.start_s:
            continue
        if spans and p.start_s - spans[-1][1] < DUCK_ATTACK_S + DUCK_RELEASE_S:
            spans[-1] = (spans[-1][0], max(spans[-1][1], p.end_s))
        else:
            spans.append((p.start_s, p.end_s))
    return spans


def duck_gain(
    times: npt.NDArray[np.float64], spans: Sequence[tuple[float, float]], duck: float
) -> npt.NDArray[np.float32]:
    """Gain for the original audio at `times` (seconds): 1 away from speech, `duck` under it,
    with raised-cosine ramps (no clicks) before each span starts and after it ends."""
    depth = np.zeros(len(times), dtype=np.float64)  # 0 = full level, 1 = fully ducked
    if len(times):
        lo, hi = float(times[0]), float(times[-1])
        for start, end in spans:
            if end + DUCK_RELEASE_S < lo or start - DUCK_ATTACK_S > hi:
                continue
            up = np.clip((times - (start - DUCK_ATTACK_S)) / DUCK_ATTACK_S, 0.0, 1.0)
            down = np.clip(((end + DUCK_RELEASE_S) - times) / DUCK_RELEASE_S, 0.0, 1.0)
            shape = np.minimum(0.5 - 0.5 * np.cos(np.pi * up), 0.5 - 0.5 * np.cos(np.pi * down))
            depth = np.maximum(depth, shape)
    return (1.0 - depth * (1.0 - duck)).astype(np.float32)


class _NarrationStream:
    """The narration track read sequentially as float32 at MUX_RATE, resampled block by block
    (an hour of narration is never held twice in memory)."""

    def __init__(self, samples: Samples, sample_rate: int) -> None:
        import av

        self._src = samples
        self._rate = sample_rate
        self._pos = 0
        self._flushed = False
        self._buf = np.zeros(0, dtype=np.float32)
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=MUX_RATE)
        self.length = math.ceil(len(samples) * MUX_RATE / sample_rate)

    def take(self, n: int) -> npt.NDArray[np.float32]:
        while len(self._buf) < n and not self._flushed:
            if self._pos < len(self._src):
                frame = _mono_frame(
                    self._src[self._pos : self._pos + _BLOCK], self._rate, self._pos
                )
                self._pos += _BLOCK
                frames = self._resampler.resample(frame)
            else:
                frames = self._resampler.resample(None)
                self._flushed = True
            parts = [self._buf, *(f.to_ndarray().reshape(-1).astype(np.float32) for f in frames)]
            self._buf = np.concatenate(parts)
        out, self._buf = self._buf[:n], self._buf[n:]
        if len(out) < n:
            out = np.concatenate([out, np.zeros(n - len(out), dtype=np.float32)])
        return out


class _Mixer:
    """Writes the output audio in order: original (ducked) + narration, encoded as it goes."""

    def __init__(
        self,
        dst: av.container.OutputContainer,
        stream: Any,
        narration: Samples,
        sample_rate: int,
        *,
        channels: int,
        pts0: int,
        spans: list[tuple[float, float]],
        duck: float,
    ) -> None:
        self._dst = dst
        self._stream = stream
        self._narration = _NarrationStream(narration, sample_rate)
        self._channels = channels
        self._layout = "stereo" if channels == 2 else "mono"
        self._pts0 = pts0
        self._spans = spans
        self._duck = duck
        self._emitted = 0  # output samples written so far
        self._orig: list[npt.NDArray[np.float32]] = []  # pending original audio from _emitted on
        self._orig_len = 0
        self._orig_end = 0

    def add_original(self, chunk: npt.NDArray[np.float32], at: int) -> int:
        """Queue original samples (channels x n) that start at output index `at`; returns where
        the next chunk goes. Audio before the video's start is dropped, gaps become silence."""
        chunk = chunk.astype(np.float32, copy=False)
        n = int(chunk.shape[1])
        pending_end = self._emitted + self._orig_len
        if at > pending_end:
            self._push(np.zeros((self._channels, at - pending_end), dtype=np.float32))
        elif at < pending_end:
            chunk = chunk[:, pending_end - at :]
        if chunk.shape[1]:
            self._push(chunk)
        self._orig_end = max(self._orig_end, at + n)
        self.emit_until(self._emitted + self._orig_len)
        return at + n

    def _push(self, chunk: npt.NDArray[np.float32]) -> None:
        self._orig.append(chunk)
        self._orig_len += chunk.shape[1]

    def _take_original(self, n: int) -> npt.NDArray[np.float32]:
        out = np.zeros((self._channels, n), dtype=np.float32)
        filled = 0
        while filled < n and self._orig:
            head = self._orig[0]
            k = min(n - filled, head.shape[1])
            out[:, filled : filled + k] = head[:, :k]
            filled += k
            if k == head.shape[1]:
                self._orig.pop(0)
            else:
                self._orig[0] = head[:, k:]
        self._orig_len -= filled
        return out

    def emit_until(self, end: int) -> None:
        """Mix and encode the output up to sample `end` (exclusive)."""
        import av

        while self._emitted < end:
            n = min(_BLOCK, end - self._emitted)
            times = (self._emitted + np.arange(n, dtype=np.float64)) / MUX_RATE
            gain = duck_gain(times, self._spans, self._duck)
            mixed = self._take_original(n) * gain + self._narration.take(n)
            np.clip(mixed, -1.0, 1.0, out=mixed)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(mixed, dtype=np.float32), format="fltp", layout=self._layout
            )
            frame.sample_rate = MUX_RATE
            frame.pts = self._pts0 + self._emitted
            frame.time_base = Fraction(1, MUX_RATE)
            for packet in self._stream.encode(frame):
                self._dst.mux(packet)
            self._emitted += n

    def finish(self) -> None:
        """Write what is left (the longer of the original audio and the narration), then flush."""
        self.emit_until(max(self._narration.length, self._orig_end, self._emitted))
        for packet in self._stream.encode(None):
            self._dst.mux(packet)
