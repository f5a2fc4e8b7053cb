"""The voice's pace: measured from its own output (silence trimmed), once per server, model,
voice and speed (cached), used for the word budgets; a given --words-per-second wins; `plan`
stays offline and says which pace it assumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _media import make_video, speech_pcm
from conftest import run_cli

from vnarrate.narration.pace import (
    CALIBRATION_TEXT,
    CALIBRATION_WORDS,
    PaceOptions,
    find_pace,
    measure_pace,
    pace_key,
)
from vnarrate.narration.speech import SpeechOptions, Synthesis
from vnarrate.server.cache import ResponseCache
from vnarrate.session import stage_options
from vnarrate.settings import load_settings

VOICE = SpeechOptions(model="tts-1", voice="alloy")


class Voice:
    """Speaks at `wps` words a second at 22,050 Hz, with 0.3 s of silence around the words."""

    name = "speech"

    def __init__(self, wps: float) -> None:
        self.wps = wps
        self.calls = 0

    def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
        self.calls += 1
        silence = b"\0\0" * round(0.3 * 22050)
        words = speech_pcm(len(text.split()) / self.wps, sample_rate=22050)
        return Synthesis(pcm=silence + words + silence, sample_rate=22050, characters=len(text))


def options(override: float | None = None, known: float | None = None) -> PaceOptions:
    key = pace_key({"base_url": None, "backend": "auto"}, VOICE, provider="openai")
    return PaceOptions(override=override, default=2.5, key=key, known=known)


def test_the_measure_is_the_voices_own_words_per_second() -> None:
    wps, characters = measure_pace(Voice(3.5), VOICE)
    assert wps == pytest.approx(3.5, rel=0.02)  # the silence around the words is not counted
    assert characters == len(CALIBRATION_TEXT) and CALIBRATION_WORDS == 18


def test_measured_once_then_remembered(tmp_path: Path) -> None:
    cache, voice = ResponseCache(tmp_path), Voice(3.5)
    first = find_pace(options(), measure=True, backend=voice, voice=VOICE, cache=cache)
    assert first.words_per_second == pytest.approx(3.5, rel=0.02) and "now" in first.source
    assert first.characters == len(CALIBRATION_TEXT)
    again = find_pace(options(), measure=True, backend=voice, voice=VOICE, cache=cache)
    assert voice.calls == 1 and again.characters == 0 and "earlier" in again.source
    assert again.words_per_second == first.words_per_second


def test_a_given_pace_wins_and_nothing_is_measured_offline(tmp_path: Path) -> None:
    voice = Voice(3.5)
    given = find_pace(options(override=2.0), measure=True, backend=voice, voice=VOICE)
    assert (given.words_per_second, given.source, voice.calls) == (2.0, "--words-per-second", 0)
    offline = find_pace(options(), measure=False, cache=ResponseCache(tmp_path))
    assert offline.words_per_second == 2.5 and "not been measured" in offline.source


def test_an_implausible_answer_falls_back_to_the_default(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    pace = find_pace(options(), measure=True, backend=Voice(40.0), voice=VOICE, cache=cache)
    assert pace.words_per_second == 2.5 and "not a voice reading them" in pace.source
    assert find_pace(options(), measure=False, cache=cache).words_per_second == 2.5  # not stored


def test_the_key_follows_server_model_voice_and_speed() -> None:
    base = pace_key({"base_url": "http://a/v1", "backend": "auto"}, VOICE, provider="x")
    others = [
        pace_key({"base_url": "http://b/v1", "backend": "auto"}, VOICE, provider="x"),
        pace_key({"base_url": "http://a/v1", "backend": "auto"}, VOICE.model_copy(update={"voice": "onyx"}), provider="x"),
        pace_key({"base_url": "http://a/v1", "backend": "auto"}, VOICE.model_copy(update={"speed": 1.2}), provider="x"),
        pace_key({"base_url": "http://a/v1", "backend": "auto"}, VOICE.model_copy(update={"model": "tts-1-hd"}), provider="x"),
    ]  # fmt: skip
    assert len({base, *others}) == 5


def test_plan_uses_a_measure_from_the_cache_and_says_which(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=6.0, fps=10)
    r = run_cli(["plan", video, "--task", "voiceover", "--json"])
    assert r.code == 0, r
    plan = json.loads(r.out)["plan"]
    assert any("2.5 words/s (the default" in n for n in plan["notes"])

    settings = load_settings()
    key = stage_options(settings).pace.key
    ResponseCache(settings.cache_dir or tmp_path).put_json(key, {"words_per_second": 3.5})
    r = run_cli(["plan", video, "--task", "voiceover", "--json"])
    plan2 = json.loads(r.out)["plan"]
    assert any("3.5 words/s (measured from this voice earlier)" in n for n in plan2["notes"])
    assert plan2["speech_characters"] > plan["speech_characters"]  # a faster voice says more

    r = run_cli(["plan", video, "--task", "voiceover", "--json", "--words-per-second", "2"])
    assert any("2 words/s (--words-per-second)" in n for n in json.loads(r.out)["plan"]["notes"])
