"""Timeline in the gaps: each line fitted into its Room by the ladder (pulled earlier, pushing
the next within its gap, spoken faster only when the take really is shorter, stretched, cut at a
sentence end, dropped), never over speech unless ducking; and scripts whose lines overrun each
other and the video's end always end placed and reported (no OverflowError)."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from _media import speech_pcm

from vnarrate.models import Clip, Segment
from vnarrate.narration.gaps import Room
from vnarrate.narration.timeline import FitOptions, fit_lines, fit_timeline

SR = 24000
FIT = FitOptions(max_speed=1.25, max_stretch=1.25)


def clip(i: int, seconds: float, text: str = "", speed: float = 1.0) -> Clip:
    return Clip(segment=i, text=text or f"line {i}", pcm=speech_pcm(seconds), speed=speed)


class Voice:
    """A fake TTS: `seconds[text]` at speed 1.0; honours `speed` unless `deaf`."""

    def __init__(self, seconds: dict[str, float], *, deaf: bool = False) -> None:
        self.seconds = seconds
        self.deaf = deaf
        self.calls: list[tuple[int, float, str | None]] = []
        self.texts: dict[int, str] = {}

    def first(self, i: int, text: str) -> Clip:
        self.texts[i] = text
        return clip(i, self.seconds[text], text)

    def __call__(self, i: int, speed: float, text: str | None = None) -> Clip:
        self.calls.append((i, speed, text))
        said = text or self.texts[i]
        length = self.seconds[said] * (1.0 if self.deaf else 1.0 / speed)
        return clip(i, length, said, speed)


def segs(*items: tuple[float, float, str]) -> list[Segment]:
    return [Segment(start_s=a, end_s=b, text=t) for a, b, t in items]


def hard(a: float, b: float) -> Room:
    return Room(a, b, hard=True)


def test_a_line_that_fits_starts_where_the_script_says() -> None:
    voice = Voice({"A.": 1.0})
    out = fit_lines(segs((2.5, 4.0, "A.")), [voice.first(0, "A.")], 10.0,
                    resynthesize=voice, options=FIT, rooms=[hard(2.0, 4.0)])  # fmt: skip
    (p,) = out.placements
    assert (p.start_s, p.end_s, p.speed, p.stretch) == (2.5, 3.5, 1.0, 1.0)
    assert voice.calls == [] and out.dropped == []


def test_a_line_too_late_in_its_gap_is_pulled_earlier_not_sped_up() -> None:
    voice = Voice({"A.": 1.5})
    out = fit_lines(segs((3.0, 4.0, "A.")), [voice.first(0, "A.")], 10.0,
                    resynthesize=voice, options=FIT, rooms=[hard(2.0, 4.0)])  # fmt: skip
    (p,) = out.placements
    assert p.start_s == pytest.approx(2.5) and p.end_s == pytest.approx(4.0)
    assert voice.calls == [] and p.speed == 1.0 and p.stretch == 1.0


def test_a_line_pushes_the_next_one_within_its_gap_at_its_own_pace() -> None:
    voice = Voice({"A.": 2.0, "B.": 1.0})
    lines = segs((2.0, 3.0, "A."), (3.0, 6.0, "B."))
    clips = [voice.first(0, "A."), voice.first(1, "B.")]
    out = fit_lines(lines, clips, 10.0, resynthesize=voice, options=FIT,
                    rooms=[hard(2.0, 6.0), hard(2.0, 6.0)])  # fmt: skip
    a, b = out.placements
    assert (a.start_s, a.end_s, a.speed) == (2.0, 4.0, 1.0)
    assert b.start_s == pytest.approx(4.15) and b.end_s <= 6.0 and b.pushed_s > 1.0
    assert voice.calls == []


def test_speed_counts_only_when_the_take_is_really_shorter() -> None:
    honest = Voice({"A.": 3.0})
    out = fit_lines(segs((2.0, 4.5, "A.")), [honest.first(0, "A.")], 10.0,
                    resynthesize=honest, options=FIT, rooms=[hard(2.0, 4.5)])  # fmt: skip
    assert out.placements[0].speed > 1.0 and out.placements[0].stretch == 1.0

    deaf = Voice({"A.": 3.0, "B.": 3.0}, deaf=True)  # a Piper server: `speed` ignored
    lines = segs((2.0, 4.5, "A."), (6.0, 8.5, "B."))
    out = fit_lines(lines, [deaf.first(0, "A."), deaf.first(1, "B.")], 10.0, resynthesize=deaf,
                    options=FIT, rooms=[hard(2.0, 4.5), hard(6.0, 8.5)])  # fmt: skip
    assert [p.speed for p in out.placements] == [1.0, 1.0]  # not recorded as sped up
    assert all(p.stretch > 1.1 and p.end_s <= r + 1e-6
               for p, r in zip(out.placements, (4.5, 8.5), strict=True))  # fmt: skip
    assert len(deaf.calls) == 1  # learnt once: the second line is not asked again
    assert any("ignored speed" in n for n in out.notes)


def test_a_line_that_cannot_fit_is_cut_at_a_sentence_end() -> None:
    text = "A heron waits in the reeds. It strikes at a fish. The fish escapes."
    kept = "A heron waits in the reeds."
    voice = Voice({text: 6.0, kept: 2.4})
    out = fit_lines(segs((1.0, 3.5, text)), [voice.first(0, text)], 10.0,
                    resynthesize=voice, options=FIT, rooms=[hard(1.0, 3.5)])  # fmt: skip
    (p,) = out.placements
    assert p.cut and p.text == kept and p.end_s <= 3.5
    assert (0, 1.25, kept) in voice.calls  # the kept sentence spoken again, at the pace reached
    assert out.dropped == []


def test_a_line_with_no_sentence_to_keep_is_dropped_and_the_next_still_placed() -> None:
    voice = Voice({"One long sentence that never ends.": 6.0, "B.": 0.8})
    lines = segs((1.0, 3.0, "One long sentence that never ends."), (5.0, 7.0, "B."))
    clips = [voice.first(0, lines[0].text), voice.first(1, "B.")]
    out = fit_lines(lines, clips, 10.0, resynthesize=voice, options=FIT,
                    rooms=[hard(1.0, 3.0), hard(5.0, 7.0)])  # fmt: skip
    assert out.dropped == [0] and [p.segment for p in out.placements] == [1]
    assert int(np.abs(out.track[: 4 * SR]).max()) == 0  # nothing where it would have gone


def test_duck_lets_a_line_run_over_the_speech_after_its_gap() -> None:
    voice = Voice({"A.": 6.0}, deaf=True)
    out = fit_lines(segs((1.0, 3.0, "A.")), [voice.first(0, "A.")], 10.0,
                    resynthesize=voice, options=FIT, rooms=[Room(1.0, 3.0, hard=False)])  # fmt: skip
    (p,) = out.placements
    assert p.start_s == 1.0 and p.end_s == pytest.approx(1.0 + 6.0 / 1.25, abs=0.02)
    assert out.dropped == []


def test_lines_never_overlap_each_other_or_leave_their_rooms() -> None:
    rng = random.Random(7)
    rooms = [(0.0, 1.6), (4.0, 9.0), (12.0, 13.2), (15.0, 20.0)]
    for _ in range(20):
        n = rng.randint(1, 8)
        starts = sorted(rng.uniform(0, 19.5) for _ in range(n))
        voice = Voice({f"L{i}. M{i}.": rng.uniform(0.3, 5.0) for i in range(n)})
        voice.seconds.update({f"L{i}.": voice.seconds[f"L{i}. M{i}."] / 2 for i in range(n)})
        lines = segs(*[(s, s + 1, f"L{i}. M{i}.") for i, s in enumerate(starts)])
        own = [next((r for r in rooms if r[0] <= s < r[1]), rooms[-1]) for s in starts]
        out = fit_lines(lines, [voice.first(i, seg.text) for i, seg in enumerate(lines)], 20.0,
                        resynthesize=voice, options=FIT,
                        rooms=[hard(a, b) for a, b in own])  # fmt: skip
        assert len(out.placements) + len(out.dropped) == n
        for p in out.placements:
            a, b = own[p.segment]
            assert a - 1e-6 <= p.start_s and p.end_s <= b + 1e-6
        for p, q in itertools.pairwise(out.placements):
            assert p.end_s <= q.start_s
        assert len(out.track) == 20 * SR


@pytest.mark.parametrize("seed", range(6))
def test_overrunning_scripts_always_end_placed_without_speech(seed: int) -> None:
    """Issue 12: a line whose speech runs past the next line's slot, or past the end of a
    short clip, left no room (`room <= 0` -> math.inf -> OverflowError). Now every line is
    placed, spoken as fast as allowed, and the overrun reported."""
    rng = random.Random(seed)
    duration = 2.38  # fire2.mp4
    n = rng.randint(2, 6)
    starts = sorted(round(rng.uniform(0, 2.0), 2) for _ in range(n))
    lines = segs(*[(s, s + 0.3, f"line {i}") for i, s in enumerate(starts)])
    voice = Voice({f"line {i}": rng.uniform(1.0, 4.0) for i in range(n)}, deaf=seed % 2 == 0)
    clips = [voice.first(i, seg.text) for i, seg in enumerate(lines)]
    track, placed = fit_timeline(lines, clips, duration, resynthesize=voice)
    assert len(placed) == n
    assert all(math.isfinite(p.end_s) and p.stretch <= 1.25 + 1e-6 for p in placed)
    for p, q in itertools.pairwise(placed):
        assert q.start_s >= p.end_s
    assert len(track) == max(round(duration * SR), round(placed[-1].end_s * SR))


def test_a_deaf_servers_slightly_shorter_take_is_not_passed_off_as_faster() -> None:
    """Piper ignores `speed`; its takes of one text differ by 1-3 %. A line 3 % too long asks
    for at least 0.1 faster, so a take 2.5 % shorter does not count as spoken faster."""

    class Jitter(Voice):
        def __call__(self, i: int, speed: float, text: str | None = None) -> Clip:
            self.calls.append((i, speed, text))
            return clip(i, self.seconds[self.texts[i]] * 0.975, self.texts[i], speed)

    voice = Jitter({"A.": 2.0})
    out = fit_lines(segs((1.0, 2.95, "A.")), [voice.first(0, "A.")], 10.0,
                    resynthesize=voice, options=FIT, rooms=[hard(1.0, 2.95)])  # fmt: skip
    (p,) = out.placements
    assert [round(speed, 2) for _, speed, _ in voice.calls] == [1.1]
    assert p.speed == 1.0 and 1.0 < p.stretch < 1.05 and p.end_s <= 2.95
