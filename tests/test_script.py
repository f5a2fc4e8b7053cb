"""Script checks: repair, word budgets, slots, and reading an edited script.json."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from vnarrate.errors import InputError
from vnarrate.models import Script, Segment
from vnarrate.narration.script import (
    dump_script,
    load_script,
    over_budget,
    repair,
    sentences,
    suggest_slots,
    word_budget,
    word_count,
)


def _script(*segs: tuple[float, float, str]) -> Script:
    return Script(
        title="t", language="en", segments=[Segment(start_s=a, end_s=b, text=t) for a, b, t in segs]
    )


def test_repair_sorts_clamps_and_removes_overlaps() -> None:
    raw = _script(
        (5.0, 9.0, "second"),
        (0.0, 6.0, "first overlaps"),
        (8.0, 20.0, "runs past the end"),
        (3.0, 4.0, "   "),
        (12.0, 13.0, "starts after the end"),
    )
    fixed, notes = repair(raw, duration_s=10.0)
    segs = fixed.segments
    assert [s.text for s in segs] == ["first overlaps", "second", "runs past the end"]
    assert [(s.start_s, s.end_s) for s in segs] == [(0.0, 5.0), (5.0, 8.0), (8.0, 10.0)]
    assert any("empty" in n for n in notes) and any("after the video ends" in n for n in notes)
    assert any("sorted" in n for n in notes) and any("overlap" in n for n in notes)
    for a, b in itertools.pairwise(segs):
        assert a.end_s <= b.start_s


def test_a_line_ending_with_the_video_is_not_an_overlap() -> None:
    # 14.9667 s (898 frames at 60 fps): the model's 14.97, or the exact end, is kept quietly.
    duration = 898 / 60
    for end in (duration, 14.97, 20.0):
        fixed, notes = repair(_script((0.3, 7.39, "a"), (7.49, end, "b")), duration)
        assert fixed.segments[-1].end_s <= duration
        assert not any("overlap" in n for n in notes), (end, notes)


def test_repair_merges_segments_starting_together_and_widens_slivers() -> None:
    fixed, _ = repair(_script((1.0, 1.1, "a"), (1.2, 3.0, "b"), (5.0, 5.0, "c")), 10.0)
    assert [(s.start_s, s.text) for s in fixed.segments] == [(1.0, "a b"), (5.0, "c")]
    assert fixed.segments[1].end_s == pytest.approx(5.5)


def test_a_segment_ending_before_it_starts_gets_the_slot_up_to_the_next() -> None:
    # A typo in an edited script (end_s 2.0 for a line at 4.0): said, and not squeezed to 0.5 s.
    fixed, notes = repair(_script((1.0, 3.0, "a"), (4.0, 2.0, "b"), (8.0, 9.0, "c")), 10.0)
    assert [(s.start_s, s.end_s) for s in fixed.segments] == [(1.0, 3.0), (4.0, 8.0), (8.0, 9.0)]
    assert notes == [
        "the segment at 4.0 s ended before it started (end_s 2): its slot runs to the next segment"
    ]


def test_budgets() -> None:
    assert word_budget(0, 4, 2.5) == 9  # 4 s * 2.5 w/s * 0.9
    assert word_budget(0, 0.1, 2.5) == 1
    assert word_count("one two  three") == 3
    assert word_count("これはテストの文章です") >= 4
    s = _script((0, 2, "short line"), (2, 4, " ".join(["word"] * 12)))
    assert over_budget(s, 2.5) == [1]


def test_slots_cover_video_and_start_at_cuts() -> None:
    slots = suggest_slots(20.0, target_s=6.0, cuts_s=[7.5])
    assert slots[0][0] == 0.0 and slots[-1][1] == 20.0
    assert any(a == 7.5 for a, _ in slots)
    for (a1, b1), (a2, _) in itertools.pairwise(slots):
        assert b1 == a2 and b1 > a1
    assert suggest_slots(0.0) == []


def test_script_file_round_trip_and_errors(tmp_path: Path) -> None:
    s = _script((0, 2, "Hello there."))
    path = tmp_path / "s.json"
    path.write_text(dump_script(s))
    assert load_script(path) == s
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON \\(line 1"):
        load_script(path)
    path.write_text(
        json.dumps(
            {"title": "t", "language": "en", "segments": [{"start_s": -1, "end_s": 2, "text": "x"}]}
        )
    )
    with pytest.raises(InputError, match=r"segments\.0\.start_s"):
        load_script(path)
    with pytest.raises(InputError, match="no such script"):
        load_script(tmp_path / "missing.json")


def test_sentences_for_cutting_a_line() -> None:
    assert sentences("A heron waits. It strikes!  The fish escapes…") == [
        "A heron waits.",
        "It strikes!",
        "The fish escapes…",
    ]
    # A part going on in lower case belongs to the sentence before it.
    assert sentences('"Is it?" he asked. Yes.') == ['"Is it?" he asked.', "Yes."]
    assert sentences("鳥が飛ぶ。魚が泳ぐ。") == ["鳥が飛ぶ。", "魚が泳ぐ。"]
    assert sentences("No end") == ["No end"] and sentences("  ") == []
