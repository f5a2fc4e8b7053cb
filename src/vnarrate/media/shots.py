"""Shots: a video -> where its shots start, in one decoding pass over small thumbnails.

Takes a probed video and a cut threshold; gives Shots (start times, each cut's score, frames seen).
PyAV decodes and hands over the decoder's own YUV planes, shrunk to ~64 px: no colour conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from .probe import Probe, probe_file

if TYPE_CHECKING:
    import av
    import numpy as np

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


@dataclass(frozen=True)
class Shots:
    """Where shots start (s, the first is 0.0), each cut's score and what the pass saw."""

    starts_s: list[float]
    scores: list[float]  # of the cut at starts_s[i + 1]; >= threshold, hard cuts ~0.9 and up
    frame_count: int
    duration_s: float


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
    return detect(probe_file(Path(path)), threshold, progress)


def _thumbs(p: Probe, progress: Progress | None) -> Iterator[tuple[float, list[np.ndarray]]]:
    import av

    total = p.info.frame_count
    step = max(1, total // 100)
    with av.open(p.info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                continue
            for frame in decoded:
                t = (frame.pts - p.start_pts) * p.time_base if frame.pts is not None else -1.0
                yield t, _yuv_thumb(frame)
                n += 1
                if progress is not None and n % step == 0:
                    progress(min(n, total - 1), total)


_PLANAR_8BIT = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}


def _yuv_thumb(frame: av.VideoFrame) -> list[np.ndarray]:
    import cv2
    import numpy as np

    if frame.format.name not in _PLANAR_8BIT:
        h = max(1, round(_THUMB_W * frame.height / max(1, frame.width)))
        frame = frame.reformat(width=_THUMB_W, height=h, format="yuv444p", interpolation="AREA")
    planes = []
    for i, plane in enumerate(frame.planes[:3]):
        a = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[
            :, : plane.width
        ]
        tw = _THUMB_W if i == 0 else _THUMB_W // 2
        th = max(1, round(tw * plane.height / max(1, plane.width)))
        # Point-sample down to ~4x the thumbnail first: area-averaging a whole 1080p plane costs
        # as much as decoding it.
        step = max(1, plane.width // (tw * 4))
        small = cv2.resize(a[::step, ::step], (tw, th), interpolation=cv2.INTER_AREA)
        planes.append(small.astype(np.int16))
    return planes


def _cut_score(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    import numpy as np

    diffs = [float(np.abs(x - y).mean()) / 255.0 for x, y in zip(a, b, strict=True)]
    # Luma counts double: chroma is noisy and half the resolution.
    return _SCORE_GAIN * (2 * diffs[0] + diffs[1] + diffs[2]) / 4


def detect(p: Probe, threshold: float, progress: Progress | None) -> Shots:
    times: list[float] = []
    scores: list[float] = []
    prev: list[np.ndarray] | None = None
    dt = 1.0 / p.info.fps
    for t, thumb in _thumbs(p, progress):
        if t < 0 or (times and t <= times[-1]):
            t = times[-1] + dt if times else 0.0
        times.append(t)
        scores.append(0.0 if prev is None else _cut_score(prev, thumb))
        prev = thumb
    n = len(times)
    if n == 0:
        raise InputError(f"{p.info.path}: no decodable video frames")
    if progress is not None:
        progress(n, n)
    w = max(1, round(_LOCAL_WINDOW_S * p.info.fps))
    candidates = []
    for i in range(1, n):
        s = scores[i]
        if s < threshold:
            continue
        around = scores[max(1, i - w) : i] + scores[i + 1 : i + 1 + w]
        local = sum(around) / len(around) if around else 0.0
        if s >= _LOCAL_RATIO * local:
            candidates.append(i)
    # Strongest first; a cut too close to a stronger one (or to either end) is dropped.
    min_gap = _MIN_SHOT_S
    chosen: list[int] = []
    for i in sorted(candidates, key=lambda j: -scores[j]):
        t = times[i]
        if t < min_gap or times[-1] + dt - t < min_gap:
            continue
        if all(abs(t - times[j]) >= min_gap for j in chosen):
            chosen.append(i)
    chosen.sort()
    return Shots(
        starts_s=[0.0, *(round(times[i], 6) for i in chosen)],
        scores=[round(scores[i], 4) for i in chosen],
        frame_count=n,
        duration_s=round(times[-1] + dt, 6),
    )


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
