"""Speech detection (soundtrack/detect.py): where people speak, on generated audio of every layout
and on the shared dialogue clips against their ground truth.

Thresholds are the measured values (BENCHMARKS.md, "Speech detection") less a margin. With the
default rule the shared clips score speech-time recall 1.00 and F1 0.91-0.93 (the 0.2 s padding
costs precision by design); the generated dialogues here recall 0.99-1.00 with F1 0.88-0.91 and at
most 0.07 s of speech inside a gap of 1 s or more; no music, noise or tone measured gave speech.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from _media import (
    damage_audio,
    make_soundtrack,
    music_bed,
    pink_noise,
    place,
    speechlike,
)
from conftest import MEDIA, requires_media
from pydantic import ValidationError

from vnarrate.models import SpeechMap, VadOptions
from vnarrate.settings import Settings
from vnarrate.soundtrack import SoundtrackError, detect_speech, speech_gaps, speech_regions

RATE = 16000
Intervals = Sequence[tuple[float, float]]

# Three lines from two synthetic voices (low and high pitch), as the held-out clips have turns.
TRUTH = [(2.0, 4.5), (6.0, 8.0), (9.5, 11.0)]


def options(**changes: float) -> VadOptions:
    """The defaults from Settings, as the session builds them."""
    s = Settings()
    base = {
        "threshold": s.speech_threshold,
        "min_speech_s": s.speech_min_s,
        "min_silence_s": s.speech_min_silence_s,
        "pad_s": s.speech_pad_s,
    }
    return VadOptions(**(base | changes))


def dialogue(seconds: float = 12.0) -> np.ndarray:
    return place(
        seconds,
        [
            (2.0, speechlike(2.5, f0=110, seed=1)),
            (6.0, speechlike(2.0, f0=210, seed=2)),
            (9.5, speechlike(1.5, f0=130, seed=3)),
        ],
    )


def scores(found: Intervals, truth: Intervals, seconds: float) -> tuple[float, float, float]:
    """Precision, recall and F1 of speech time on a 10 ms grid."""
    grid = np.arange(round(seconds * 100)) / 100 + 0.005

    def mask(iv: Intervals) -> np.ndarray:
        m = np.zeros(grid.size, bool)
        for s, e in iv:
            m |= (grid >= s) & (grid < e)
        return m

    f, t = mask(found), mask(truth)
    tp = float((f & t).sum())
    p, r = tp / max(f.sum(), 1), tp / max(t.sum(), 1)
    return p, r, 2 * p * r / max(p + r, 1e-9)


def speech_in_gaps(result: SpeechMap, truth: Intervals, min_gap: float) -> float:
    """Seconds of true speech inside the reported gaps at least `min_gap` long (where narration
    could go)."""
    return sum(
        max(0.0, min(e, g1) - max(s, g0))
        for g0, g1 in result.gaps
        if g1 - g0 >= min_gap
        for s, e in truth
    )


# --- the rule, on probabilities --------------------------------------------------------------------


def probs_of(pattern: str) -> list[float]:
    """One window per character: '#' 0.9, '+' 0.4 (between the marks), '.' 0.05."""
    return [{"#": 0.9, "+": 0.4, ".": 0.05}[ch] for ch in pattern]


def test_regions_follow_the_hysteresis_both_ways() -> None:
    # '+' windows next to speech count (soft start, soft end); a '+' run alone does not.
    o = options(threshold=0.5, min_speech_s=0, min_silence_s=0, pad_s=0)
    got = speech_regions(probs_of("..++##++....+++.."), o, duration_s=2, hop_s=0.1)
    assert got == [(0.2, 0.8)]


def test_short_pauses_are_bridged_and_short_bursts_dropped() -> None:
    o = options(threshold=0.5, min_speech_s=0.3, min_silence_s=0.3, pad_s=0)
    got = speech_regions(probs_of("###..###....#......####"), o, duration_s=3, hop_s=0.1)
    # the 0.2 s pause is bridged; the 0.1 s burst at 1.2 s is dropped; 0.4 s pauses split
    assert got == [(0.0, 0.8), (1.9, 2.3)]


def test_padding_is_clipped_to_the_file_and_merges_regions() -> None:
    o = options(threshold=0.5, min_speech_s=0, min_silence_s=0, pad_s=0.25)
    got = speech_regions(probs_of("##....##..##"), o, duration_s=1.2, hop_s=0.1)
    assert got == [(0.0, 1.2)]  # pauses of 0.4 and 0.2 s are under twice the padding


def test_offset_moves_the_regions() -> None:
    o = options(threshold=0.5, min_speech_s=0, min_silence_s=0, pad_s=0)
    got = speech_regions(probs_of("..##"), o, duration_s=5, hop_s=0.5, offset_s=1.0)
    assert got == [(2.0, 3.0)]
    assert speech_regions([], o, duration_s=5) == []


def test_gaps_are_every_stretch_without_speech_like_the_ground_truth() -> None:
    assert speech_gaps([(2.0, 5.59), (6.69, 9.18)], 12.0) == [
        (0.0, 2.0),
        (5.59, 6.69),
        (9.18, 12.0),
    ]
    assert speech_gaps([(0.0, 3.0), (4.0, 12.0)], 12.0) == [(3.0, 4.0)]  # no lead-in, no tail
    assert speech_gaps([], 7.5) == [(0.0, 7.5)]


def test_options_have_no_defaults_of_their_own_and_are_frozen() -> None:
    with pytest.raises(ValidationError):
        VadOptions()  # type: ignore[call-arg]
    o = options()
    with pytest.raises(ValidationError):
        o.threshold = 0.9  # type: ignore[misc]
    with pytest.raises(ValidationError):
        options(threshold=1.5)


def test_settings_describe_every_soundtrack_field() -> None:
    for name in ("speech_threshold", "speech_min_s", "speech_min_silence_s", "speech_pad_s"):
        field = Settings.model_fields[name]
        assert field.description and field.default is not None


# --- generated audio ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bed",
    [
        pytest.param(None, id="clean"),
        pytest.param(lambda: music_bed(12.0, dbfs=-22.0), id="music-at-speech-loudness"),
        pytest.param(lambda: pink_noise(12.0, dbfs=-34.0), id="pink-noise-snr-12"),
    ],
)
def test_speech_at_known_times_over_a_bed(tmp_path: Path, bed: object) -> None:
    x = dialogue()
    if callable(bed):
        x = x + bed()
    clip = make_soundtrack(tmp_path / "talk.mp4", [np.stack([x, x])], rate=RATE, layout="stereo")
    result = detect_speech(clip, options())
    assert result is not None
    p, r, f1 = scores(result.regions, TRUTH, 12.0)
    assert r >= 0.95 and f1 >= 0.85, (p, r, result.regions)
    assert speech_in_gaps(result, TRUTH, 1.0) <= 0.15
    assert result.track.channels == 2 and result.track.codec == "aac"
    assert result.gaps == speech_gaps(result.regions, result.duration_s)
    assert result.speech_s == pytest.approx(sum(e - s for s, e in result.regions), abs=0.01)
    assert result.detector.startswith("silero-vad") and result.warnings == []


@pytest.mark.parametrize(
    "bed",
    [
        pytest.param(lambda: music_bed(20.0, seed=3), id="music"),
        pytest.param(lambda: pink_noise(20.0, seed=4), id="pink-noise"),
        pytest.param(
            lambda: 0.08 * np.sin(2 * np.pi * 440 * np.arange(20 * RATE) / RATE), id="tone"
        ),
    ],
)
def test_music_noise_and_tones_at_speech_loudness_are_not_speech(
    tmp_path: Path, bed: object
) -> None:
    assert callable(bed)
    clip = make_soundtrack(tmp_path / "bed.mp4", [bed().astype(np.float32)], rate=RATE)
    result = detect_speech(clip, options())
    assert result is not None
    assert result.speech_s <= 0.3, result.regions
    assert result.gaps and result.gaps[0][0] == 0.0


def test_a_video_without_audio_gives_none(video: Path) -> None:
    assert detect_speech(video, options()) is None


def test_opus_51_with_speech_in_the_centre(tmp_path: Path) -> None:
    speech, bed = dialogue(), music_bed(12.0, dbfs=-28.0)
    silent = np.zeros_like(speech)
    channels = np.stack([bed, bed, speech, silent, 0.5 * bed, 0.5 * bed])
    clip = make_soundtrack(
        tmp_path / "surround.mp4", [channels], rate=RATE, layout="5.1", codec="libopus"
    )
    result = detect_speech(clip, options())
    assert result is not None
    assert (result.track.codec, result.track.channels, result.track.layout) == ("opus", 6, "5.1")
    assert scores(result.regions, TRUTH, 12.0)[1] >= 0.95
    assert speech_in_gaps(result, TRUTH, 1.0) <= 0.1


def test_8khz_aac_mono(tmp_path: Path) -> None:
    clip = make_soundtrack(tmp_path / "phone.mp4", [dialogue()[::2]], rate=8000)
    result = detect_speech(clip, options())
    assert result is not None and result.track.sample_rate == 8000
    assert scores(result.regions, TRUTH, 12.0)[2] >= 0.85


def test_the_default_track_is_used_when_there_are_several(tmp_path: Path) -> None:
    music, speech = music_bed(12.0), dialogue()
    clip = make_soundtrack(tmp_path / "two.mkv", [music, speech], rate=RATE, default=1)
    result = detect_speech(clip, options())
    assert result is not None and result.track.index == 2  # stream 0 is the video
    assert scores(result.regions, TRUTH, 12.0)[1] >= 0.95
    first = make_soundtrack(tmp_path / "first.mkv", [music, speech], rate=RATE, default=0)
    assert detect_speech(first, options()).speech_s <= 0.3  # type: ignore[union-attr]


def test_audio_that_starts_late_keeps_its_times(tmp_path: Path) -> None:
    clip = make_soundtrack(tmp_path / "late.mp4", [dialogue()], rate=RATE, start_s=1.0)
    result = detect_speech(clip, options())
    assert result is not None
    late = [(s + 1.0, e + 1.0) for s, e in TRUTH]
    assert scores(result.regions, late, result.duration_s)[1] >= 0.95


def _adts(path: Path, x: np.ndarray, rate: int, layout: str) -> bytes:
    """Raw AAC in ADTS frames (a .aac file): such files can simply be concatenated."""
    return make_soundtrack(path, [x], rate=rate, layout=layout, video=False).read_bytes()


def test_a_stream_that_changes_layout_and_rate_midway(tmp_path: Path) -> None:
    # Broadcast streams (ADTS, MPEG-TS) may switch channels or rate: mono 16 kHz, then stereo,
    # then mono 8 kHz, each 12 s with the same three lines.
    x = dialogue()
    clip = tmp_path / "switching.aac"
    clip.write_bytes(
        _adts(tmp_path / "a.aac", x, RATE, "mono")
        + _adts(tmp_path / "b.aac", np.stack([x, x]), RATE, "stereo")
        + _adts(tmp_path / "c.aac", x[::2], 8000, "mono")
    )
    result = detect_speech(clip, options())
    assert result is not None
    truth = [(s + k * 12.0, e + k * 12.0) for k in range(3) for s, e in TRUTH]
    assert scores(result.regions, truth, 36.0)[1] >= 0.95, result.regions


def test_an_undecodable_track_raises_soundtrack_error(tmp_path: Path) -> None:
    good = make_soundtrack(tmp_path / "good.mp4", [dialogue()], rate=RATE)
    broken = damage_audio(good, tmp_path / "broken.mp4")
    with pytest.raises(SoundtrackError, match="could not be decoded") as err:
        detect_speech(broken, options())
    assert err.value.exit_code == 4  # an InputError if a caller lets it through


def test_some_damaged_packets_give_a_warning_and_keep_the_times(tmp_path: Path) -> None:
    good = make_soundtrack(tmp_path / "good.mp4", [dialogue()], rate=RATE)
    damaged = damage_audio(good, tmp_path / "damaged.mp4", every=7)
    result = detect_speech(damaged, options())
    assert result is not None
    assert any("damaged audio packet" in w for w in result.warnings)
    assert scores(result.regions, TRUTH, 12.0)[2] >= 0.85


def test_an_unreadable_file_raises_soundtrack_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SoundtrackError):
        detect_speech(junk, options())


def test_no_heavy_import_at_module_level() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vnarrate.soundtrack\n"
        "print(sorted({'numpy', 'av', 'onnxruntime'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the shared clips ------------------------------------------------------------------------------


def _truth(name: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]], float]:
    meta = json.loads((MEDIA / f"{name}.json").read_text())
    speech = [(float(s["start"]), float(s["end"])) for s in meta["speech"]]
    return speech, [(float(a), float(b)) for a, b in meta["gaps"]], float(meta["duration"])


@requires_media
@pytest.mark.media
@pytest.mark.parametrize("name", ["dialogue_bunny", "dialogue_nasa"])
def test_dialogue_clips_against_their_ground_truth(name: str) -> None:
    speech, gaps, duration = _truth(name)
    result = detect_speech(MEDIA / f"{name}.mp4", options())
    assert result is not None
    assert result.duration_s == pytest.approx(duration, abs=0.05)
    p, r, f1 = scores(result.regions, speech, duration)
    assert r >= 0.99 and f1 >= 0.88, (p, r, f1, result.regions)
    assert speech_in_gaps(result, speech, 0.5) == 0.0
    # every true gap long enough for narration is found, shrunk by at most the padding and the
    # model's reaction time at each end
    for g0, g1 in gaps:
        if g1 - g0 >= 2.0:
            found = max(min(g1, b) - max(g0, a) for a, b in result.gaps)
            assert found >= (g1 - g0) - 0.8, (g0, g1, result.gaps)


@requires_media
@pytest.mark.media
@pytest.mark.parametrize("name", ["big_buck_bunny_0_30.webm", "bbb_vertical.mp4"])
def test_the_big_buck_bunny_score_is_not_speech(name: str) -> None:
    result = detect_speech(MEDIA / name, options())
    assert result is not None
    assert result.speech_s <= 0.3, result.regions
