"""Frames stage: takes a video path and a SamplingSpec, gives a FrameSet (the chosen frames in time
order, resized and JPEG-encoded, with index and timestamp); also probing, shot detection and the
contact sheet that shows a person what the model sees.

Decoding uses OpenCV (it applies rotation metadata), probing and the shot-detection pass use PyAV
(keyframe index, display matrix, audio streams; cheap access to the decoded YUV planes).
Times are seconds from the first frame of the video stream, as OpenCV reports them.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

# FFmpeg inside OpenCV logs decoder complaints ("moov atom not found", "no frame!") straight to
# stderr, and a core module never prints. Set before cv2 is imported; a user can still override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import av
import cv2
import numpy as np

from ..errors import InputError
from ..models import Frame, FrameSet, SamplingSpec, VideoInfo

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
# Two frames of a shot are near-duplicates when no 1/32 of the picture differs by more than this.
_NEAR_DUPLICATE = 6.0 / 255.0


# --- probing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Probe:
    info: VideoInfo
    keyframes_s: list[float] | None  # sorted; None = the container has no index
    start_pts: int  # of the video stream, in its time base
    time_base: float


def probe(path: str | Path) -> VideoInfo:
    """What the video is, with the container's usual lies corrected; InputError if it is unusable.

    Reads the headers and the container's index and decodes the first frame (to be sure there is
    one, and to read its rotation): fast even for hour-long files.
    """
    return _probe(Path(path)).info


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")


def _probe(path: Path) -> _Probe:
    _check_file(path)
    try:
        container = av.open(str(path))
    except OSError as e:  # first: av.PermissionError & co. are FFmpegErrors too
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    except av.FFmpegError as e:
        raise InputError(
            f"{path}: not a readable video (unknown format, truncated or corrupt)"
        ) from e
    with container:
        videos = [
            s
            for s in container.streams.video
            if not (s.disposition & av.stream.Disposition.attached_pic)
        ]
        has_audio = bool(container.streams.audio)
        if not videos:
            what = "an audio-only file" if has_audio else "no video stream"
            raise InputError(f"{path}: no video stream ({what})")
        # OpenCV decodes the first video stream; describe that one.
        stream = videos[0]
        tb = float(stream.time_base) if stream.time_base else 1e-6
        start_pts = stream.start_time if stream.start_time is not None else 0
        keyframes, present = _index(container, stream, start_pts, tb, path.stat().st_size)
        first = _first_frame(container, stream)
        if first is None:
            raise InputError(f"{path}: no decodable video frames")
        rotation = round(first.rotation) % 360 if first.rotation else 0

        fps = _fps(stream)
        duration = 0.0
        if stream.duration:
            duration = stream.duration * tb
        elif container.duration:
            end = container.duration / 1e6
            # Matroska reports the segment's end time; other formats report end - start.
            if "matroska" not in container.format.name and container.start_time:
                end += container.start_time / 1e6
            duration = end - start_pts * tb
        count = stream.frames if stream.frames and stream.frames > 0 else 0
        if count <= 0:
            count = max(1, round(duration * fps)) if duration > 0 else 1
        if duration <= 0:
            duration = count / fps
        if present is not None and 0 < present < count:
            # A cut-off download whose index (written first) promises frames the file lacks.
            count = present
            duration = min(duration, count / fps)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        info = VideoInfo(
            path=str(path),
            width=width,
            height=height,
            fps=fps,
            frame_count=count,
            duration_s=round(duration, 6),
            rotation=rotation,
            has_audio=has_audio,
            codec=stream.codec_context.name,
        )
    return _Probe(info=info, keyframes_s=keyframes, start_pts=start_pts, time_base=tb)


def _fps(stream: av.video.stream.VideoStream) -> float:
    # average_rate is frames/duration (right for VFR); base_rate can be the time base (90000 on
    # fire2.mp4). Anything outside a sane range is a broken header, not a frame rate.
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if 0.1 <= value <= 1000:
                return value
    return 25.0


def _index(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    start_pts: int,
    tb: float,
    file_size: int,
) -> tuple[list[float] | None, int | None]:
    """Keyframe times from the container's index (None: no index), and how many of the indexed
    frames lie inside the file (None: the index does not list every frame)."""
    entries = stream.index_entries
    if len(entries) < 2:
        # Matroska loads its cues on the first seek.
        try:
            container.seek(0, stream=stream)
        except av.FFmpegError:
            return None, None
        entries = stream.index_entries
    if len(entries) < 2:
        return None, None
    keys = []
    present = 0
    for e in entries:
        if e.is_keyframe:
            keys.append((e.timestamp - start_pts) * tb)
        if e.pos + e.size <= file_size:
            present += 1
    complete = bool(stream.frames) and len(entries) == stream.frames
    return (sorted(keys) or None), (present if complete else None)


def _first_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> av.VideoFrame | None:
    with contextlib.suppress(av.FFmpegError):
        container.seek(0, stream=stream)
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue  # a damaged packet: try the next one
        if frames:
            frame: av.VideoFrame = frames[0]
            return frame
    return None


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


def _keyframe_before(p: _Probe, t: float) -> float:
    keys = p.keyframes_s
    if keys:
        i = bisect.bisect_right(keys, t + 1e-6) - 1
        return keys[i] if i >= 0 else 0.0
    gop = _DEFAULT_GOP_FRAMES / p.info.fps
    return math.floor(max(t, 0.0) / gop) * gop


def _should_seek(p: _Probe, reader: _Reader, seek_to: float, target: float) -> bool:
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
    p: _Probe,
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
    p = _probe(Path(path))
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


# --- scenes ---------------------------------------------------------------------------------------


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
    return _detect(_probe(Path(path)), threshold, progress)


def _thumbs(p: _Probe, progress: Progress | None) -> Iterator[tuple[float, list[np.ndarray]]]:
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
    diffs = [float(np.abs(x - y).mean()) / 255.0 for x, y in zip(a, b, strict=True)]
    # Luma counts double: chroma is noisy and half the resolution.
    return _SCORE_GAIN * (2 * diffs[0] + diffs[1] + diffs[2]) / 4


def _detect(p: _Probe, threshold: float, progress: Progress | None) -> Shots:
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


def _strongest(shots: Shots, keep: int) -> Shots:
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


def _thumb_bgr(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    th = max(1, round(32 * h / max(1, w)))
    small: np.ndarray = cv2.resize(img, (32, th), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _sample_scenes(p: _Probe, spec: SamplingSpec, progress: Progress | None) -> FrameSet:
    shots = _strongest(_detect(p, spec.scene_threshold, progress), spec.max_frames)
    info = p.info.model_copy(
        update={"frame_count": shots.frame_count, "duration_s": shots.duration_s}
    )
    p = _Probe(info=info, keyframes_s=p.keyframes_s, start_pts=p.start_pts, time_base=p.time_base)
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
