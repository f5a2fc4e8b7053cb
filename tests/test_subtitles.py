"""Subtitles: SRT and WebVTT written from placements, parsed back (timings, wrapping, escaping)."""

from __future__ import annotations

import itertools

import pytest
from _media import parse_srt, parse_vtt, speech_map

from vnarrate.models import Placement, Soundtrack, SpokenLine
from vnarrate.narration.subtitles import (
    CUE_GAP_S,
    MAX_CPS,
    MAX_LINE_CHARS,
    MIN_CUE_S,
    cues,
    dialogue_notes,
    split_cues,
    subtitle_tracks,
    to_srt,
    to_vtt,
    wrap,
)


def placement(i: int, start: float, end: float, text: str, **kw: float) -> Placement:
    return Placement(
        segment=i, text=text, start_s=start, end_s=end, slot_start_s=start, slot_end_s=end, **kw
    )


PLACED = [
    placement(0, 0.5, 2.25, "A heron waits."),
    placement(1, 2.9, 5.0, "It strikes.", pushed_s=0.4),  # post-fit timing, not the slot's
    placement(2, 3725.0, 3726.5, "An hour later."),
]


def test_srt_round_trip() -> None:
    text = to_srt(PLACED)
    assert text.endswith("\n") and "\r" not in text
    cues = parse_srt(text)
    assert [(a, b) for a, b, _ in cues] == [(0.5, 2.25), (2.9, 5.0), (3725.0, 3726.5)]
    assert [lines for _, _, lines in cues] == [
        ["A heron waits."],
        ["It strikes."],
        ["An hour later."],
    ]
    assert "01:02:05,000 --> 01:02:06,500" in text


def test_vtt_round_trip_and_escaping() -> None:
    placed = [*PLACED, placement(3, 3800.0, 3801.0, "Fish & chips <b>now</b> --> later")]
    cues = parse_vtt(to_vtt(placed))
    assert [(a, b) for a, b, _ in cues][:3] == [(0.5, 2.25), (2.9, 5.0), (3725.0, 3726.5)]
    assert cues[3][2] == ["Fish &amp; chips &lt;b&gt;now&lt;/b&gt; -&gt; later"]


def test_long_lines_wrap_to_two_balanced_lines() -> None:
    text = "The heron lifts off the water and glides low over the reeds."  # 61 chars
    cues = parse_srt(to_srt([placement(0, 1.0, 5.0, text)]))
    assert len(cues) == 1
    lines = cues[0][2]
    assert len(lines) == 2 and all(len(line) <= MAX_LINE_CHARS for line in lines)
    assert " ".join(lines) == text
    assert abs(len(lines[0]) - len(lines[1])) <= 10  # balanced, not 42 + 19


def test_very_long_lines_become_several_cues_over_the_same_time() -> None:
    text = (
        "Morning light spills across the marsh as the mist lifts from the water. "
        "A grey heron stands motionless among the reeds, watching the shallows. "
        "Suddenly it strikes, and comes up with a small silver fish."
    )
    cues = parse_vtt(to_vtt([placement(0, 10.0, 22.0, text)]))
    assert len(cues) >= 3
    assert cues[0][0] == 10.0 and cues[-1][1] == 22.0
    for (_, end, _), (start, _, _) in itertools.pairwise(cues):
        assert 0 < start - end <= CUE_GAP_S + 0.001  # two frames apart, never overlapping
    for start, end, lines in cues:
        assert end > start and 1 <= len(lines) <= 2
        assert all(len(line) <= MAX_LINE_CHARS for line in lines)
    assert " ".join(" ".join(lines) for _, _, lines in cues) == text
    # cut at sentence ends where a sentence fits a cue
    assert " ".join(cues[0][2]).endswith("water.")


def test_empty_and_zero_length_lines_are_skipped() -> None:
    placed = [placement(0, 1.0, 1.0, "Nothing."), placement(1, 2.0, 3.0, "  "), PLACED[0]]
    assert len(parse_srt(to_srt(placed))) == 1
    assert to_vtt([]) == "WEBVTT\n"


def test_wrap() -> None:
    assert wrap("short") == ["short"]
    assert wrap("x" * 50) == ["x" * 50]  # one word cannot be broken sensibly
    three = wrap(" ".join(["word"] * 30))
    assert len(three) > 2 and all(len(line) <= MAX_LINE_CHARS for line in three)


# --- readable cues: display time, reading speed, phrase boundaries --------------------------------


def test_a_short_line_is_shown_at_least_a_second_running_into_the_silence() -> None:
    placed = [placement(0, 1.0, 1.35, "Birds."), placement(1, 5.0, 6.0, "A fox.")]
    (a, b) = cues(placed, duration_s=8.0)
    assert (a[0], a[1]) == (1.0, 1.0 + MIN_CUE_S)  # not 0.35 s
    assert b[0] == 5.0 and b[1] - b[0] >= MIN_CUE_S


def test_reading_speed_lengthens_a_cue_up_to_the_next_one_and_the_video_end() -> None:
    text = "A heron waits in the reeds while the river runs."  # 48 characters
    placed = [placement(0, 0.0, 1.5, text), placement(1, 2.2, 2.6, "It strikes.")]
    first, second = cues(placed, duration_s=3.0)
    assert first[1] == pytest.approx(2.2 - CUE_GAP_S)  # wants 48 / 17 = 2.8 s: stops short
    assert first[1] < second[0]  # never overlapping
    assert second[1] == 3.0  # wants 1 s: the video ends first
    alone = cues([placement(0, 0.0, 1.5, text)], duration_s=10.0)[0]
    assert alone[1] == pytest.approx(len(text) / MAX_CPS)


def test_long_lines_split_at_phrases_into_even_cues_never_a_word_alone() -> None:
    text = (
        "The heron lifts off the water and glides low over the reeds and then it lands "
        "on a branch near the old wooden bridge at the far end of the lake."
    )
    parts = split_cues(text)
    assert len(parts) == 2 and " ".join(parts) == text
    assert parts[1].startswith("and then")  # before the conjunction, not after "and"
    assert min(len(p) for p in parts) > 40  # even, not 80 + a word or two
    two = "A fox trots through the snow, stops and listens. Then it pounces into a deep drift."
    assert split_cues(two) == [two[:48], two[49:]]  # at the sentence end
    for part in split_cues("word " * 60):
        assert len(part.split()) > 2 and all(len(x) <= MAX_LINE_CHARS for x in wrap(part))


def test_text_without_spaces_is_split_into_lines_and_cues() -> None:
    text = "鳥が飛ぶ。" * 30  # 150 characters, no spaces
    parts = split_cues(text)
    assert "".join(parts) == text and len(parts) == 2
    for part in parts:
        lines = wrap(part)
        assert len(lines) <= 2 and all(len(x) <= MAX_LINE_CHARS for x in lines)


def test_no_cue_overlaps_another_or_runs_past_the_video() -> None:
    placed = [placement(i, i * 0.5, i * 0.5 + 0.4, f"Line number {i} here.") for i in range(10)]
    found = cues(placed, duration_s=4.8)
    for (_, end, _), (start, _, _) in itertools.pairwise(found):
        assert end <= start
    assert found[-1][1] <= 4.8 and all(e > s for s, e, _ in found)


# --- --subtitles dialogue|both: what people say, told apart from the narration ------------------

SAID = [
    SpokenLine(start_s=0.0, end_s=2.0, text="Hold the door, please.", speaker="Ana"),
    SpokenLine(start_s=2.1, end_s=2.6, text="Thanks!"),  # a quick reply: its cue is not held over
    SpokenLine(start_s=6.0, end_s=7.0, text=""),  # heard but not transcribed: no cue
]


def heard(regions: list[tuple[float, float]], lines: list[SpokenLine]) -> Soundtrack:
    speech = speech_map(regions, 10.0)
    return Soundtrack(speech=speech, lines=lines, transcribed=True)


def test_both_tells_narration_and_dialogue_apart_in_srt() -> None:
    cues_ = parse_srt(to_srt(PLACED[:2], 10.0, dialogue=SAID))
    texts = [" ".join(lines) for _, _, lines in cues_]
    assert texts == ["Ana: Hold the door, please.", "<i>A heron waits.</i>", "Thanks!",
                     "<i>It strikes.</i>"]  # fmt: skip
    starts = [a for a, _, _ in cues_]
    assert starts == sorted(starts)
    # The dialogue's own cues never overlap one another (each track is timed on its own).
    (_, b0, _), (a1, _, _) = cues_[0], cues_[2]
    assert b0 <= a1 - CUE_GAP_S + 1e-6


def test_both_names_each_voice_in_webvtt() -> None:
    cues_ = parse_vtt(to_vtt(PLACED[:1], 10.0, dialogue=SAID[:2]))
    first = "\n".join(cues_[0][2])
    assert first == "<v Ana>Hold the door, please.</v>"
    assert "\n".join(cues_[1][2]) == "<v Narrator><i>A heron waits.</i></v>"
    assert "\n".join(cues_[2][2]) == "<v Speech>Thanks!</v>"


def test_dialogue_alone_is_plain_and_skips_untranscribed_speech() -> None:
    srt = parse_srt(to_srt([], 10.0, dialogue=SAID))
    assert [" ".join(lines) for _, _, lines in srt] == ["Ana: Hold the door, please.", "Thanks!"]
    assert "<i>" not in to_srt([], 10.0, dialogue=SAID)
    assert to_srt(PLACED) == to_srt(PLACED, dialogue=[])  # narration alone: as before


@pytest.mark.parametrize(
    ("mode", "narrated", "said"),
    [("narration", 2, 0), ("dialogue", 0, 2), ("both", 2, 2), ("off", 0, 0)],
)
def test_subtitle_tracks_follow_the_mode(mode: str, narrated: int, said: int) -> None:
    soundtrack = heard([(0.0, 2.0)], SAID)
    shown, lines = subtitle_tracks(mode, PLACED[:2], soundtrack)  # type: ignore[arg-type]
    assert (len(shown), len(lines)) == (narrated, said)


def test_dialogue_asked_but_nothing_said_is_noted() -> None:
    assert dialogue_notes("narration", None) == []
    assert "no audio track" in dialogue_notes("dialogue", None)[0]
    silent = heard([], [])
    assert "nobody speaks" in dialogue_notes("both", silent)[0]
    untranscribed = heard([(6.0, 7.0)], SAID[2:])
    assert "not transcribed" in dialogue_notes("both", untranscribed)[0]
    assert dialogue_notes("both", heard([(0.0, 2.0)], SAID[:1])) == []
