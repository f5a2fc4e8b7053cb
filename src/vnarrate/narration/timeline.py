"""Timeline: speech clips -> one track on the video's timeline, and where each clip landed.

Takes the script's Segments, their Clips (mono s16 PCM at any rate) and, where people speak in
the video, each line's Room (narration/gaps.py); gives an int16 track at 24 kHz as long as the
video, with the Placements where each clip ended up (the subtitles' timings) and the lines that
found no room. A clip longer than its room is pulled earlier in its gap, re-spoken faster,
time-stretched, then allowed to push the next lines later (within its gap, or anywhere when the
video has no speech or --over-speech duck lets it run over speech); in a gap it cannot leave, it
is cut at a sentence end, and dropped (reported) when even one sentence does not fit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ..media.audio import TRACK_RATE, clip_samples, seconds, time_stretch, trim_silence
from ..models import Clip, Placement, Segment
from .gaps import Room
from .script import sentences

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.int16]


class Resynthesize(Protocol):
    """Speak segment `segment` again at `speed` (its text, or `text`: a cut of it)."""

    def __call__(self, segment: int, speed: float, text: str | None = None, /) -> Clip: ...


@dataclass(frozen=True)
class FitOptions:
    """How far an overlong clip may be made to fit its slot (session/options.py builds it)."""

    max_speed: float  # re-speak up to this TTS speed
    max_stretch: float  # then time-stretch up to this factor


UNTIMED_GAP_S = 0.5  # pause between clips in the untimed (notebook-style) narration
# A faster take counts only if it saved at least this share of what its speed promised: a server
# that ignores `speed` returns takes 1-3 % apart in length, which is not speaking faster.
HONEST_SHARE = 0.5
SPEED_STEP = 0.1  # the smallest speed-up worth asking for
# What a stretched take may run over a hard room's end and be trimmed by: atempo's output runs a
# few ms long, and the last 60 ms of a trimmed clip are its decay (see trim_silence).
OVERSHOOT = round(0.03 * TRACK_RATE)


@dataclass
class Fitted:
    """The track, where each line landed, the lines left out, and what a listener should know."""

    track: Samples
    placements: list[Placement]
    dropped: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Bounds(NamedTuple):
    """Sample positions one line is fitted between."""

    lo: int  # earliest start (its room's start, after the previous line)
    want: int  # where it would start: the script's time, or after the previous line
    slot_start: int  # the script's time
    soft: int  # where it should end (the next line, less the pause; its room's end)
    wall: int | None  # where it must end (its gap's end), None: it may run on
    slot_end: int


class _Take(NamedTuple):
    samples: Samples
    speed: float
    stretch: float
    text: str
    cut: bool


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
    """`fit_lines` for a video without speech (each line from its own start, no end but the
    next line's): the track and the placements."""
    fitted = fit_lines(
        segments,
        clips,
        duration_s,
        resynthesize=resynthesize,
        options=FitOptions(max_speed=max_speed, max_stretch=max_stretch),
        min_gap_s=min_gap_s,
    )
    return fitted.track, fitted.placements


def fit_lines(
    segments: Sequence[Segment],
    clips: Sequence[Clip],
    duration_s: float,
    *,
    resynthesize: Resynthesize | None,
    options: FitOptions,
    rooms: Sequence[Room] | None = None,
    min_gap_s: float = 0.15,
) -> Fitted:
    """Place each clip's speech (its TTS silence trimmed, see `trim_silence`) on a silent 24 kHz
    track as long as the video, lines in time order, `min_gap_s` apart.

    A line should end by the next line's start (less `min_gap_s`) or by its room's end; one
    longer is fitted, in this order: pulled earlier within its room; (in a hard room) allowed to
    push the next lines later up to the room's end; spoken again faster by `resynthesize`, up to
    `max_speed` (kept only when the take really is shorter); time-stretched (atempo, pitch kept)
    up to `max_stretch`; then, in a hard room, cut at a sentence end (the kept sentences spoken
    again), else dropped; in any other room it runs on, pushing the following lines later (and
    the track past the video's end when it is the last). `rooms` default: no speech in the video
    (each line from its own start, no end). `clips` are matched to `segments` by `Clip.segment`.
    """
    import numpy as np

    sr = TRACK_RATE
    rooms = rooms or [Room(seg.start_s, math.inf, hard=False) for seg in segments]
    by_segment = {clip.segment: clip for clip in clips}
    order = sorted((i for i in range(len(segments)) if i in by_segment), key=_by(segments))
    gap = round(max(0.0, min_gap_s) * sr)
    video_end = round(max(0.0, duration_s) * sr)
    fitter = _Fitter(resynthesize, options)
    placed: list[tuple[int, Samples]] = []
    fitted = Fitted(track=np.zeros(0, dtype=np.int16), placements=[])
    cursor = 0  # first sample the next clip may start at (previous clip's end + gap)
    for k, i in enumerate(order):
        nxt = segments[order[k + 1]].start_s if k + 1 < len(order) else None
        bounds = _bounds(segments[i], rooms[i], nxt, cursor=cursor, gap=gap, video_end=video_end)
        got = fitter.fit(i, by_segment[i], bounds)
        if got is None:
            fitted.dropped.append(i)
            continue
        start, take = got
        placed.append((start, take.samples))
        fitted.placements.append(_placement(i, start, take, bounds))
        cursor = start + len(take.samples) + gap
    length = max([video_end] + [start + len(s) for start, s in placed])
    fitted.track = np.zeros(length, dtype=np.int16)
    for start, samples in placed:  # clips never overlap: each starts after the previous + gap
        fitted.track[start : start + len(samples)] = samples
    fitted.notes = fitter.notes
    return fitted


def _by(segments: Sequence[Segment]) -> Callable[[int], float]:
    return lambda i: segments[i].start_s


def _bounds(
    seg: Segment, room: Room, nxt: float | None, *, cursor: int, gap: int, video_end: int
) -> _Bounds:
    sr = TRACK_RATE
    want = round(seg.start_s * sr)
    end = None if math.isinf(room.end_s) else round(room.end_s * sr)
    slot_end = round(nxt * sr) if nxt is not None else max(want, video_end)
    soft = slot_end - gap if nxt is not None else slot_end  # no pause needed after the last line
    if end is not None:
        soft, slot_end = min(soft, end), min(slot_end, end)
    lo = max(cursor, round(room.start_s * sr))
    return _Bounds(
        lo=lo,
        want=max(want, lo),
        slot_start=want,
        soft=soft,
        wall=end if room.hard else None,
        slot_end=slot_end,
    )


def _placement(i: int, start: int, take: _Take, b: _Bounds) -> Placement:
    sr = TRACK_RATE
    return Placement(
        segment=i,
        text=take.text,
        start_s=start / sr,
        end_s=(start + len(take.samples)) / sr,
        slot_start_s=b.slot_start / sr,
        slot_end_s=(b.wall if b.wall is not None else b.slot_end) / sr,
        speed=take.speed,
        stretch=take.stretch,
        pushed_s=max(0, start - b.slot_start) / sr,
        cut=take.cut,
    )


class _Fitter:
    """The ladder for one line at a time; remembers across lines whether `speed` works."""

    def __init__(self, resynthesize: Resynthesize | None, options: FitOptions) -> None:
        self.resynthesize = resynthesize
        self.options = options
        self.speed_works = True
        self.notes: list[str] = []

    def fit(self, i: int, clip: Clip, b: _Bounds) -> tuple[int, _Take] | None:
        """Where the line starts and what is spoken, or None: no room for it."""
        take = _Take(trim_silence(clip_samples(clip)), clip.speed, 1.0, clip.text, False)
        if (start := _place(len(take.samples), b, b.soft)) is not None:
            return start, take
        if b.wall is not None and (start := _place(len(take.samples), b, b.wall)) is not None:
            return start, take  # pushes the next line of its gap later, at the voice's own pace
        limit = b.wall if b.wall is not None else b.soft
        take = self._faster(i, take, room=(limit - b.lo) / TRACK_RATE)
        take = self._stretched(take, room=(limit - b.lo) / TRACK_RATE)
        if b.wall is not None and 0 < len(take.samples) - (b.wall - b.lo) <= OVERSHOOT:
            take = take._replace(samples=take.samples[: b.wall - b.lo])  # atempo's few ms
        if (start := _place(len(take.samples), b, limit)) is not None:
            return start, take
        if b.wall is None:
            return b.lo, take  # runs on: later lines start later (or it goes over speech)
        cut = self._cut(i, take, room=b.wall - b.lo)
        return (b.lo, cut) if cut is not None else None

    def _faster(self, i: int, take: _Take, *, room: float) -> _Take:
        """Spoken again faster, when the server honours `speed` and the take is really shorter."""
        top = self.options.max_speed
        if self.resynthesize is None or not self.speed_works or take.speed >= top - 1e-6:
            return take
        # Speech duration scales about inversely with TTS speed; the 2 % margin covers what does
        # not (pauses, the model's own variation between takes).
        need = take.speed * seconds(take.samples) / room if room > 0 else top
        # At least SPEED_STEP faster: a smaller step is not worth a request, and its saving
        # could not be told from the 1-3 % by which a server's takes differ anyway.
        target = min(top, max(math.ceil(need * 1.02 * 100) / 100, take.speed + SPEED_STEP))
        if target <= take.speed:
            return take
        again = self.resynthesize(i, target)
        faster = trim_silence(clip_samples(again))
        promised = 1 - take.speed / target
        if len(faster) <= len(take.samples) * (1 - HONEST_SHARE * promised):
            return take._replace(samples=faster, speed=again.speed)
        if target / take.speed >= 1.08:  # a clear test: this server does not speak faster
            self.speed_works = False
            self.notes.append(
                f"the speech server ignored speed {target:g} (the take was not shorter): "
                "overlong lines are time-stretched instead"
            )
        return take

    def _stretched(self, take: _Take, *, room: float) -> _Take:
        top = self.options.max_stretch
        if top <= 1.0 or not len(take.samples):
            return take
        need = seconds(take.samples) / room if room > 0 else top
        factor = min(top, need * 1.002)  # atempo's output can run a few ms long
        if factor <= 1.001:
            return take
        return take._replace(samples=time_stretch(take.samples, TRACK_RATE, factor), stretch=factor)

    def _cut(self, i: int, take: _Take, *, room: int) -> _Take | None:
        """The line cut after its last sentence that fits (at the pace it reached), spoken
        again; None when no whole sentence fits or it cannot be spoken again."""
        parts = sentences(take.text)
        if self.resynthesize is None or len(parts) < 2 or room <= 0:
            return None
        chars = len(take.text)
        for keep in range(len(parts) - 1, 0, -1):
            kept = " ".join(parts[:keep])
            if len(take.samples) * len(kept) / chars > room:  # by the share of its characters
                continue
            again = self.resynthesize(i, take.speed, kept)
            fresh = _Take(trim_silence(clip_samples(again)), again.speed, 1.0, kept, True)
            fresh = self._stretched(fresh, room=room / TRACK_RATE)
            if len(fresh.samples) <= room:
                return fresh
        return None


def _place(n: int, b: _Bounds, limit: int) -> int | None:
    """Where `n` samples go to end by `limit`: at the wanted start, else as late as they fit
    before it (pulled earlier, never before `lo`); None when they do not fit at all."""
    if b.want + n <= limit:
        return b.want
    if b.lo + n <= limit:
        return limit - n
    return None


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
    # A line starts late because the one before it is still being spoken: name that one.
    notes = [
        f"segment {p.segment + 1} starts {p.pushed_s:.2f} s late: segment {before.segment + 1}"
        " before it is still being spoken"
        for before, p in itertools.pairwise(placements)
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
