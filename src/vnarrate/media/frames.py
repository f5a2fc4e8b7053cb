"""Frames stage: takes a video path and a SamplingSpec, gives a FrameSet (the chosen frames in time
order, resized and JPEG-encoded, with index and timestamp).

Decoding uses OpenCV (it applies rotation metadata); probing (probe.py) and the shot-detection
pass (shots.py) use PyAV.
Times are seconds from the first frame of the video stream, as OpenCV reports them.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..errors import InputError
from ..models import Frame, FrameSet, SamplingSpec, VideoInfo
from .probe import Probe, probe_file
from .shots import detect, strongest

if TYPE_CHECKING:
    import cv2
    import numpy as np

Progress = Callable[[int, int], None]
_T = TypeVar("_T")

# Seeking costs a fixed overhead on top of decoding from the keyframe to the target: the demuxer
# jumps, the decoder is flushed and its frame threads refill. benchmarks/bench_frames.py
# --seek-cost measured 12-18 frame-decodes (1080p and 320x180 H.264); we count 24 because the
# keyframe times we know are decode times, a frame or two early when there are B-frames.
SEEK_OVERHEAD_FRAMES = 24
# OpenCV seeks to 16 frames before the target, then backwards to a keyframe (cap_ffmpeg_impl.hpp).
_CV_SEEK_BACKOFF_FRAMES = 16
# We ask for a point a little before the target and step forward: OpenCV turns a time into a frame
# number with the average fps, which lands one frame late on variable-frame-rate files.
_OUR_SEEK_BACKOFF_FRAMES = 2
# When the container has no keyframe index, assume x264's default keyframe interval.
_DEFAULT_GOP_FRAMES = 250

# Two frames of a shot are near-duplicates when no 1/32 of the picture differs by more than this.
_NEAR_DUPLICATE = 6.0 / 255.0


# --- choosing timestamps --------------------------------------------------------------------------


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
      slices); without `shot_starts`, the whole video is one shot, and with more shots than
      `max_frames` the cap below thins them evenly (sample_frames keeps the strongest cuts).
    Then `max_frames` (default 48) caps the result, keeping an evenly spread subset. A target
    becomes the first frame from half a frame period before it: the nearest frame at a constant
    frame rate; targets finer than the frame rate collapse into one frame.
    """
    fps = info.fps if info.fps > 0 else 25.0
    duration = max(info.duration_s, 1.0 / fps)
    last = max(0.0, duration - 1.0 / fps)
    times: list[float]
    if spec.mode == "stride":
        times = [i / fps for i in _stride_indices(info, spec)]
    elif spec.mode == "count":
        times = _centres(0.0, duration, spec.count)
    elif spec.mode == "interval":
        n = math.floor(last / spec.every_s + 1e-9) + 1
        times = [i * spec.every_s for i in range(n)]
    else:
        starts = [0.0] if not shot_starts else sorted(shot_starts)
        times = _shot_times(starts, duration, fps, spec.max_frames)
    return sorted({round(min(max(t, 0.0), last), 6) for t in _spread(times, spec.max_frames)})


def _spread(items: list[_T], m: int) -> list[_T]:
    """At most `m` of `items`, evenly spread (the centre of each of m equal runs)."""
    n = len(items)
    return items if n <= m else [items[(2 * i + 1) * n // (2 * m)] for i in range(m)]


def _stride_indices(info: VideoInfo, spec: SamplingSpec) -> list[int]:
    return _spread(list(range(0, max(1, info.frame_count), spec.stride)), spec.max_frames)


def _centres(start: float, end: float, n: int) -> list[float]:
    step = (end - start) / n
    return [start + (i + 0.5) * step for i in range(n)]


def _shot_times(starts: Sequence[float], duration: float, fps: float, budget: int) -> list[float]:
    """`budget` frames over the shots: one each, then by length (largest share first), never more
    than a shot has frames."""
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
        times.extend(_centres(a, b, k))
    return times


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size a frame is sent at: shrunk to fit `max_side` (0 = as is), aspect kept, never
    enlarged."""
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


# --- decoding -------------------------------------------------------------------------------------


class _Reader:
    """OpenCV capture that knows the index and a validated time of the frame it last grabbed."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.dt = 1.0 / fps
        self.cap = self._open()
        self.index = -1
        self.time = -math.inf
        self.seeks = 0
        self.seekable = True
        self._after_seek = False

    def _open(self) -> cv2.VideoCapture:
        import cv2

        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise InputError(f"{self.path}: OpenCV cannot open this video")
        # OpenCV 5 rotates by the display matrix by default, 4.11 does not: say what we want.
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return cap

    def restart(self) -> None:
        self.cap.release()
        self.cap = self._open()
        self.index = -1
        self.time = -math.inf
        self._after_seek = False

    def grab(self) -> bool:
        import cv2

        if not self.cap.grab():
            return False
        if self._after_seek:
            self.index = max(0, round(self.cap.get(cv2.CAP_PROP_POS_FRAMES)) - 1)
        else:
            self.index += 1
        t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if self._after_seek:
            self._after_seek = False
            if not math.isfinite(t) or t < 0:
                t = self.index * self.dt
        elif not math.isfinite(t) or t <= self.time:
            # Missing (OpenCV says 0) or non-increasing timestamps: trust the frame rate instead.
            t = 0.0 if self.index == 0 else self.time + self.dt
        self.time = t
        return True

    def seek(self, t: float) -> None:
        import cv2

        self.seeks += 1
        self.cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, t) * 1000.0)
        self._after_seek = True
        self.index = -1
        self.time = -math.inf

    def retrieve(self) -> np.ndarray | None:
        ok, img = self.cap.retrieve()
        return img if ok and img is not None and img.size else None

    def release(self) -> None:
        self.cap.release()


def _keyframe_before(p: Probe, t: float) -> float:
    keys = p.keyframes_s
    if keys:
        i = bisect.bisect_right(keys, t + 1e-6) - 1
        return keys[i] if i >= 0 else 0.0
    gop = _DEFAULT_GOP_FRAMES / p.info.fps
    return math.floor(max(t, 0.0) / gop) * gop


def _should_seek(p: Probe, reader: _Reader, seek_to: float, target: float) -> bool:
    """Seek when decoding from the keyframe before the target (plus the seek's own cost) is
    cheaper than decoding forward from where we are."""
    if not reader.seekable:
        return False
    fps = p.info.fps
    here = reader.time if reader.index >= 0 else -1.0 / fps
    # OpenCV rounds the time to a frame number, backs off, then seeks back to a keyframe.
    key = _keyframe_before(p, seek_to - (_CV_SEEK_BACKOFF_FRAMES + 1) / fps)
    if key <= here:
        return False  # the frames a seek would decode are the ones ahead of us anyway
    forward = (target - here) * fps
    by_seek = SEEK_OVERHEAD_FRAMES + (target - key) * fps
    return by_seek < forward


def _shrink(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Shrink to width x height by area averaging for the whole-number part of the factor, then
    bilinear for the rest (under 2x, where bilinear already reads every source pixel).

    OpenCV's INTER_AREA is fast only for whole-number factors: 1080p or 720p to 768 px costs 3-13
    ms, this 0.7-1.5 ms. Measured against pure INTER_AREA on the shared clips and generated 1080p:
    47-52 dB PSNR, while JPEG q85 itself is 41-43 dB away from its input, so no one can tell."""
    import cv2

    h, w = img.shape[:2]
    k = min(w // width, h // height)
    if k >= 2:
        # The fast path needs exact multiples: drop the last k-1 rows/columns at most.
        img = img[: h - h % k, : w - w % k]
        img = cv2.resize(img, (w // k, h // k), interpolation=cv2.INTER_AREA)
    if img.shape[1] != width or img.shape[0] != height:
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return img


def _encode(img: np.ndarray, spec: SamplingSpec) -> tuple[bytes, int, int, np.ndarray]:
    import cv2

    h, w = img.shape[:2]
    nw, nh = scaled_size(w, h, spec.resize)
    if (nw, nh) != (w, h):
        img = _shrink(img, nw, nh)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
    if not ok:
        raise InputError("could not encode a frame as JPEG")
    return buf.tobytes(), nw, nh, img


class _Encoder:
    """Resizes and JPEG-encodes chosen frames on one worker thread while the caller decodes on
    (OpenCV releases the GIL), keeping at most two frames in flight so memory stays flat."""

    def __init__(
        self, spec: SamplingSpec, keep: Callable[[int, float, np.ndarray], bool] | None
    ) -> None:
        self.spec = spec
        self.keep = keep
        self.frames: list[Frame] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vnarrate-jpeg")
        self._pending: deque[tuple[int, int, float, Future[tuple[bytes, int, int, np.ndarray]]]]
        self._pending = deque()

    def submit(self, k: int, index: int, t: float, img: np.ndarray) -> None:
        self._drain(1)
        self._pending.append((k, index, t, self._pool.submit(_encode, img, self.spec)))

    def _drain(self, leave: int) -> None:
        while len(self._pending) > leave:
            k, index, t, job = self._pending.popleft()
            jpeg, w, h, small = job.result()
            if self.keep is None or self.keep(k, t, small):
                self.frames.append(
                    Frame(index=index, time_s=round(t, 6), width=w, height=h, jpeg=jpeg)
                )

    def finish(self) -> list[Frame]:
        try:
            self._drain(0)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self.frames

    def abandon(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _extract(
    p: Probe,
    targets: Sequence[float],
    spec: SamplingSpec,
    progress: Progress | None,
    *,
    by_index: Sequence[int] | None = None,
    keep: Callable[[int, float, np.ndarray], bool] | None = None,
) -> tuple[list[Frame], int | None]:
    """Decode the frames nearest to `targets` (s, ascending), seeking or reading on as is cheaper.

    With `by_index`, target k is frame number by_index[k] instead (stride sampling: the notebook's
    every Nth frame, which on variable-frame-rate video is not a time grid); `targets` then only
    guide the choice to seek. Returns the frames and, when reading from the start ran into the
    end, the true number of frames. `keep(target_no, time, image)` may veto a frame.
    """
    reader = _Reader(Path(p.info.path), p.info.fps)
    encoder = _Encoder(spec, keep)
    half = 0.5 / p.info.fps
    true_count: int | None = None
    last_index = -1

    def reached(k: int) -> bool:
        if reader.index < 0:
            return False
        if by_index is not None:
            return reader.index >= by_index[k]
        # The first frame at or after this time is the one nearest to the target.
        return reader.time >= targets[k] - half - 1e-6

    try:
        for k, target in enumerate(targets):
            if not reached(k):
                seek_to = target - half - _OUR_SEEK_BACKOFF_FRAMES / p.info.fps
                if _should_seek(p, reader, seek_to, target):
                    reader.seek(seek_to)
                    if not reader.grab() or reader.time > target + 1.0 + 2 * half:
                        # The container cannot seek there (or lies about times): read instead.
                        reader.restart()
                        reader.seekable = False
                while not reached(k) and reader.grab():
                    pass
                if not reached(k):
                    # The end came first: the video is shorter than its header says.
                    if reader.seeks == 0:
                        true_count = reader.index + 1
                    if reader.index >= 0 and reader.index != last_index:
                        img = _recover_last(reader)
                        if img is not None:
                            encoder.submit(k, reader.index, reader.time, img)
                    break
            if reader.index == last_index:
                continue  # two targets, one frame
            img = reader.retrieve()
            if img is None:
                continue
            encoder.submit(k, reader.index, reader.time, img)
            last_index = reader.index
            if progress is not None:
                progress(k + 1, len(targets))
        frames = encoder.finish()
    except BaseException:
        encoder.abandon()
        raise
    finally:
        reader.release()
    if progress is not None:
        progress(len(targets), len(targets))
    return frames, true_count


def _recover_last(reader: _Reader) -> np.ndarray | None:
    """The last frame, after grab() has run past it (OpenCV cannot retrieve it any more)."""
    if reader.index < 0:
        return None
    index, t = reader.index, reader.time
    reader.restart()
    reader.seek(t - _OUR_SEEK_BACKOFF_FRAMES * reader.dt)
    while reader.grab():
        if reader.time >= t - 1e-6:
            reader.index = index
            return reader.retrieve()
    return None


def sample_frames(
    path: str | Path, spec: SamplingSpec, *, progress: Progress | None = None
) -> FrameSet:
    """The frames `spec` asks for (see select_times), in time order and distinct, each with its
    frame index and timestamp, shrunk to `spec.resize` (max side; aspect kept, never enlarged) and
    JPEG-encoded at `spec.jpeg_quality`. InputError when the file is unusable or yields no frame.

    Only the chosen frames are converted and encoded, and only they are held. Each target is
    reached by reading on (grab without converting) or by seeking to the keyframe before it,
    whichever decodes fewer frames (see SEEK_OVERHEAD_FRAMES): dense targets read straight
    through, sparse ones seek. The index is exact when read on from the start, and time x fps
    after a seek. `progress(done, total)` counts chosen frames; in scene sampling it first counts
    frames scanned for cuts. FrameSet.video.frame_count is corrected when reading hit the end.
    """
    p = probe_file(Path(path))
    if spec.mode == "scenes":
        return _sample_scenes(p, spec, progress)
    by_index = None
    targets = select_times(p.info, spec)
    if spec.mode == "stride":
        by_index = _stride_indices(p.info, spec)
        targets = [i / p.info.fps for i in by_index]
    frames, true_count = _extract(p, targets, spec, progress, by_index=by_index)
    info = p.info
    if true_count is not None and true_count != info.frame_count:
        info = info.model_copy(update={"frame_count": true_count})
    if not frames:
        raise InputError(f"{path}: no decodable video frames")
    return FrameSet(video=info, frames=frames, mode=spec.mode)


def _thumb_bgr(img: np.ndarray) -> np.ndarray:
    import cv2
    import numpy as np

    h, w = img.shape[:2]
    th = max(1, round(32 * h / max(1, w)))
    small: np.ndarray = cv2.resize(img, (32, th), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _sample_scenes(p: Probe, spec: SamplingSpec, progress: Progress | None) -> FrameSet:
    import numpy as np

    shots = strongest(detect(p, spec.scene_threshold, progress), spec.max_frames)
    info = p.info.model_copy(
        update={"frame_count": shots.frame_count, "duration_s": shots.duration_s}
    )
    p = Probe(info=info, keyframes_s=p.keyframes_s, start_pts=p.start_pts, time_base=p.time_base)
    starts = shots.starts_s
    targets = select_times(info, spec, shot_starts=starts)

    def shot_of(t: float) -> int:
        return max(0, bisect.bisect_right(starts, t + 0.5 / info.fps) - 1)

    last_thumb: dict[int, np.ndarray] = {}

    def keep(_k: int, t: float, img: np.ndarray) -> bool:
        shot = shot_of(t)
        thumb = _thumb_bgr(img)
        before = last_thumb.get(shot)
        if (
            before is not None
            and before.shape == thumb.shape
            and float(np.abs(before - thumb).max()) <= _NEAR_DUPLICATE
        ):
            return False
        last_thumb[shot] = thumb
        return True

    frames, _ = _extract(p, targets, spec, progress, keep=keep)
    if not frames:
        raise InputError(f"{info.path}: no decodable video frames")
    frames = [f.model_copy(update={"shot": shot_of(f.time_s)}) for f in frames]
    return FrameSet(video=info, frames=frames, mode="scenes", shot_starts_s=starts)
