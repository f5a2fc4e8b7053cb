"""Muxing (PyAV + numpy): a video and a narration track -> a copy of the video with the narration
mixed over its ducked audio.

Takes the source video, the narration samples and where speech lies (Placements); writes the
muxed file to the path it is given (the runs layer makes that write atomic). The video stream is
copied packet for packet where the container allows it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, OutputError, UsageError
from ..models import Placement
from .audio import BLOCK, mono_frame
from .probe import main_stream

if TYPE_CHECKING:
    import av
    import av.container
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.int16]

MUX_FORMATS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# Ducking envelope around each spoken span: the original audio is already down when the narrator
# starts, and comes back gently after. Spans closer than ATTACK + RELEASE are merged, so the
# original does not pump up and down in the short pauses between lines.
DUCK_ATTACK_S = 0.25
DUCK_RELEASE_S = 0.40

MUX_RATE = 48000  # AAC in a video: the rate every player handles


def check_mux_path(path: Path, video: Path | None = None) -> None:
    """Raise UsageError unless `path`'s extension is a video container we mux into, and
    OutputError when it is the input video itself."""
    if path.suffix.lower() not in MUX_FORMATS:
        raise UsageError(
            f"{path}: cannot mux into {path.suffix or 'a file without extension'!r}",
            hint="name the muxed video .mp4, .mov, .m4v or .mkv",
        )
    if video is not None and path.resolve() == video.resolve():
        raise OutputError(f"{path} is the input video", hint="mux into another file")


# --- muxing ------------------------------------------------------------------------------------


def mux(
    video: Path,
    narration: Samples,
    sample_rate: int,
    placements: Sequence[Placement],
    out: Path,
    *,
    duck_db: float,
    replace_audio: bool = False,
    report: Callable[[str], None] | None = None,
    label: Path | None = None,
) -> Path:
    """A copy of `video` with `narration` mixed over its audio, written to `out` (errors name
    `label`, the file the user asked for, when `out` is a temporary file).

    The original audio (the default or first audio track) is lowered by `duck_db` while the
    narrator speaks, with smooth ramps, or dropped with `replace_audio`; a video without audio
    gets the narration as its only track; the other audio tracks are kept as they are (dropped
    too with `replace_audio`). The video stream (the default or first one) is copied
    packet for packet when `out`'s container can hold its codec, else re-encoded as H.264, which
    `report` is told. Subtitle and data streams are not carried over. Narrated audio: AAC.
    """
    import av

    check_mux_path(out, video)
    try:
        src = av.open(str(video), "r")
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{video}: cannot open the video: {exc}") from exc
    with src:
        fmt = MUX_FORMATS[out.suffix.lower()]
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            with av.open(str(out), "w", format=fmt, options=options) as dst:
                mixing = (narration, sample_rate, placements, duck_db)
                _Remux(src, dst, mixing, replace_audio, report).run()
        except av.FFmpegError as exc:
            raise OutputError(f"cannot write {label or out}: {exc}") from exc
    return out


def _video_out(
    dst: av.container.OutputContainer, vin: Any, report: Callable[[str], None] | None
) -> tuple[Any, bool]:
    """The output video stream, and whether packets are copied (else re-encoded as H.264)."""
    try:
        return dst.add_stream_from_template(vin), True
    except ValueError:
        if report:
            report(
                f"{vin.codec_context.name} video cannot go in {dst.format.name}: "
                "re-encoding it as H.264 (use .mkv to copy it as it is)"
            )
        return _reencoder(dst, vin), False


def _other_audio(
    src: av.container.InputContainer,
    dst: av.container.OutputContainer,
    main: Any,
    report: Callable[[str], None] | None,
) -> dict[int, Any]:
    """Output streams for the audio tracks besides the one narrated over (other languages,
    commentary), copied packet for packet: input stream index -> output stream."""
    kept: dict[int, Any] = {}
    for stream in src.streams.audio:
        if stream is main:
            continue
        try:
            kept[stream.index] = dst.add_stream_from_template(stream)
        except ValueError:
            if report:
                report(
                    f"audio track {stream.index} ({stream.codec_context.name}) cannot go in "
                    f"{dst.format.name}: left out (use .mkv to keep it)"
                )
    return kept


class _Remux:
    """One pass over the source: video copied (or re-encoded), the main audio track resampled,
    ducked and mixed with the narration, every other audio track copied as it is, all written
    interleaved."""

    def __init__(
        self,
        src: av.container.InputContainer,
        dst: av.container.OutputContainer,
        mixing: tuple[Samples, int, Sequence[Placement], float],
        replace_audio: bool,
        report: Callable[[str], None] | None,
    ) -> None:
        import av

        narration, sample_rate, placements, duck_db = mixing
        self.src, self.dst = src, dst
        vin = main_stream(src.streams.video)
        if vin is None:
            raise InputError(f"{src.name}: no video stream to mux the narration into")
        self.vin = vin
        self.ain = None if replace_audio else main_stream(src.streams.audio)
        self.vout, self.copy = _video_out(dst, vin, report)
        channels = 2 if self.ain is not None and self.ain.codec_context.channels >= 2 else 1
        layout = "stereo" if channels == 2 else "mono"
        aout = dst.add_stream("aac", rate=MUX_RATE, layout=layout)
        aout.bit_rate = 128_000 if channels == 2 else 96_000
        for stream_in, stream_out in ((vin, self.vout), (self.ain, aout)):
            if stream_in is not None and stream_in.language:  # players pick tracks by language
                stream_out.metadata["language"] = stream_in.language
        # Narration time 0 is the first frame of the video: that is what segment times refer to.
        start = float(vin.start_time * vin.time_base) if vin.start_time is not None else 0.0
        self.t0 = max(0.0, start)
        spans = _speech_spans(placements)
        self.mixer = _Mixer(
            dst, aout, narration, sample_rate, channels=channels,
            pts0=round(self.t0 * MUX_RATE), spans=spans, duck=10 ** (duck_db / 20),
        )  # fmt: skip
        self.resampler = None
        if self.ain is not None:
            self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=MUX_RATE)
        self.others = {} if replace_audio else _other_audio(src, dst, self.ain, report)
        self.orig_next: int | None = None  # output index where the next original sample goes
        self.first_frame = True

    def run(self) -> None:
        kept = [s for s in self.src.streams.audio if s.index in self.others]
        streams = [self.vin, *([self.ain] if self.ain is not None else []), *kept]
        for packet in self.src.demux(streams):
            if packet.stream.index == self.vin.index:
                self._video(packet)
            elif packet.stream.index in self.others:
                if packet.dts is not None or packet.pts is not None:
                    packet.stream = self.others[packet.stream.index]
                    self.dst.mux(packet)
            elif self.resampler is not None:
                self._audio(packet)
        if self.resampler is not None and self.orig_next is not None:
            for chunk in self.resampler.resample(None):
                self.orig_next = self.mixer.add_original(_planar(chunk), self.orig_next)
        if not self.copy:
            for out_packet in self.vout.encode(None):
                self.dst.mux(out_packet)
        self.mixer.finish()

    def _video(self, packet: Any) -> None:
        if self.copy:
            if packet.dts is None and packet.pts is None:
                return  # the demuxer's end-of-stream marker, nothing to copy
            packet.stream = self.vout
            self.dst.mux(packet)
        else:
            for frame in _decode(packet):
                if self.first_frame:
                    self.first_frame = False
                    if frame.rotation:
                        self.vout.set_display_rotation(frame.rotation)
                for out_packet in self.vout.encode(frame):
                    self.dst.mux(out_packet)
        if self.ain is None and packet.pts is not None and packet.time_base is not None:
            # Narration only: keep the audio written up to the video (good interleaving).
            at = float(packet.pts * packet.time_base) - self.t0
            self.mixer.emit_until(round(at * MUX_RATE))

    def _audio(self, packet: Any) -> None:
        assert self.resampler is not None
        for frame in _decode(packet):
            if self.orig_next is None:
                start = frame.time if frame.time is not None else self.t0
                self.orig_next = round((start - self.t0) * MUX_RATE)
            for chunk in self.resampler.resample(frame):
                self.orig_next = self.mixer.add_original(_planar(chunk), self.orig_next)


def _planar(frame: Any) -> npt.NDArray[np.float32]:
    """A resampled fltp frame as a (channels, samples) float32 array."""
    import numpy as np

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
    import numpy as np

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
        import numpy as np

        self._src = samples
        self._rate = sample_rate
        self._pos = 0
        self._flushed = False
        self._buf = np.zeros(0, dtype=np.float32)
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=MUX_RATE)
        self.length = math.ceil(len(samples) * MUX_RATE / sample_rate)

    def take(self, n: int) -> npt.NDArray[np.float32]:
        import numpy as np

        while len(self._buf) < n and not self._flushed:
            if self._pos < len(self._src):
                frame = mono_frame(self._src[self._pos : self._pos + BLOCK], self._rate, self._pos)
                self._pos += BLOCK
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
        import numpy as np

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
        import numpy as np

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
        import numpy as np

        while self._emitted < end:
            n = min(BLOCK, end - self._emitted)
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
