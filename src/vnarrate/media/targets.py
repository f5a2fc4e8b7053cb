"""Targets (pure): a video's facts and a SamplingSpec -> the times to take frames at, and which of
them a nearby keyframe may stand in for.

Takes VideoInfo, a SamplingSpec and the keyframe times probing found; gives Targets (ascending
times, the frame number for stride sampling, the keyframe a target snaps to). Decodes nothing.

The snapping rule: a target snaps to the nearest keyframe when (1) that keyframe lies within a
quarter of the spacing around the target (the smaller of the gaps to its neighbours; the video's
length for a lone target) and (2) the exact frame would cost a seek of its own: decoding on from
the previous target's frame would take more frames than seeking to the keyframe before the
target and decoding from there (`seek_pays`). A keyframe costs one frame after a seek, an exact
target everything from the keyframe before it; where targets are dense the decoder reads on and
the exact frame costs nothing extra, so it is kept. Each target moves by at most a quarter of
either gap, so the order is kept, no two targets share a keyframe and every gap stays between
half and one and a half times what it was: the spread stays even. `exact_times` turns snapping
off, and scene sampling never snaps (its one pass decodes every frame anyway).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..models import SamplingSpec, VideoInfo

_T = TypeVar("_T")

# A keyframe may stand in for a target this far away, as a share of the spacing around it.
SNAP_SHARE = 0.25
# A seek costs about this many frame decodes on top of decoding from the keyframe: the decoder
# is flushed and its threads refill. Measured with benchmarks/bench_frames.py --seek-cost (PyAV,
# H.264 180p to 720p); rounded up because keyframe times come from the index, not the frames.
SEEK_OVERHEAD_FRAMES = 8


@dataclass(frozen=True)
class Target:
    """One frame to take: `time_s` as the sampling rule asked; `index` the frame number for
    stride sampling (counted exactly when reading from the start); `key_s` the keyframe that
    stands in for it (None: decode the frame at time_s)."""

    time_s: float
    index: int | None = None
    key_s: float | None = None


def select_times(
    info: VideoInfo, spec: SamplingSpec, *, shot_starts: Sequence[float] | None = None
) -> list[float]:
    """Target timestamps (s, ascending, distinct) for `spec`; pure, decodes nothing.

    - stride N: every Nth frame (frames 0, N, 2N, ... as the notebook), here as times i*N/fps;
      sample_frames picks those frame numbers, whose times differ on variable-frame-rate video;
    - count N: the centres of N equal slices of the video (near, not at, the start and end);
    - interval S (the default, S = 1 s): 0, S, 2S, ...;
    - scenes: `max_frames` spread over the shots that start at `shot_starts` (at least one per
      shot, the rest in proportion to their length, each shot's frames at the centres of equal
      slices); without `shot_starts`, the whole video is one shot.
    Then `max_frames` (default 48) caps the result, keeping an evenly spread subset. A target
    becomes the first frame from half a frame period before it: the nearest frame at a constant
    frame rate; targets finer than the frame rate collapse into one frame.
    """
    fps = info.fps if info.fps > 0 else 25.0
    duration = max(info.duration_s, 1.0 / fps)
    last = max(0.0, duration - 1.0 / fps)
    times: list[float]
    if spec.mode == "stride":
        times = [i / fps for i in stride_indices(info, spec)]
    elif spec.mode == "count":
        times = centres(0.0, duration, spec.count)
    elif spec.mode == "interval":
        n = math.floor(last / spec.every_s + 1e-9) + 1
        times = [i * spec.every_s for i in range(n)]
    else:
        starts = [0.0] if not shot_starts else sorted(shot_starts)
        times = shot_times(starts, duration, fps, spec.max_frames)
    return sorted({round(min(max(t, 0.0), last), 6) for t in spread(times, spec.max_frames)})


def spread(items: list[_T], m: int) -> list[_T]:
    """At most `m` of `items`, evenly spread (the centre of each of m equal runs)."""
    n = len(items)
    return items if n <= m else [items[(2 * i + 1) * n // (2 * m)] for i in range(m)]


def stride_indices(info: VideoInfo, spec: SamplingSpec) -> list[int]:
    """Stride sampling's frame numbers: 0, N, 2N, ... then the max_frames cap."""
    return spread(list(range(0, max(1, info.frame_count), spec.stride)), spec.max_frames)


def centres(start: float, end: float, n: int) -> list[float]:
    """The centres of `n` equal slices of [start, end)."""
    step = (end - start) / n
    return [start + (i + 0.5) * step for i in range(n)]


def shot_times(starts: Sequence[float], duration: float, fps: float, budget: int) -> list[float]:
    """`budget` frames over the shots: one each, then by length (largest share first), never more
    than a shot has frames; each shot's frames at the centres of equal slices of it."""
    bounds = [*starts, duration]
    spans = [(bounds[i], max(bounds[i + 1], bounds[i])) for i in range(len(starts))]
    room = [max(1, round((b - a) * fps)) for a, b in spans]
    alloc = [1] * len(spans)
    # D'Hondt: the next frame goes to the shot with the longest stretch per frame.
    heap = [(-(b - a) / 2, i) for i, (a, b) in enumerate(spans) if room[i] > 1]
    heapq.heapify(heap)
    left = budget - len(spans)
    while left > 0 and heap:
        _, i = heapq.heappop(heap)
        alloc[i] += 1
        left -= 1
        if alloc[i] < room[i]:
            a, b = spans[i]
            heapq.heappush(heap, (-(b - a) / (alloc[i] + 1), i))
    times: list[float] = []
    for (a, b), k in zip(spans, alloc, strict=True):
        times.extend(centres(a, b, k))
    return times


# --- snapping to keyframes --------------------------------------------------------------------------


def seek_pays(here: float, key_s: float, goal: float, fps: float) -> bool:
    """Whether seeking to the keyframe at `key_s` and decoding on to `goal` costs fewer frames
    than decoding on from `here` (never when that keyframe is behind us): the decoder's choice."""
    if key_s <= max(here, 0.0) + 1e-6:
        return False
    return SEEK_OVERHEAD_FRAMES + (goal - key_s) * fps < (goal - here) * fps


def tolerances(times: Sequence[float], duration: float) -> list[float]:
    """How far each target may move: SNAP_SHARE of the smaller gap to its neighbours (of the
    video's length for a lone target)."""
    n = len(times)
    out = []
    for k, t in enumerate(times):
        gaps = [t - times[k - 1]] if k > 0 else []
        gaps += [times[k + 1] - t] if k + 1 < n else []
        out.append(SNAP_SHARE * (min(gaps) if gaps else duration))
    return out


def snap(
    times: Sequence[float], keyframes: Sequence[float], duration: float, fps: float
) -> list[float | None]:
    """For each target time (ascending), the keyframe that stands in for it, or None: the
    nearest keyframe (ties: the earlier), if it lies within the target's tolerance and the exact
    frame would cost a seek of its own (see the module doc)."""
    out: list[float | None] = []
    here = -math.inf  # the frame taken for the previous target
    for t, tol in zip(times, tolerances(times, duration), strict=True):
        i = bisect.bisect_right(keyframes, t + 1e-9)
        before = keyframes[i - 1] if i > 0 else 0.0
        near = [keyframes[j] for j in (i - 1, i) if 0 <= j < len(keyframes)]
        best = min(near, key=lambda k: (abs(k - t), k)) if near else t
        key = best if abs(best - t) <= tol + 1e-9 and seek_pays(here, before, t, fps) else None
        out.append(key)
        here = t if key is None else key
    return out


def make_targets(
    info: VideoInfo,
    spec: SamplingSpec,
    keyframes: Sequence[float] | None,
    *,
    shot_starts: Sequence[float] | None = None,
) -> list[Target]:
    """The targets of `spec` on this video, snapped to `keyframes` (sorted times) unless
    `spec.exact_times` or scene sampling asks for exact frames."""
    indices: list[int] | None = None
    if spec.mode == "stride":
        indices = stride_indices(info, spec)
        times = [i / info.fps for i in indices]
    else:
        times = select_times(info, spec, shot_starts=shot_starts)
    exact = spec.exact_times or spec.mode == "scenes" or not keyframes
    keys = [None] * len(times) if exact else snap(times, keyframes or [], info.duration_s, info.fps)
    return [
        Target(time_s=round(t, 6), index=indices[k] if indices else None, key_s=keys[k])
        for k, t in enumerate(times)
    ]
