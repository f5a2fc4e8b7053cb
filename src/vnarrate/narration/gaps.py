"""Gaps (pure): where people speak in a video -> where narration may go, and a script put there.

Takes the soundtrack's speech regions (seconds), the video's duration and GapOptions; gives the
rooms narration may use (each gap between speech long enough once a margin is kept from speech),
the suggested slots in them with their word budgets, a script repaired into the rooms (a line on
speech moves to the nearest room, in order; lines never overlap each other or speech), each
line's Room for the timeline, and how much narration ended up over speech. A video without
detected speech has no rooms (None): everything then behaves as before the soundtrack existed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..models import Placement, Script, Segment, Soundtrack, SpokenLine
from .script import MIN_SEGMENT_S, repair, suggest_slots, word_budget

OverSpeech = Literal["avoid", "duck"]
Span = tuple[float, float]
Slot = tuple[float, float, int]  # start, end, word budget

DIALOGUE_REACH_S = 20.0  # dialogue shown to the writer this far before and after its slots


@dataclass(frozen=True)
class GapOptions:
    """Where narration may go (session/options.py builds it from the `# --- narration in the gaps ---`
    settings)."""

    over_speech: OverSpeech  # avoid: only in the gaps; duck: may run on over speech
    min_gap_s: float  # a room shorter than this holds no narration
    before_s: float  # kept clear before detected speech starts (the detector can start late)
    after_s: float  # kept clear after it ends (its end is late already, and padded)


@dataclass(frozen=True)
class Room:
    """Where one line may be placed: from `start_s` to `end_s` (math.inf: no end but the
    video's). `hard`: never past `end_s` (the line is cut, then dropped); else it may run on
    (over speech with --over-speech duck; past its slot as before when there is no speech)."""

    start_s: float
    end_s: float
    hard: bool


@dataclass(frozen=True)
class Gaps:
    """The video's speech and the rooms between it that narration may use."""

    regions: list[Span]  # detected speech, as the soundtrack stage gave it
    rooms: list[Span]  # usable stretches, margins kept, each at least min_gap_s long
    lines: list[SpokenLine]  # what is said (text when transcribed), for the writer
    options: GapOptions

    @property
    def ducking(self) -> bool:
        return self.options.over_speech == "duck"


def find_gaps(soundtrack: Soundtrack | None, duration_s: float, options: GapOptions) -> Gaps | None:
    """The rooms between detected speech; None when nobody speaks (or the video has no audio)."""
    if soundtrack is None or not soundtrack.speech.regions:
        return None
    regions = sorted((max(0.0, a), min(b, duration_s)) for a, b in soundtrack.speech.regions)
    regions = [(a, b) for a, b in regions if b > a]
    if not regions:
        return None
    rooms: list[Span] = []
    edge = 0.0
    for a, b in [*regions, (duration_s, duration_s)]:
        lo = edge + options.after_s if edge > 0 else 0.0  # no speech before the video starts
        hi = a - options.before_s if a < duration_s else duration_s  # nor after it ends
        if hi - lo >= options.min_gap_s - 1e-9:
            rooms.append((round(lo, 3), round(hi, 3)))
        edge = max(edge, b)
    if not rooms and options.over_speech == "duck":
        rooms = [(0.0, round(duration_s, 3))]  # nowhere free of speech: narrate over it, ducked
    lines = sorted(soundtrack.lines, key=lambda ln: ln.start_s)
    return Gaps(regions=regions, rooms=rooms, lines=lines, options=options)


def room_s(soundtrack: Soundtrack | None, duration_s: float, options: GapOptions) -> float | None:
    """The seconds narration may take between speech; None when nobody speaks (all of it)."""
    gaps = find_gaps(soundtrack, duration_s, options)
    return None if gaps is None else sum(b - a for a, b in gaps.rooms)


def no_room(soundtrack: Soundtrack | None, duration_s: float, options: GapOptions) -> bool:
    """People speak all through: no room to narrate in (with --over-speech avoid)."""
    gaps = find_gaps(soundtrack, duration_s, options)
    return gaps is not None and not gaps.rooms


def script_slots(
    gaps: Gaps | None,
    duration_s: float,
    target_s: float,
    cuts_s: Sequence[float],
    words_per_second: float,
) -> list[Slot]:
    """Where the script's lines go, each with its word budget: slots of about `target_s` over
    the whole video (no soundtrack heard), else in the rooms between speech."""
    if gaps is None:
        spans = suggest_slots(duration_s, target_s=target_s, cuts_s=cuts_s)
        return [(a, b, word_budget(a, b, words_per_second)) for a, b in spans]
    return gap_slots(gaps, target_s=target_s, cuts_s=cuts_s, words_per_second=words_per_second)


def gap_slots(
    gaps: Gaps,
    *,
    target_s: float,
    cuts_s: Sequence[float],
    words_per_second: float,
) -> list[Slot]:
    """Slots of about `target_s` in every room (split at shot changes where known), each with
    its word budget at the voice's pace."""
    slots: list[Slot] = []
    for lo, hi in gaps.rooms:
        # A cut too close to a room's edge would leave a sliver no line fits in.
        edge = max(gaps.options.min_gap_s, MIN_SEGMENT_S * 2)
        inner = [c - lo for c in cuts_s if lo + edge <= c <= hi - edge]
        for a, b in suggest_slots(hi - lo, target_s=target_s, cuts_s=inner):
            start, end = round(lo + a, 2), round(lo + b, 2)
            slots.append((start, end, word_budget(start, end, words_per_second)))
    return slots


def dialogue_near(
    lines: Sequence[SpokenLine], lo: float, hi: float, reach_s: float = DIALOGUE_REACH_S
) -> list[SpokenLine]:
    """The spoken lines a writer of [lo, hi) should know of (within `reach_s` of it)."""
    return [ln for ln in lines if ln.end_s > lo - reach_s and ln.start_s < hi + reach_s]


# --- repairing a script into the rooms ----------------------------------------------------------


def repair_into_gaps(script: Script, duration_s: float, gaps: Gaps) -> tuple[Script, list[str]]:
    """`repair` (sorted, inside the video, no overlaps, no empty text), then every line moved
    into a room: the one its time falls in, else the nearest that keeps the lines in order. Lines
    of one room follow each other; a line left less than MIN_SEGMENT_S joins the one before."""
    fixed, notes = repair(script, duration_s)
    if not gaps.rooms:
        if fixed.segments:
            notes.append(
                f"people speak all through: no room of {gaps.options.min_gap_s:g} s or more "
                f"between speech, so {len(fixed.segments)} line(s) left out (--over-speech duck "
                "narrates over it, --min-gap finds shorter rooms)"
            )
        return fixed.model_copy(update={"segments": []}), notes
    placed: list[tuple[int, Segment]] = []  # (room index, segment)
    moved = 0
    floor = 0  # lines keep their order: a line never goes to a room before the previous one's
    for seg in fixed.segments:
        k = _best_room(gaps.rooms, seg, floor)
        k, start = _start_in(gaps.rooms, k, seg.start_s, placed[-1] if placed else None)
        lo, hi = gaps.rooms[k]
        outside = not lo <= seg.start_s < hi
        moved += outside
        # A moved line's own end says nothing about its new place: it may use the room.
        end = math.inf if outside else seg.end_s
        placed.append((k, Segment(start_s=round(start, 3), end_s=end, text=seg.text)))
        floor = k
    if moved:
        notes.append(f"moved {moved} line(s) off speech into the gaps between it")
    return fixed.model_copy(update={"segments": _close(placed, gaps.rooms, notes)}), notes


def _best_room(rooms: Sequence[Span], seg: Segment, floor: int) -> int:
    """The room a line belongs to: the one its start falls in, else the one nearest to the time
    it covers (more overlap first), never before `floor`."""
    starts = [lo for lo, _ in rooms]
    k = bisect.bisect_right(starts, seg.start_s) - 1
    if k >= floor and k >= 0 and seg.start_s < rooms[k][1]:
        return k
    a, b = seg.start_s, max(seg.end_s, seg.start_s)

    def distance(i: int) -> tuple[float, float]:
        lo, hi = rooms[i]
        overlap = min(b, hi) - max(a, lo)
        return (max(0.0, -overlap), -overlap)

    return min(range(floor, len(rooms)), key=distance)


def _start_in(
    rooms: Sequence[Span], k: int, wanted: float, prev: tuple[int, Segment] | None
) -> tuple[int, float]:
    """Where a line starts in room `k` (after the room's previous line); when the room is full,
    the next room's start, or the room's end in the last room (the line then joins the one
    before it)."""
    lo, hi = rooms[k]
    start = max(wanted, lo)
    if prev is not None and prev[0] == k:
        start = max(start, prev[1].start_s + MIN_SEGMENT_S)
        if start > hi - MIN_SEGMENT_S:
            return (k + 1, rooms[k + 1][0]) if k + 1 < len(rooms) else (k, hi)
    return k, min(start, max(lo, hi - MIN_SEGMENT_S))


def _close(
    placed: list[tuple[int, Segment]], rooms: Sequence[Span], notes: list[str]
) -> list[Segment]:
    """Each line's end: its own, but not past the next line of its room nor the room's end; a
    line left too little time joins the one before it in the same room."""
    out: list[tuple[int, Segment]] = []
    for n, (k, seg) in enumerate(placed):
        nxt = placed[n + 1] if n + 1 < len(placed) else None
        limit = nxt[1].start_s if nxt is not None and nxt[0] == k else rooms[k][1]
        end = min(max(seg.end_s, seg.start_s + MIN_SEGMENT_S), limit, rooms[k][1])
        if end - seg.start_s < MIN_SEGMENT_S and out and out[-1][0] == k:
            prev = out.pop()[1]
            notes.append(f"joined two lines in the gap at {prev.start_s:.1f} s")
            seg = Segment(start_s=prev.start_s, end_s=seg.end_s, text=f"{prev.text} {seg.text}")
            end = min(max(seg.end_s, end), limit, rooms[k][1])
        out.append((k, Segment(start_s=seg.start_s, end_s=round(end, 3), text=seg.text)))
    return [seg for _, seg in out]


def rooms_for(script: Script, gaps: Gaps | None) -> list[Room]:
    """Each line's Room, for the timeline. Without speech: from its own start with no end (the
    timeline fits it to the next line as before). With speech: the room its start lies in (a
    repaired script's lines all lie in one), hard unless --over-speech duck."""
    if gaps is None:
        return [Room(seg.start_s, math.inf, hard=False) for seg in script.segments]
    out: list[Room] = []
    starts = [lo for lo, _ in gaps.rooms]
    for seg in script.segments:
        k = bisect.bisect_right(starts, seg.start_s + 1e-6) - 1
        lo, hi = gaps.rooms[k] if k >= 0 else (seg.start_s, seg.start_s)
        out.append(Room(lo, hi, hard=not gaps.ducking))
    return out


def over_speech(placements: Sequence[Placement], regions: Sequence[Span]) -> list[Placement]:
    """The placements with `over_speech_s`: how much of each lies on detected speech."""
    out = []
    for p in placements:
        over = sum(max(0.0, min(p.end_s, b) - max(p.start_s, a)) for a, b in regions)
        out.append(p.model_copy(update={"over_speech_s": round(over, 3)}))
    return out
