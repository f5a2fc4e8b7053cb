"""Frames stage: takes a video path and a SamplingSpec, gives a FrameSet (the chosen frames in time
order, resized and JPEG-encoded, each with its frame number, its own time, the time it stands
for and whether a keyframe stood in; warnings when the file is damaged or its header lies).

One PyAV container per video: probe.py reads the header, keyframes.py the index, targets.py
chooses the times (and the keyframes that may stand in), decode.py decodes only what they need,
encoder.py makes the JPEGs; scene sampling (scenes.py) detects the cuts and takes its frames in one pass.
Times are seconds from the first frame of the video stream. `predict_frames` says which frames
(times, sizes) sampling will give before any is decoded, so that a plan can be made first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..models import Frame, FrameSet, SamplingSpec, VideoInfo
from .decode import Decoder, Picture
from .encoder import FrameEncoder, scaled_size
from .keyframes import Keyframe
from .probe import (
    Probe,
    damage_warnings,
    open_container,
    read_probe,
    set_threads,
    upright,
    with_rotation,
)
from .scenes import sample_scenes
from .targets import Target, make_targets, select_times
from .timecode import format_ts

__all__ = ["predict_frames", "sample_frames", "scaled_size", "select_times"]

Progress = Callable[[int, int], None]
Keep = Callable[[Frame], Frame]  # what to hold of a frame once encoded (e.g. written, bytes let go)

# A video that ends this much (and this share) before its header says is worth a warning.
_SHORT_S = 1.0
_SHORT_SHARE = 0.05


def sample_frames(
    path: str | Path,
    spec: SamplingSpec,
    *,
    progress: Progress | None = None,
    keep: Keep | None = None,
) -> FrameSet:
    """The frames `spec` asks for (see targets.select_times), in time order and distinct, each
    shrunk to `spec.resize` (max side; aspect kept, never enlarged), upright, and JPEG-encoded at
    `spec.jpeg_quality`. InputError when the file is unusable or yields no frame.

    Unless `spec.exact_times`, a target takes the nearest keyframe when one lies within a quarter
    of the spacing around it and the exact frame would cost a seek of its own (targets.py): on
    long videos most frames then cost one decode after a seek. Every frame's `time_s` is the time of the picture in it; `target_s` the time asked
    for and `snapped` whether a keyframe stood in. Only the chosen frames are converted and
    encoded, and only their JPEGs are held. `progress(done, total)` counts chosen frames (in
    scene sampling, frames scanned). Damaged stretches are skipped, and said in `warnings`, as
    is a header whose duration does not match the frames.

    `keep`, given, sees each frame as soon as it is encoded, in time order, and returns what the
    FrameSet holds of it: `vnarrate frames` writes the JPEG and keeps none of its bytes, so its
    memory does not grow with the number of frames. (Scene sampling chooses its frames at the end
    of its pass: there `keep` sees them then.)
    """
    path = Path(path)
    with open_container(path) as container:
        p = read_probe(container, path)
        set_threads(container, p)
        if spec.mode == "scenes":
            scenes = sample_scenes(container, p, spec, progress)
            kept = [keep(f) for f in scenes.frames] if keep else scenes.frames
            return scenes.model_copy(update={"frames": kept})
        keys, targets = _targets(p, spec)
        decoder = Decoder(container, p, keys)
        frames, p = _take(decoder, p, targets, spec, progress, keep)
    info = _measured(p.info, decoder)
    if not frames:
        raise InputError(f"{path}: no decodable video frames")
    warnings = [*p.warnings, *damage_warnings(path, decoder.errors, decoder.read_error)]
    if info.duration_s < p.info.duration_s:
        warnings.append(
            f"{path}: the video ends at {format_ts(info.duration_s)}, not at "
            f"{format_ts(p.info.duration_s)} as its header says"
        )
    return FrameSet(video=info, frames=frames, mode=spec.mode, warnings=warnings)


def predict_frames(path: str | Path, spec: SamplingSpec) -> FrameSet:
    """The frames `sample_frames` will give, known before any is decoded: one per target, at
    the time of the picture it will hold (the keyframe's when one stands in, else the time
    asked for), at the size it will be sent at (the first frame is decoded for its rotation),
    without JPEG. Only decoding knows which frames fail, or which targets share a frame. Not for
    scene sampling, whose frames follow the cuts its pass finds."""
    if spec.mode == "scenes":
        raise ValueError("scene sampling knows its frames only at the end of its pass")
    path = Path(path)
    with open_container(path) as container:
        p = read_probe(container, path)
        set_threads(container, p)
        _, targets = _targets(p, spec)
        p = upright(container, p, path)
    w, h = scaled_size(p.info.width, p.info.height, spec.resize)
    fps = p.info.fps or 25.0
    frames = [
        Frame(
            index=t.index if t.index is not None else round(t.time_s * fps),
            time_s=t.key_s if t.key_s is not None else t.time_s,
            width=w,
            height=h,
            jpeg=b"",
            target_s=round(t.time_s, 6),
            snapped=t.key_s is not None,
        )
        for t in targets
    ]
    return FrameSet(video=p.info, frames=frames, mode=spec.mode, warnings=list(p.warnings))


def _targets(p: Probe, spec: SamplingSpec) -> tuple[list[Keyframe] | None, list[Target]]:
    """The keyframes around the times `spec` asks for, and the targets (snapped to them)."""
    keys = p.index.near(select_times(p.info, spec)) if p.index else None
    return keys, make_targets(p.info, spec, [k.time_s for k in keys] if keys else None)


def _take(
    decoder: Decoder,
    p: Probe,
    targets: list[Target],
    spec: SamplingSpec,
    progress: Progress | None,
    keep: Keep | None,
) -> tuple[list[Frame], Probe]:
    """Decode and encode the targets' frames; the probe, now knowing the rotation."""
    import av

    frames: list[Frame] = []
    encoder: FrameEncoder | None = None
    try:
        for picture in decoder.pictures(targets):
            p, encoder = _keep(frames, picture, targets, p, encoder, spec, keep)
            if progress is not None:
                progress(picture.target + 1, len(targets))
    except av.FFmpegError as e:
        # Reading or seeking failed for good: what was decoded so far still counts.
        decoder.read_error = str(e)
    if progress is not None:
        progress(len(targets), len(targets))
    return frames, p


def _keep(
    frames: list[Frame],
    picture: Picture,
    targets: list[Target],
    p: Probe,
    encoder: FrameEncoder | None,
    spec: SamplingSpec,
    keep: Keep | None,
) -> tuple[Probe, FrameEncoder]:
    """Encode a picture into `frames`; the first one tells the rotation."""
    if encoder is None:
        p = with_rotation(p, picture.frame.rotation)
        encoder = FrameEncoder(p.info, spec)
    target = targets[picture.target]
    w, h = encoder.size
    frame = Frame(
        index=picture.index,
        time_s=picture.time_s,
        width=w,
        height=h,
        jpeg=encoder.jpeg(picture.frame),
        target_s=round(target.time_s, 6),
        snapped=target.key_s is not None,
    )
    frames.append(keep(frame) if keep is not None else frame)
    return p, encoder


def _measured(info: VideoInfo, decoder: Decoder) -> VideoInfo:
    """The video as decoding found it: the true frame count when it read from the start to the
    end, the true length when it ran into the end early."""
    update: dict[str, object] = {}
    if decoder.frame_count is not None:
        update["frame_count"] = decoder.frame_count
    end = decoder.end_s
    if end is not None and info.duration_s - end > max(_SHORT_S, _SHORT_SHARE * info.duration_s):
        update["duration_s"] = round(end, 6)
        update.setdefault("frame_count", max(1, round(end * info.fps)))
    return info.model_copy(update=update) if update else info
