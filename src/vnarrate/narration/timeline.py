"""Timeline: speech clips -> one track on the video's timeline, and where each clip landed.

Takes the script's Segments and their Clips (mono s16 PCM); gives an int16 track at 24 kHz as long
as the video, with the Placements where each clip ended up (the subtitles' timings). A clip longer
than its slot is re-spoken faster, then time-stretched, then allowed to push the next ones later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..media.audio import TRACK_RATE, clip_samples, seconds, time_stretch, trim_silence
from ..models import Clip, Placement, Segment

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.int16]

Resynthesize = Callable[[int, float], Clip]


@dataclass(frozen=True)
class FitOptions:
    """How far an overlong clip may be made to fit its slot (session.py builds it)."""

    max_speed: float  # re-speak up to this TTS speed
    max_stretch: float  # then time-stretch up to this factor


UNTIMED_GAP_S = 0.5  # pause between clips in the untimed (notebook-style) narration


def fit_timeline(
    segments: Sequence[Segment],
    clips: Sequence[Clip],
    duration_s: float,
    *,
    resynthesize: Resynthesize | None,
    max_speed: float = 1.25,
    max_stretch: float = 1.25,
    min_gap_s: float = 0.15,
) -> tuple[Samples, list[Placement]]:
    """Place each clip's speech at its segment's start on a silent 24 kHz track as long as the
    video (the TTS's leading and trailing silence trimmed first, see `trim_silence`).

    A clip's slot runs from its segment's start to the next segment's start (less `min_gap_s`)
    or to the end of the video. A clip longer than its slot is fitted, in this order:
    1. spoken again faster by `resynthesize(segment, speed)`, up to `max_speed`;
    2. time-stretched without changing pitch (atempo), up to `max_stretch`;
    3. left as it is, pushing the following clips later (their `pushed_s`).
    Speech is never cut: a last clip that runs past the video's end makes the track longer.
    `clips` are matched to `segments` by `Clip.segment`; placements come in timeline order.
    """
    import numpy as np

    sr = TRACK_RATE
    by_segment = {clip.segment: clip for clip in clips}
    order = sorted(range(len(segments)), key=lambda i: segments[i].start_s)
    gap = round(max(0.0, min_gap_s) * sr)
    video_end = round(max(0.0, duration_s) * sr)

    placed: list[tuple[int, Samples]] = []
    placements: list[Placement] = []
    cursor = 0  # first sample the next clip may start at (previous clip's end + gap)
    for k, i in enumerate(order):
        clip = by_segment.get(i)
        if clip is None:
            continue
        slot_start = round(segments[i].start_s * sr)
        last = k + 1 == len(order)
        slot_end = (
            max(slot_start, video_end) if last else round(segments[order[k + 1]].start_s * sr)
        )
        limit = slot_end if last else slot_end - gap  # no pause needed after the last line
        start = max(slot_start, cursor)
        samples, speed, stretch = _fit_clip(
            i,
            clip,
            room=(limit - start) / sr,
            resynthesize=resynthesize,
            max_speed=max_speed,
            max_stretch=max_stretch,
        )
        placed.append((start, samples))
        placements.append(
            Placement(
                segment=i,
                text=clip.text,
                start_s=start / sr,
                end_s=(start + len(samples)) / sr,
                slot_start_s=slot_start / sr,
                slot_end_s=slot_end / sr,
                speed=speed,
                stretch=stretch,
                pushed_s=(start - slot_start) / sr,
            )
        )
        cursor = start + len(samples) + gap

    length = max([video_end] + [start + len(s) for start, s in placed])
    track = np.zeros(length, dtype=np.int16)
    for start, samples in placed:  # clips never overlap: each starts after the previous + gap
        track[start : start + len(samples)] = samples
    return track, placements


def _fit_clip(
    index: int,
    clip: Clip,
    *,
    room: float,
    resynthesize: Resynthesize | None,
    max_speed: float,
    max_stretch: float,
) -> tuple[Samples, float, float]:
    """The clip's samples made to fit `room` seconds as far as the bounds allow; with the TTS
    speed and the stretch factor that were used."""
    samples = trim_silence(clip_samples(clip))
    speed = clip.speed
    if seconds(samples) <= room:
        return samples, speed, 1.0

    if resynthesize is not None and speed < max_speed - 1e-6:
        # Speech duration scales about inversely with TTS speed; the 2 % margin covers what does
        # not (pauses, the model's own variation between takes).
        need = speed * seconds(samples) / room if room > 0 else math.inf
        target = min(max_speed, math.ceil(need * 1.02 * 100) / 100)
        again = resynthesize(index, target)
        faster = trim_silence(clip_samples(again))
        if len(faster) < len(samples):  # a new take can come out longer: keep the shorter one
            samples, speed = faster, again.speed
        if seconds(samples) <= room:
            return samples, speed, 1.0

    stretch = 1.0
    if max_stretch > 1.0:
        need = seconds(samples) / room if room > 0 else math.inf
        factor = min(max_stretch, need * 1.002)  # atempo's output can run a few ms long
        if factor > 1.001:
            samples = time_stretch(samples, TRACK_RATE, factor)
            stretch = factor
    return samples, speed, stretch


def untimed_track(clips: Sequence[Clip]) -> Samples:
    """The notebook's narration: clips one after another with a short pause, as long as the
    speech (no relation to the video's timeline)."""
    import numpy as np

    gap = np.zeros(round(UNTIMED_GAP_S * TRACK_RATE), dtype=np.int16)
    parts: list[Samples] = []
    for n, clip in enumerate(clips):
        if n:
            parts.append(gap)
        parts.append(clip_samples(clip))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def timing_notes(placements: Sequence[Placement], duration: float) -> list[str]:
    """What a listener should know about where the speech landed."""
    notes = [
        f"segment {p.segment + 1} starts {p.pushed_s:.2f} s late "
        "(its speech is longer than its slot)"
        for p in placements
        if p.pushed_s > 0.05
    ]
    if placements and placements[-1].end_s > duration + 0.05:
        notes.append(
            f"the narration runs {placements[-1].end_s - duration:.2f} s past the end of the video"
        )
    return notes


def untimed_placements(clips: Sequence[Clip]) -> list[Placement]:
    """Where the untimed track puts each clip (back to back, with the same short pause)."""
    t = 0.0
    out: list[Placement] = []
    for clip in clips:
        end = t + clip.duration_s
        out.append(
            Placement(
                segment=clip.segment,
                text=clip.text,
                start_s=t,
                end_s=end,
                slot_start_s=t,
                slot_end_s=end,
                speed=clip.speed,
            )
        )
        t = end + UNTIMED_GAP_S
    return out
