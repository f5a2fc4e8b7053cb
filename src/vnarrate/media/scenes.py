"""Scene sampling in one pass: an open video -> a FrameSet of frames spread over its shots.

Takes a PyAV container, its Probe and a SamplingSpec (mode "scenes"); gives the FrameSet with
the shot starts. One decoding pass scores every frame for cuts (shots.py) and, on the way, keeps
candidate frames as JPEGs: every half of the final spacing (the video's length / max_frames) and
one just after each cut, so that a short shot has one of its own. When a shot ends only the
candidates nearest to the centres of its share of frames stay, so memory follows max_frames, not
the video's length. At the end the shots are known: the budget is spread over them as
targets.select_times says, and each target takes the nearest candidate of its shot.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import InputError
from ..models import Frame, FrameSet, SamplingSpec
from .encoder import FrameEncoder
from .probe import Probe, damage_warnings, with_rotation
from .shots import ShotScores, Thumbnailer, every_frame, strongest
from .targets import select_times
from .timecode import format_ts

if TYPE_CHECKING:
    import av
    import av.container
    import numpy as np

Progress = Callable[[int, int], None]

# Two frames of a shot are near-duplicates when no pixel of their 64 px luma thumbnails differs
# by more than this (of 255).
_NEAR_DUPLICATE = 6


@dataclass
class _Candidate:
    time_s: float
    index: int
    jpeg: bytes
    luma: np.ndarray  # the 64 px Y thumbnail, for near-duplicates


@dataclass
class _Keeper:
    """Candidates of the shot in progress (all) and of the shots before it (pruned)."""

    step: float  # the final spacing: the video's length / max_frames
    done: list[_Candidate] = field(default_factory=list)
    current: list[_Candidate] = field(default_factory=list)
    shot_start: float = 0.0

    def cut(self, t: float) -> None:
        """A shot starts at `t`: the one before it keeps the candidates nearest to the centres of
        its share of frames (one more than its length asks for, so the final spread can pick)."""
        before = [c for c in self.current if c.time_s < t]
        self.current = [c for c in self.current if c.time_s >= t]
        share = max(1, math.ceil((t - self.shot_start) / self.step)) + 1
        self.done.extend(c for _, c in _nearest(before, _centres(self.shot_start, t, share)))
        self.shot_start = t

    def all(self) -> list[_Candidate]:
        return sorted([*self.done, *self.current], key=lambda c: c.time_s)


def _centres(a: float, b: float, n: int) -> list[float]:
    return [a + (i + 0.5) * (b - a) / n for i in range(n)]


def _nearest(cands: list[_Candidate], times: list[float]) -> list[tuple[float, _Candidate]]:
    """For each time, the nearest candidate not taken yet: (time, candidate) in time order."""
    left = sorted(cands, key=lambda c: c.time_s)
    out: list[tuple[float, _Candidate]] = []
    for t in times:
        if not left:
            break
        i = bisect.bisect_left([c.time_s for c in left], t)
        near = [j for j in (i - 1, i) if 0 <= j < len(left)]
        best = min(near, key=lambda j: (round(abs(left[j].time_s - t), 6), left[j].time_s))
        out.append((t, left.pop(best)))
    return sorted(out, key=lambda tc: tc[1].time_s)


def sample_scenes(
    container: av.container.InputContainer,
    p: Probe,
    spec: SamplingSpec,
    progress: Progress | None,
) -> FrameSet:
    """`spec.max_frames` frames spread over the shots (see the module doc), in one pass."""
    path = p.info.path
    errors: list[float] = []
    scores = ShotScores(p.info.fps, spec.scene_threshold)
    keeper = _Keeper(step=max(p.info.duration_s, 1.0 / p.info.fps) / spec.max_frames)
    thumb = Thumbnailer()
    encoder: FrameEncoder | None = None
    half = keeper.step / 2
    early = 0.5 / p.info.fps + 1e-6
    next_grid = 0.0
    extra = False  # take the next frame: a cut was just confirmed
    total = max(1, p.info.frame_count)
    tick = max(1, total // 100)
    for n, (t, frame) in enumerate(every_frame(container, p, errors)):
        if encoder is None:
            p = with_rotation(p, frame.rotation)
            encoder = FrameEncoder(p.info, spec)
        planes = thumb(frame)
        cut = scores.push(t, planes)
        t = scores.times[-1]  # repaired when the file's times are missing or go back
        if cut is not None:
            keeper.cut(cut)
            extra = True
        # A grid point takes the first frame from half a frame period before it.
        if t >= next_grid - early or extra:
            keeper.current.append(_Candidate(round(t, 6), n, encoder.jpeg(frame), planes[0]))
            extra = False
            while next_grid - early <= t:
                next_grid += half
        if progress is not None and (n + 1) % tick == 0:
            progress(min(n + 1, total - 1), total)
    if not scores.times or encoder is None:
        raise InputError(f"{path}: no decodable video frames")
    if progress is not None:
        progress(len(scores.times), len(scores.times))
    return _finish(p, spec, scores, keeper, encoder.size, errors)


def _finish(
    p: Probe,
    spec: SamplingSpec,
    scores: ShotScores,
    keeper: _Keeper,
    size: tuple[int, int],
    errors: list[float],
) -> FrameSet:
    """The shots are known: spread the budget over them and take the nearest candidates."""
    shots = strongest(scores.shots(), spec.max_frames)
    info = p.info.model_copy(
        update={"frame_count": shots.frame_count, "duration_s": shots.duration_s}
    )
    starts = shots.starts_s
    targets = select_times(info, spec, shot_starts=starts)
    cands = keeper.all()

    def shot_of(t: float) -> int:
        return max(0, bisect.bisect_right(starts, t + 0.5 / info.fps) - 1)

    chosen: list[tuple[float, _Candidate]] = []
    for shot in range(len(starts)):
        mine = [c for c in cands if shot_of(c.time_s) == shot]
        wanted = [t for t in targets if shot_of(t) == shot]
        chosen.extend(_drop_near_duplicates(_nearest(mine, wanted)))
    frames = [
        Frame(
            index=c.index,
            time_s=c.time_s,
            width=size[0],
            height=size[1],
            jpeg=c.jpeg,
            shot=shot_of(c.time_s),
            target_s=round(t, 6),
        )
        for t, c in chosen
    ]
    warnings = [*p.warnings, *damage_warnings(p.info.path, errors, None)]
    if abs(info.duration_s - p.info.duration_s) > max(1.0, 0.05 * info.duration_s):
        warnings.append(
            f"{p.info.path}: the frames run to {format_ts(info.duration_s)}, the header says "
            f"{format_ts(p.info.duration_s)}"
        )
    return FrameSet(
        video=info, frames=frames, mode="scenes", shot_starts_s=starts, warnings=warnings
    )


def _drop_near_duplicates(
    chosen: list[tuple[float, _Candidate]],
) -> list[tuple[float, _Candidate]]:
    """A frame that looks like the one kept before it in its shot adds nothing (a still shot)."""
    kept: list[tuple[float, _Candidate]] = []
    for t, c in chosen:
        if kept:
            before = kept[-1][1].luma
            if before.shape == c.luma.shape and int(abs(before - c.luma).max()) <= _NEAR_DUPLICATE:
                continue
        kept.append((t, c))
    return kept
