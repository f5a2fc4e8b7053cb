"""Probing: a video path -> what the video is (VideoInfo), with the container's usual lies corrected.

Takes a path (or an open PyAV container); gives the video's displayed size, frame rate, frame
count, duration, rotation and whether it has audio, plus the keyframe index that decoding uses
to seek and to snap targets, and warnings when the header lies or the file is cut off. PyAV
reads the headers and the index, then the packets of the last keyframe's group to find where
the frames really end (no decoding): fast even for hour-long files.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..models import VideoInfo
from .keyframes import KeyIndex
from .timecode import format_ts

if TYPE_CHECKING:
    import av
    import av.container
    import av.video.stream

# A header's duration that differs from where the frames end by more than this share (and more
# than a second) is a lie worth a warning; smaller gaps are rounding and last-frame durations.
_LIE_SHARE = 0.05


@dataclass(frozen=True)
class Probe:
    info: VideoInfo
    index: KeyIndex | None  # None: no index (or the container was closed)
    start_pts: int  # of the video stream, in its time base
    time_base: float
    stream_index: int = 0  # among the container's video streams
    warnings: list[str] = field(default_factory=list)


def probe(path: str | Path) -> VideoInfo:
    """What the video is, with the container's usual lies corrected; InputError if it is unusable.

    Reads the headers, the container's index and the packets at the end, and decodes the first
    frame (to be sure there is one, and to read its rotation): fast even for hour-long files.
    """
    return probe_file(Path(path)).info


def probe_file(path: Path) -> Probe:
    """probe() with the keyframe index and the warnings."""
    with open_container(path) as container:
        p = upright(container, read_probe(container, path), path)
    return replace(p, index=None)  # the index lives with the container


def upright(container: av.container.InputContainer, p: Probe, path: Path) -> Probe:
    """The probe with the rotation the first frame carries (decoded from the start; the
    container is left after it). InputError when no frame decodes."""
    import av

    stream = container.streams.video[p.stream_index]
    with contextlib.suppress(av.FFmpegError):
        container.seek(p.start_pts, stream=stream, backward=True)
    first = _first_frame(container, stream)
    if first is None:
        raise InputError(f"{path}: no decodable video frames")
    return with_rotation(p, first.rotation)


def set_threads(container: av.container.InputContainer, p: Probe) -> None:
    """Decoder threads for the video stream, before its first packet. Measured on two cores
    (BENCHMARKS.md): H.264 decodes fastest with slice threads, even though x264 makes one slice
    a frame (3 minutes of 720p: 3.9 s, against 5.7 s with frame threads and 4.4 s for OpenCV);
    other codecs get FFmpeg's choice (frame threads where the decoder has them)."""
    stream = container.streams.video[p.stream_index]
    stream.thread_type = "SLICE" if p.info.codec == "h264" else "AUTO"


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


def open_container(path: Path) -> av.container.InputContainer:
    """The file opened by PyAV; InputError (one line) when it cannot be."""
    import av

    check_file(path)
    try:
        return av.open(str(path))
    except OSError as e:  # first: av.PermissionError & co. are FFmpegErrors too
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    except av.FFmpegError as e:
        raise InputError(
            f"{path}: not a readable video (unknown format, truncated or corrupt)"
        ) from e


def with_rotation(p: Probe, rotation: float) -> Probe:
    """The probe of a video whose frames carry this display-matrix rotation (degrees)."""
    r = round(rotation) % 360 if rotation else 0
    info = p.info
    if r in (90, 270) and info.rotation not in (90, 270):
        info = info.model_copy(update={"width": info.height, "height": info.width})
    return replace(p, info=info.model_copy(update={"rotation": r}))


def read_probe(container: av.container.InputContainer, path: Path) -> Probe:
    """What the headers, the index and the last packets say (no frame decoded: rotation 0 until
    with_rotation). Leaves the container anywhere: seek before reading."""
    import av

    videos = [
        (i, s)
        for i, s in enumerate(container.streams.video)
        if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    has_audio = bool(container.streams.audio)
    if not videos:
        what = "an audio-only file" if has_audio else "no video stream"
        raise InputError(f"{path}: no video stream ({what})")
    # The stream flagged default (as --mux copies it), else the first, is the film; others are
    # previews or alternative angles.
    chosen = main_stream([s for _, s in videos])
    stream_index, stream = next((i, s) for i, s in videos if s is chosen)
    tb = float(stream.time_base) if stream.time_base else 1e-6
    start_pts = stream.start_time if stream.start_time is not None else 0
    index = KeyIndex.read(container, stream, start_pts, path.stat().st_size)
    warnings: list[str] = []
    fps = _fps(stream)
    header_s = _header_duration(container, stream, start_pts, tb)
    frame_pts = max(1, round(1 / (fps * tb)))
    end_s = index.end_s(container, stream, frame_pts) if index else None
    count = (index.count if index else 0) or (stream.frames if stream.frames > 0 else 0)
    cut_off = index is not None and 0 < index.present < count
    if index is not None and cut_off:
        # A cut-off download whose index (written first) promises frames the file lacks.
        warnings.append(
            f"{path}: the file is cut off: {index.present} of the {count} frames its index "
            "lists are in it"
        )
        count = index.present
    duration = header_s
    if end_s is not None and end_s > 0:
        gap = abs(end_s - header_s) if header_s > 0 else end_s
        if gap > max(1.0, _LIE_SHARE * end_s) and not cut_off:
            warnings.append(
                f"{path}: the header says the video lasts {format_ts(header_s)}, its frames run "
                f"to {format_ts(end_s)}: using {format_ts(end_s)}"
            )
            if count and abs(count / end_s - fps) > _LIE_SHARE * fps:
                fps = count / end_s  # the header's rate came from its false duration
        duration = end_s
    if count <= 0:
        count = max(1, round(duration * fps)) if duration > 0 else 1
    if duration <= 0:
        duration = count / fps
    if cut_off:
        duration = min(duration, count / fps)
    cc = stream.codec_context
    info = VideoInfo(
        path=str(path),
        width=cc.width,
        height=cc.height,
        fps=fps,
        frame_count=count,
        duration_s=round(duration, 6),
        rotation=0,
        has_audio=has_audio,
        codec=cc.name,
    )
    return Probe(info, index, start_pts, tb, stream_index, warnings)


def damage_warnings(path: str | Path, errors: list[float], read_error: str | None) -> list[str]:
    """What a person should know about the parts of a file that could not be read."""
    out = []
    if errors:
        a, b = format_ts(min(errors)), format_ts(max(errors))
        where = f"at {a}" if a == b else f"between {a} and {b}"
        out.append(
            f"{path}: damaged data: {len(errors)} frame(s) {where} could not be decoded; the "
            "frames there come from the nearest pictures that could"
        )
    if read_error:
        out.append(f"{path}: reading stopped before the end ({read_error})")
    return out


def _header_duration(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    start_pts: int,
    tb: float,
) -> float:
    if stream.duration:
        return float(stream.duration * tb)
    if container.duration:
        end = container.duration / 1e6
        # Matroska reports the segment's end time; other formats report end - start.
        if "matroska" not in container.format.name and container.start_time:
            end += container.start_time / 1e6
        return float(end - start_pts * tb)
    return 0.0


def _fps(stream: av.video.stream.VideoStream) -> float:
    # average_rate is frames/duration (right for VFR); base_rate can be the time base (90000 on
    # fire2.mp4). Anything outside a sane range is a broken header, not a frame rate.
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if 0.1 <= value <= 1000:
                return value
    return 25.0


def _first_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> av.VideoFrame | None:
    import av

    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue  # a damaged packet: try the next one
        if frames:
            frame: av.VideoFrame = frames[0]
            return frame
    try:
        rest = stream.codec_context.decode(None)
    except av.FFmpegError:
        return None
    return rest[0] if rest else None


def main_stream(streams: Sequence[Any]) -> Any:
    """The stream flagged default, else the first one, else None. Cover art (a "video" stream
    holding one picture) is never the video."""
    from av.stream import Disposition

    usable = [s for s in streams if not s.disposition & Disposition.attached_pic]
    for stream in usable:
        if stream.disposition & Disposition.default:
            return stream
    return usable[0] if usable else None
