"""--verify's stage: the narration as placed, heard back line by line.

The onset is measured on generated speech placed at known times (with and without a server's hiss
before the words); the verdict on a track whose lines a stand-in recogniser hears as a faithful, a
word-dropping, a late and a silent speech server would have them heard; the clips sent are real
FLAC of each line's span; the binomial rule on the cases the module docstring names; the plan's
price. The HTTP round trip (every request validated against the OpenAPI schema) is in
test_voiceover.py."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import replace

import av
import numpy as np
import pytest
from _media import at_dbfs, place, speechlike

from vnarrate.models import Placement, Plan, SpokenLine
from vnarrate.narration.verify import (
    MARGIN_S,
    VerifyOptions,
    line_spans,
    narration_clips,
    onset,
    plan_verify,
    summary,
    too_many_errors,
    verify_narration,
    verify_warnings,
)
from vnarrate.server.prices import PriceBasis, load_prices, prices_for
from vnarrate.soundtrack.clips import SpeechClip
from vnarrate.soundtrack.transcribe import TranscribeOptions, Transcript

RATE = 24000
LINES = (
    "A door opens on a bright hallway and a woman walks in.",
    "She sets a heavy box down on the kitchen table.",
    "Outside, the rain has stopped and the street is quiet.",
)
STARTS = (0.5, 4.0, 7.5)
SECONDS = 2.5


def _stt(model: str = "gpt-transcribe", *, pricing: PriceBasis = "table") -> TranscribeOptions:
    return TranscribeOptions(
        mode="auto", model=model, provider="openai", base_url=None, pricing=pricing,
        prices=prices_for(load_prices(None), pricing),
    )  # fmt: skip


def _options(threshold: float = 0.15, tolerance: float = 0.2) -> VerifyOptions:
    return VerifyOptions(
        stt=_stt(),
        wer_threshold=threshold,
        onset_tolerance_s=tolerance,
        strict=False,
    )


def _placements(starts: Sequence[float] = STARTS) -> list[Placement]:
    return [
        Placement(
            segment=i,
            text=text,
            start_s=start,
            end_s=start + SECONDS,
            slot_start_s=start,
            slot_end_s=start + 3.0,
        )
        for i, (text, start) in enumerate(zip(LINES, starts, strict=True))
    ]


def _track(starts: Sequence[float], *, lead: float = 0.0, seconds: float = 11.0) -> np.ndarray:
    """Speech of SECONDS at each start (after `lead` s of hiss at -45 dBFS: a server's)."""
    parts = []
    for k, start in enumerate(starts):
        if lead:
            hiss = np.random.default_rng(k).standard_normal(round(lead * RATE))
            parts.append((start, at_dbfs(hiss, -45.0)))
        parts.append((start + lead, speechlike(SECONDS - lead, seed=k, rate=RATE)))
    x = place(seconds, parts, rate=RATE)
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


class Recogniser:
    """Hears in clip i what `said[i]` says, and records what it was sent."""

    def __init__(self, said: Sequence[str]) -> None:
        self.said = list(said)
        self.clips: list[SpeechClip] = []

    def __call__(
        self, clips: Iterator[SpeechClip], regions: Sequence[tuple[float, float]]
    ) -> Transcript:
        self.clips = list(clips)
        lines = [
            SpokenLine(start_s=a, end_s=b, text=self.said[i]) for i, (a, b) in enumerate(regions)
        ]
        seconds = round(sum(c.seconds for c in self.clips), 3)
        return Transcript(lines=lines, requests=len(self.clips), seconds=seconds)


# --- onset: where speech really starts ---------------------------------------------------------


@pytest.mark.parametrize("lead", [0.0, 0.6])
def test_onset_is_where_the_words_start_not_a_servers_hiss(lead: float) -> None:
    track = _track(STARTS, lead=lead)
    for start, (lo, hi) in zip(STARTS, line_spans(_placements(), len(track) / RATE), strict=True):
        found = onset(track, RATE, lo, hi)
        assert found is not None
        assert found == pytest.approx(start + lead, abs=0.03)


def test_silence_has_no_onset() -> None:
    quiet = np.zeros(RATE * 3, np.int16)
    assert onset(quiet, RATE, 0.0, 3.0) is None
    hiss = (at_dbfs(np.random.default_rng(0).standard_normal(RATE * 3), -60.0) * 32767).astype(
        np.int16
    )
    assert onset(hiss, RATE, 0.0, 3.0) is None  # under -50 dBFS: silence, as the trim has it


def test_a_click_is_not_an_onset() -> None:
    x = place(4.0, [(0.5, np.full(48, 0.5, np.float32)), (1.5, speechlike(2.0, rate=RATE))],
              rate=RATE)  # fmt: skip
    found = onset((x * 32767).astype(np.int16), RATE, 0.0, 4.0)
    assert found == pytest.approx(1.5, abs=0.03)


# --- what is sent ------------------------------------------------------------------------------


def test_each_line_is_sent_with_its_margins_never_its_neighbours() -> None:
    close = _placements((0.1, 2.7, 7.5))  # 0.1 s to the track's start, 0.1 s between the first two
    spans = line_spans(close, 10.2)
    assert spans[0] == (0.0, pytest.approx(2.65))
    assert spans[1] == (pytest.approx(2.65), pytest.approx(2.7 + SECONDS + MARGIN_S))
    assert spans[2] == (pytest.approx(7.5 - MARGIN_S), pytest.approx(10.2))  # the track's end


def test_clips_are_16_khz_flac_of_each_span() -> None:
    track = _track(STARTS)
    spans = line_spans(_placements(), len(track) / RATE)
    clips = list(narration_clips(track, RATE, spans))
    assert [c.region for c in clips] == [0, 1, 2]
    for clip, (lo, hi) in zip(clips, spans, strict=True):
        assert (clip.start_s, clip.end_s) == (lo, hi)
        with av.open(io.BytesIO(clip.audio)) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.name == "flac" and stream.rate == 16000
            n = sum(f.samples for f in container.decode(stream))
        assert n / 16000 == pytest.approx(hi - lo, abs=0.01)
    # The same narration gives the same bytes: a rerun is answered by the cache.
    assert [c.audio for c in narration_clips(track, RATE, spans)] == [c.audio for c in clips]


# --- the verdict ---------------------------------------------------------------------------------


def test_a_faithful_server_passes() -> None:
    track = _track(STARTS)
    heard = Recogniser([line.lower().replace(",", "") for line in LINES])
    found = verify_narration(track, RATE, _placements(), _options(), heard)
    assert found.ok and found.off == 0 and found.problems == []
    assert found.wer == 0.0 and found.words == found.heard_words == 32
    assert [line.segment for line in found.lines] == [1, 2, 3]
    errors = [line.onset_error_s for line in found.lines]
    assert all(e is not None and abs(e) <= 0.03 for e in errors), errors
    assert found.requests == 3 and found.seconds == pytest.approx(3 * (SECONDS + 2 * MARGIN_S))
    assert found.cost_usd is not None and found.cost_usd > 0
    assert verify_warnings(found) == []
    assert summary(found).startswith("all lines as written: word error rate 0%")


def test_a_server_that_drops_words_is_caught() -> None:
    track = _track(STARTS)
    dropped = [" ".join(w for i, w in enumerate(line.split()) if i % 2 == 0) for line in LINES]
    found = verify_narration(track, RATE, _placements(), _options(), Recogniser(dropped))
    assert not found.ok and found.off == 3
    assert found.problems == ["lines", "wer", "missing"]
    assert found.heard_words < found.words * 0.6
    assert all(line.problems == ["words"] and line.wer >= 0.45 for line in found.lines)
    warnings = verify_warnings(found)
    assert len(warnings) == 4
    assert "segment 1 (0.5–3.0 s) heard with 6 of 12 words wrong" in warnings[0]
    assert warnings[-1].startswith("verify: 3 of 3 line(s) off; too many word errors")


def test_a_word_dropped_here_and_there_is_caught_over_all_lines() -> None:
    """Two words of each line: no single line is conclusive; all of them together are."""
    track = _track(STARTS)
    dropped = [line.rsplit(" ", 2)[0] for line in LINES]
    found = verify_narration(track, RATE, _placements(), _options(), Recogniser(dropped))
    assert found.off == 0 and all(line.ok for line in found.lines)
    assert not found.ok and found.problems == ["missing"]


def test_a_weak_recogniser_is_allowed_its_errors_by_the_threshold() -> None:
    """One word in three misheard (not dropped) everywhere: off at 0.15, fine at 0.4."""
    track = _track(STARTS)
    misheard = [
        " ".join("the" if i % 3 == 0 else w for i, w in enumerate(line.split())) for line in LINES
    ]
    strict = verify_narration(track, RATE, _placements(), _options(0.15), Recogniser(misheard))
    assert not strict.ok and "wer" in strict.problems and "missing" not in strict.problems
    lax = verify_narration(track, RATE, _placements(), _options(0.4), Recogniser(misheard))
    assert lax.ok


def test_late_speech_and_silence_are_caught() -> None:
    track = _track(STARTS[:2], lead=0.6)  # the third line's place is silent
    found = verify_narration(track, RATE, _placements(), _options(), Recogniser([*LINES[:2], ""]))
    first, second, third = found.lines
    assert first.problems == second.problems == ["onset"]
    assert first.onset_error_s == pytest.approx(0.6, abs=0.03)
    assert third.problems == ["silent", "words"] and third.onset_s is None
    assert found.max_onset_error_s == pytest.approx(0.6, abs=0.03)
    warnings = verify_warnings(found)
    assert "its speech starts 0.6" in warnings[0] and "late (tolerance 0.2 s)" in warnings[0]
    assert "no speech in its place on the track" in warnings[2]


@pytest.mark.parametrize(
    ("errors", "words", "rate", "off"),
    [
        (1, 3, 0.15, False),  # one misheard word in a short line: noise
        (2, 3, 0.15, False),
        (3, 3, 0.15, True),
        (3, 9, 0.15, False),
        (4, 9, 0.15, True),
        (1, 3, 0.0, True),  # no error allowed
        (5, 3, 0.15, True),  # more errors than words (insertions)
        (3, 3, 1.0, False),
        (0, 0, 0.15, False),
        (1_520, 10_000, 0.15, False),  # long runs: no overflow; near the rate is the rate
        (1_650, 10_000, 0.15, True),
    ],
)
def test_too_many_errors(errors: int, words: int, rate: float, off: bool) -> None:
    assert too_many_errors(errors, words, rate) is off


# --- the plan --------------------------------------------------------------------------------------


def test_the_plan_prices_hearing_the_narration_back() -> None:
    plan = Plan(model="m", speech_seconds=20.0, cost_usd=0.01, max_cost_usd=0.02)
    assert plan_verify(plan, None, 5) is plan
    priced = plan_verify(plan, _options(), 4.2)
    assert priced.verify_model == "gpt-transcribe" and priced.verify_requests == 5
    assert priced.verify_seconds == pytest.approx(20.0 + 5 * 2 * MARGIN_S)
    assert priced.verify_cost_usd == pytest.approx(0.0045 * priced.verify_seconds / 60)
    assert priced.cost_usd == pytest.approx(0.01 + priced.verify_cost_usd)
    assert priced.max_cost_usd == pytest.approx(0.02 + priced.verify_cost_usd)
    blind = plan_verify(plan, replace(_options(), stt=_stt("my-recogniser")), 3)
    assert blind.verify_cost_usd is None and blind.cost_usd is None
    assert "--verify's cost unknown" in blind.notes[-1]
    local = replace(_options(), stt=_stt("my-recogniser", pricing="free"))
    assert plan_verify(plan, local, 3).verify_cost_usd == 0.0
    # A server that is not OpenAI and not a known local kind: OpenAI's price is not its price.
    other = plan_verify(plan, replace(_options(), stt=_stt(pricing="unknown")), 3)
    assert other.verify_cost_usd is None and other.cost_usd is None
    assert other.stt_pricing == "unknown" and "not OpenAI" in other.notes[-1]
