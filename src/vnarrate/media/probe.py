"""Probing: a video path -> what the video is (VideoInfo), with the container's usual lies corrected.

Takes a path; gives the video's displayed size, frame rate, frame count, duration, rotation and
whether it has audio, plus the keyframe index that decoding uses to decide when to seek. PyAV
reads the headers and the index and decodes the first frame; fast even for hour-long files.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..models import VideoInfo

if TYPE_CHECKING:
    import av
    import av.container
    import av.video.stream


@dataclass(frozen=True)
class Probe:
    info: VideoInfo
    keyframes_s: list[float] | None  # sorted; None = the container has no index
    start_pts: int  # of the video stream, in its time base
    time_base: float


def probe(path: str | Path) -> VideoInfo:
    """What the video is, with the container's usual lies corrected; InputError if it is unusable.

    Reads the headers and the container's index and decodes the first frame (to be sure there is
    one, and to read its rotation): fast even for hour-long files.
    """
    return probe_file(Path(path)).info


def check_file(path: Path) -> None:
    """Refuse, without opening it, what is not a regular file with something in it: a FIFO
    would block the reader forever, a device such as /dev/zero never ends."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{path}: not a regular file (a pipe, a device or a socket)",
            hint="save it to a file first",
        )
    if st.st_size == 0:
        raise InputError(f"{path}: empty file")


def probe_file(path: Path) -> Probe:
    import av

    check_file(path)
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
    return Probe(info=info, keyframes_s=keyframes, start_pts=start_pts, time_base=tb)


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
    import av

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
    import av

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


def main_stream(streams: Sequence[Any]) -> Any:
    """The stream flagged default, else the first one, else None. Cover art (a "video" stream
    holding one picture) is never the video."""
    from av.stream import Disposition

    usable = [s for s in streams if not s.disposition & Disposition.attached_pic]
    for stream in usable:
        if stream.disposition & Disposition.default:
            return stream
    return usable[0] if usable else None
