"""Shots: decoded frames -> where the video's shots start, scored on small thumbnails as they pass.

Takes frames one by one (ShotScores.push: a time and the frame's ~64 px YUV thumbnail); gives
Shots (start times, each cut's score, frames seen) at the end, and tentative cuts on the way so
that scene sampling can take its frames in the same pass. `detect_shots` runs a pass of its own.
Thumbnails come from the decoder's own YUV planes: no colour conversion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .probe import open_container, read_probe, set_threads

if TYPE_CHECKING:
    import av
    import av.container
    import numpy as np

    from .probe import Probe

Progress = Callable[[int, int], None]

# Shot detection: a frame's score is its mean absolute difference from the previous frame on ~64 px
# wide YUV thumbnails, times _SCORE_GAIN (uncapped, so that the strongest cuts still rank). A cut
# must also stand out from its neighbours within _LOCAL_WINDOW_S (x _LOCAL_RATIO): a camera pan, a
# fade or a dissolve changes every frame about as much, a cut changes one. Measured on the shared
# clips: hard cuts score 0.9 and up at 100-200x their neighbours, a cut between two look-alike
# shots 0.4 at 4-9x; a shaky pan up to 0.4 and a fast fade-in 0.3, both at 1-3x. Shots are at
# least _MIN_SHOT_S long.
_SCORE_GAIN = 6.0
_THUMB_W = 64
_LOCAL_WINDOW_S = 0.25
_LOCAL_RATIO = 3.0
_MIN_SHOT_S = 0.5
_PLANAR_8BIT = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}


@dataclass(frozen=True)
class Shots:
    """Where shots start (s, the first is 0.0), each cut's score and what the pass saw."""

    starts_s: list[float]
    scores: list[float]  # of the cut at starts_s[i + 1]; >= threshold, hard cuts ~0.9 and up
    frame_count: int
    duration_s: float


class Thumbnailer:
    """A frame's ~64 px wide Y, U and V planes (int16), from the decoder's planes; cv2 and numpy
    bound once."""

    def __init__(self) -> None:
        import cv2
        import numpy as np
        from av.video.reformatter import VideoReformatter

        self.cv2, self.np = cv2, np
        self.reformatter = VideoReformatter()  # keeps its swscale context between frames

    def __call__(self, frame: av.VideoFrame) -> list[np.ndarray]:
        cv2, np = self.cv2, self.np
        if frame.format.name not in _PLANAR_8BIT:
            h = max(1, round(_THUMB_W * frame.height / max(1, frame.width)))
            frame = self.reformatter.reformat(
                frame, width=_THUMB_W, height=h, format="yuv444p", interpolation="AREA"
            )
        planes = []
        for i, plane in enumerate(frame.planes[:3]):
            a = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
            a = a[:, : plane.width]
            tw = _THUMB_W if i == 0 else _THUMB_W // 2
            th = max(1, round(tw * plane.height / max(1, plane.width)))
            # Point-sample down to ~4x the thumbnail first: area-averaging a whole 1080p plane
            # costs as much as decoding it.
            step = max(1, plane.width // (tw * 4))
            small = cv2.resize(a[::step, ::step], (tw, th), interpolation=cv2.INTER_AREA)
            planes.append(small.astype(np.int16))
        return planes


class ShotScores:
    """Scores frames as they pass (push), says when a cut is certain enough to act on
    (`push` returns its time), and picks the shots at the end (`shots`)."""

    def __init__(self, fps: float, threshold: float) -> None:
        import numpy as np

        self.np = np
        self.fps = fps
        self.threshold = threshold
        self.window = max(1, round(_LOCAL_WINDOW_S * fps))
        self.times: list[float] = []
        self.scores: list[float] = []
        self._prev: list[np.ndarray] | None = None

    def push(self, t: float, thumb: list[np.ndarray]) -> float | None:
        """Add a frame; the time of a cut that just became certain (window frames ago), if any."""
        np = self.np
        dt = 1.0 / self.fps
        if t < 0 or (self.times and t <= self.times[-1]):
            t = self.times[-1] + dt if self.times else 0.0
        if self._prev is None:
            score = 0.0
        else:
            d = [
                float(np.abs(x - y).mean()) / 255.0 for x, y in zip(self._prev, thumb, strict=True)
            ]
            # Luma counts double: chroma is noisy and half the resolution.
            score = _SCORE_GAIN * (2 * d[0] + d[1] + d[2]) / 4
        self._prev = thumb
        self.times.append(t)
        self.scores.append(score)
        i = len(self.scores) - 1 - self.window
        return self.times[i] if i >= 1 and self._is_cut(i) else None

    def _is_cut(self, i: int) -> bool:
        s, w = self.scores[i], self.window
        if s < self.threshold:
            return False
        around = self.scores[max(1, i - w) : i] + self.scores[i + 1 : i + 1 + w]
        local = sum(around) / len(around) if around else 0.0
        return s >= _LOCAL_RATIO * local

    def shots(self) -> Shots:
        """The cuts: strongest first, one too close to a stronger one (or to either end) is
        dropped."""
        n = len(self.times)
        if n == 0:
            raise ValueError("no frames")
        dt = 1.0 / self.fps
        times = self.times
        candidates = [i for i in range(1, n) if self._is_cut(i)]
        chosen: list[int] = []
        for i in sorted(candidates, key=lambda j: -self.scores[j]):
            t = times[i]
            if t < _MIN_SHOT_S or times[-1] + dt - t < _MIN_SHOT_S:
                continue
            if all(abs(t - times[j]) >= _MIN_SHOT_S for j in chosen):
                chosen.append(i)
        chosen.sort()
        return Shots(
            starts_s=[0.0, *(round(times[i], 6) for i in chosen)],
            scores=[round(self.scores[i], 4) for i in chosen],
            frame_count=n,
            duration_s=round(times[-1] + dt, 6),
        )


def every_frame(
    container: av.container.InputContainer, p: Probe, errors: list[float]
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Every frame of the video from the start, in showing order, with its time (s); packets
    that do not decode are skipped, and so are the frames after them up to the next keyframe
    (the decoder patches them with wrong pictures); their times go to `errors`."""
    import av

    stream = container.streams.video[p.stream_index]
    with contextlib.suppress(av.FFmpegError):  # probing read on: back to the start if we can
        container.seek(p.start_pts, stream=stream, backward=True)
    ctx = stream.codec_context
    ctx.skip_frame = "DEFAULT"
    tb, start = p.time_base, p.start_pts
    packets = container.demux(stream)
    lost = False  # a packet failed: the frames referring to it are wrong until a keyframe
    while True:
        try:
            packet: av.Packet[Any] | None = next(packets)
        except (StopIteration, av.FFmpegError):
            packet = None  # the end, or unreadable from here on: drain what was read
        if packet is not None and not packet.size:
            packet = None  # the demuxer's end-of-stream marker
        if lost and packet is not None and not packet.is_keyframe:
            if packet.pts is not None:
                errors.append(float((packet.pts - start) * tb))
            continue
        lost = False
        try:
            frames = ctx.decode(packet)
        except av.FFmpegError:
            if packet is None:
                return
            if packet.pts is not None:
                errors.append(float((packet.pts - start) * tb))
            # What is still inside is good; frame threads report a failure late, so start
            # again from the next keyframe.
            frames = []
            with contextlib.suppress(av.FFmpegError):
                frames = ctx.decode(None)
            ctx.flush_buffers()
            lost = True
        for frame in frames:
            t = float((frame.pts - start) * tb) if frame.pts is not None else -1.0
            yield t, frame
        if packet is None:
            return


def detect_shots(
    path: str | Path,
    *,
    threshold: float = 0.3,
    progress: Progress | None = None,
) -> Shots:
    """Shot changes in one decoding pass over ~64 px thumbnails (PyAV: the decoder's own planes,
    no colour conversion). A cut scores at least `threshold` (SamplingSpec.scene_threshold, 0..1)
    and 3x its neighbours: 0.3 finds hard cuts (which score ~0.9 and up); lower finds softer ones.
    """
    path = Path(path)
    with open_container(path) as container:
        p = read_probe(container, path)
        set_threads(container, p)
        scores = ShotScores(p.info.fps, threshold)
        thumb = Thumbnailer()
        total = p.info.frame_count
        step = max(1, total // 100)
        for n, (t, frame) in enumerate(every_frame(container, p, []), start=1):
            scores.push(t, thumb(frame))
            if progress is not None and n % step == 0:
                progress(min(n, total - 1), total)
    if not scores.times:
        raise InputError(f"{path}: no decodable video frames")
    if progress is not None:
        progress(len(scores.times), len(scores.times))
    return scores.shots()


def strongest(shots: Shots, keep: int) -> Shots:
    """The shots left when only the `keep - 1` strongest cuts count."""
    if len(shots.starts_s) <= keep:
        return shots
    order = sorted(range(len(shots.scores)), key=lambda i: -shots.scores[i])[: keep - 1]
    order.sort()
    return Shots(
        starts_s=[0.0, *(shots.starts_s[i + 1] for i in order)],
        scores=[shots.scores[i] for i in order],
        frame_count=shots.frame_count,
        duration_s=shots.duration_s,
    )
