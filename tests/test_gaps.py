"""Gaps: rooms between detected speech (margins, --min-gap, lead-in and tail, duck), slots in
them, a model's script repaired into them (lines on speech moved, order kept, never overlapping
each other or speech), each line's Room, and narration over speech measured."""

from __future__ import annotations

import itertools

import pytest
from _media import speech_map

from vnarrate.models import (
    Placement,
    Script,
    Segment,
    Soundtrack,
    SpokenLine,
)
from vnarrate.narration.gaps import (
    GapOptions,
    dialogue_near,
    find_gaps,
    gap_slots,
    over_speech,
    repair_into_gaps,
    rooms_for,
)

AVOID = GapOptions(over_speech="avoid", min_gap_s=1.0, before_s=0.35, after_s=0.1)
DUCK = GapOptions(over_speech="duck", min_gap_s=1.0, before_s=0.35, after_s=0.1)
# dialogue_bunny.mp4 as the detector hears it (30 s): the 1.1 s pause at 5.6 s is 0.63 s here.
BUNNY = [(1.78, 5.86), (6.49, 9.38), (15.0, 18.76), (22.49, 26.54)]


def soundtrack(regions: list[tuple[float, float]], duration: float = 30.0) -> Soundtrack:
    speech = speech_map(regions, duration)
    lines = [SpokenLine(start_s=a, end_s=b) for a, b in regions]
    return Soundtrack(speech=speech, lines=lines)


def script(*segments: tuple[float, float, str]) -> Script:
    return Script(
        title="t",
        language="en",
        segments=[Segment(start_s=a, end_s=b, text=t) for a, b, t in segments],
    )


def test_rooms_keep_a_margin_from_speech_and_skip_pauses_and_turns() -> None:
    gaps = find_gaps(soundtrack(BUNNY), 30.0, AVOID)
    assert gaps is not None
    # Lead-in (no margin at the video's start), the 5.6 s gap, 18.8-22.5, the tail (no margin
    # at the end); the 0.63 s pause between two lines is no room.
    assert gaps.rooms == [(0.0, 1.43), (9.48, 14.65), (18.86, 22.14), (26.64, 30.0)]
    assert all(b - a >= AVOID.min_gap_s for a, b in gaps.rooms)
    for lo, hi in gaps.rooms:
        assert all(hi <= a - 0.35 + 1e-9 or lo >= b + 0.1 - 1e-9 for a, b in BUNNY)
    wider = find_gaps(soundtrack(BUNNY), 30.0, GapOptions("avoid", 3.5, 0.35, 0.1))
    assert wider is not None and wider.rooms == [(9.48, 14.65)]


def test_no_speech_means_no_gaps_and_everything_as_before() -> None:
    assert find_gaps(None, 30.0, AVOID) is None
    assert find_gaps(soundtrack([]), 30.0, AVOID) is None
    segs = script((0.0, 2.0, "A."), (3.0, 5.0, "B."))
    rooms = rooms_for(segs, None)
    assert [r.start_s for r in rooms] == [0.0, 3.0] and all(not r.hard for r in rooms)


def test_talking_all_through_leaves_no_room_unless_duck() -> None:
    talk = soundtrack([(0.3, 29.5)])
    avoid = find_gaps(talk, 30.0, AVOID)
    assert avoid is not None and avoid.rooms == []
    fixed, notes = repair_into_gaps(script((1.0, 3.0, "A line.")), 30.0, avoid)
    assert fixed.segments == [] and "left out" in notes[-1] and "--over-speech duck" in notes[-1]
    duck = find_gaps(talk, 30.0, DUCK)
    assert duck is not None and duck.rooms == [(0.0, 30.0)] and duck.ducking
    assert not rooms_for(script((1.0, 3.0, "x")), duck)[0].hard


def test_slots_fill_the_rooms_split_at_cuts_with_budgets() -> None:
    gaps = find_gaps(soundtrack(BUNNY), 30.0, AVOID)
    assert gaps is not None
    slots = gap_slots(gaps, target_s=6.0, cuts_s=[12.0, 14.5, 20.0], words_per_second=3.5)
    spans = [(a, b) for a, b, _ in slots]
    # 12.0 splits the 5.2 s room; 14.5 is too near its end to make a slot of its own.
    assert spans == [(0.0, 1.43), (9.48, 12.0), (12.0, 14.65), (18.86, 20.0), (20.0, 22.14),
                     (26.64, 30.0)]  # fmt: skip
    assert [n for _, _, n in slots] == [4, 7, 8, 3, 6, 10]  # floor(length * 3.5 * 0.9)
    for a, b in spans:
        assert not any(a < hi and b > lo for lo, hi in BUNNY)


def test_repair_moves_lines_off_speech_in_order_and_never_overlaps() -> None:
    gaps = find_gaps(soundtrack(BUNNY), 30.0, AVOID)
    assert gaps is not None
    raw = script(
        (0.2, 1.5, "Dawn."),
        (3.0, 6.0, "On speech: the nearest room with space is 9.5 s."),
        (10.5, 14.0, "A bird."),
        (16.0, 17.0, "On speech again."),
        (27.0, 29.0, "The end."),
    )
    fixed, notes = repair_into_gaps(raw, 30.0, gaps)
    starts = [s.start_s for s in fixed.segments]
    assert starts == [0.2, 9.48, 10.5, 18.86, 27.0]
    assert any("moved 2 line(s)" in n for n in notes)
    for seg in fixed.segments:
        room = next(r for r in gaps.rooms if r[0] <= seg.start_s < r[1])
        assert seg.end_s <= room[1] and seg.end_s > seg.start_s  # inside one room
    for a, b in itertools.pairwise(fixed.segments):
        assert a.end_s <= b.start_s
    assert fixed.segments[1].end_s == 10.5  # shares its room: ends where the next begins


def test_lines_crowding_a_room_join_or_move_on() -> None:
    gaps = find_gaps(soundtrack([(2.0, 8.0)], duration=10.0), 10.0, AVOID)
    assert gaps is not None and gaps.rooms == [(0.0, 1.65), (8.1, 10.0)]
    raw = script((0.0, 0.5, "One."), (0.3, 0.6, "Two."), (1.6, 1.8, "Three."))
    fixed, _ = repair_into_gaps(raw, 10.0, gaps)
    # "Two." (0.3 s after "One.") joins it; "Three." has no room left in the lead-in.
    assert [(s.start_s, s.text) for s in fixed.segments] == [(0.0, "One. Two."), (8.1, "Three.")]
    late = script((9.0, 9.5, "Late."), (9.7, 9.9, "Later."))
    fixed, _ = repair_into_gaps(late, 10.0, gaps)
    assert [s.text for s in fixed.segments] == ["Late. Later."]


def test_each_line_gets_its_rooms_bounds() -> None:
    gaps = find_gaps(soundtrack(BUNNY), 30.0, AVOID)
    assert gaps is not None
    fixed, _ = repair_into_gaps(script((10.0, 12.0, "x"), (27.0, 28.0, "y")), 30.0, gaps)
    rooms = rooms_for(fixed, gaps)
    assert [(r.start_s, r.end_s, r.hard) for r in rooms] == [
        (9.48, 14.65, True),
        (26.64, 30.0, True),
    ]


def test_dialogue_near_a_stretch() -> None:
    lines = [SpokenLine(start_s=a, end_s=b, text=f"{a}") for a, b in BUNNY]
    assert [ln.text for ln in dialogue_near(lines, 9.5, 14.9, reach_s=1.0)] == ["6.49", "15.0"]


def test_over_speech_is_measured_per_placement() -> None:
    def placed(a: float, b: float) -> Placement:
        return Placement(segment=0, text="x", start_s=a, end_s=b, slot_start_s=a, slot_end_s=b)

    out = over_speech([placed(0.0, 1.5), placed(5.0, 7.0)], BUNNY)
    assert out[0].over_speech_s == 0.0
    assert out[1].over_speech_s == pytest.approx((5.86 - 5.0) + (7.0 - 6.49), abs=0.001)
