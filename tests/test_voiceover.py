"""`vnarrate voiceover` end to end, in-process, against a mocked API: the chat route writes a timed
script, the speech route answers with real PCM of known length, and what lands on disk is measured
(the mp3's length and speech onsets, the subtitles parsed back, the manifest, the muxed video's
streams), as are the requests sent (speed, voice, instructions) and the ones not sent (cache,
refusals, --script, --dry-run)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import wave
from pathlib import Path
from typing import Any

import av
import httpx2
import numpy as np
import openai
import pytest
import respx
from _media import (
    at_dbfs,
    decode_audio,
    make_video,
    onsets,
    parse_srt,
    parse_vtt,
    speech_pcm,
    tone_level,
    video_packets,
)
from conftest import (
    TEST_KEY,
    CliResult,
    chat_response,
    multipart_fields,
    run_cli,
    transcription_response,
)

from vnarrate.narration.pace import CALIBRATION_TEXT, CALIBRATION_WORDS

SR = 24000
DURATION = 6.0
STARTS = (0.5, 2.5, 4.5)
LINES = ("A red field.", "Green now, and long.", "Blue at last.")  # within their word budgets
SCRIPT = {
    "title": "Three colours",
    "language": "en",
    "segments": [
        {"start_s": 0.5, "end_s": 2.3, "text": LINES[0]},
        {"start_s": 2.5, "end_s": 4.3, "text": LINES[1]},
        {"start_s": 4.5, "end_s": 6.0, "text": LINES[2]},
    ],
}
# Seconds of speech each line takes at speed 1.0. The second is longer than its slot
# (2.5 s to 4.5 s, less the 0.15 s pause before the next line = 1.85 s): it must be spoken again.
SPOKEN = {LINES[0]: 1.0, LINES[1]: 2.2, LINES[2]: 1.0}
OVERLONG = "Far too much said."  # within its word budget, yet slow to speak
SPOKEN[OVERLONG] = 4.0  # into 1.85 s: even at speed 1.25 and stretched 1.25 it overruns
LAST_WORDS = "Slow final words."
SPOKEN[LAST_WORDS] = 3.0  # into the last 1.5 s: fitted, it still runs past the video
# The voice's pace is measured once (then cached): 2.5 words a second.
SPOKEN[CALIBRATION_TEXT] = CALIBRATION_WORDS / 2.5
SAID = "Hold the door, please."  # what every stretch of speech says (the transcription route)
ONSET_TOLERANCE_S = 0.06
LENGTH_TOLERANCE_S = 0.05


class FakeApi:
    """Routes on the mocked api.openai.com: the script (chat), real PCM whose length follows the
    text and the speed asked for (speech), what people say (transcriptions: SAID each time) and
    the speech model check (GET /models/{id})."""

    def __init__(self, router: respx.Router, script: dict[str, Any] = SCRIPT) -> None:
        self.router = router
        self.chat = router.post("/chat/completions").respond(200, json=chat_response(script))
        self.speech = router.post("/audio/speech").mock(side_effect=self._speak)
        self.models = router.get(path__regex=r"/models/[^/]+$").mock(side_effect=self._model)
        said = transcription_response(SAID)
        self.heard = router.post("/audio/transcriptions").respond(200, json=said)

    @staticmethod
    def _speak(request: httpx2.Request) -> respx.MockResponse:
        body = json.loads(request.content)
        seconds = SPOKEN.get(body["input"], 0.8) / body.get("speed", 1.0)
        return respx.MockResponse(200, content=speech_pcm(seconds))

    @staticmethod
    def _model(request: httpx2.Request) -> respx.MockResponse:
        name = request.url.path.rsplit("/", 1)[-1]
        body = {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
        return respx.MockResponse(200, json=body)

    def speech_bodies(self) -> list[dict[str, Any]]:
        """The narration's speech requests (not the one measuring the voice's pace)."""
        bodies = [json.loads(call.request.content) for call in self.speech.calls]
        return [b for b in bodies if b["input"] != CALIBRATION_TEXT]

    def calibrations(self) -> list[dict[str, Any]]:
        bodies = [json.loads(call.request.content) for call in self.speech.calls]
        return [b for b in bodies if b["input"] == CALIBRATION_TEXT]

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(call.request.content) for call in self.chat.calls]

    @property
    def paid_calls(self) -> int:
        """Requests that cost money (chat and speech)."""
        return self.chat.call_count + self.speech.call_count


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    # These tests mock /audio/speech; OpenAI's default speech is now the Realtime API.
    monkeypatch.setenv("VNARRATE_TTS_BACKEND", "speech")
    return TEST_KEY


@pytest.fixture
def fake(api: respx.Router, key: str) -> FakeApi:
    return FakeApi(api)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """6 s, 10 fps, three shots (cuts at 2.5 and 4.5 s), no audio, named clip.mp4."""
    folder = tmp_path / "videos"
    folder.mkdir()
    return make_video(folder / "clip.mp4", seconds=DURATION, fps=10, cuts_s=(2.5, 4.5))


@pytest.fixture
def clip_with_audio(tmp_path: Path) -> Path:
    """The same, with a 440 Hz tone (amplitude 0.2) as its AAC audio track."""
    folder = tmp_path / "videos"
    folder.mkdir(exist_ok=True)
    return make_video(folder / "noisy.mp4", seconds=DURATION, fps=10, cuts_s=(2.5, 4.5), audio=True)


def voiceover(video: Path, *args: object) -> CliResult:
    return run_cli(["voiceover", video, "--frames", "3", *args])


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def measured(path: Path, starts: tuple[float, ...], length: float, rate: int = SR) -> list[float]:
    """Decode `path`, check its length and that speech starts at `starts`; the onsets found."""
    x = decode_audio(path, rate)
    assert abs(len(x) / rate - length) <= LENGTH_TOLERANCE_S, (len(x) / rate, length)
    found = onsets(x, rate)
    assert len(found) == len(starts), found
    errors = [abs(a - b) for a, b in zip(found, starts, strict=True)]
    assert max(errors) <= ONSET_TOLERANCE_S, (found, starts)
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the default run ---------------------------------------------------------------------------


def test_voiceover_writes_timed_narration_subtitles_script_and_manifest(
    fake: FakeApi, clip: Path
) -> None:
    cwd = Path.cwd()
    r = voiceover(clip, "--voice", "onyx", "--instructions", "Warm and unhurried.")
    assert r.code == 0, r
    assert r.out == ""  # no --json: the files are the product, the summary goes to stderr
    assert "clip.narration.mp3" in r.err
    assert listing(cwd) == [
        "clip.narration.mp3",
        "clip.script.json",
        "clip.srt",
        "clip.timeline.png",
        "clip.vnarrate.json",
        "clip.vtt",
    ]

    # The mp3: as long as the video, each line starting at its segment's time.
    found = measured(cwd / "clip.narration.mp3", STARTS, DURATION)
    with av.open(str(cwd / "clip.narration.mp3")) as c:
        assert c.format.name == "mp3" and c.streams.audio[0].codec_context.sample_rate == SR

    # Speech: one request per line, then the overlong line again, faster.
    bodies = fake.speech_bodies()
    assert len(bodies) == 4
    assert sorted(b["input"] for b in bodies) == sorted([*LINES, LINES[1]])
    for b in bodies:
        assert b["model"] == "gpt-4o-mini-tts" and b["voice"] == "onyx"
        assert b["response_format"] == "wav"
        assert b["instructions"] == "Warm and unhurried."
    speeds = [b["speed"] for b in bodies if b["input"] == LINES[1]]
    assert speeds[0] == 1.0 and 1.0 < speeds[1] <= 1.25, speeds
    assert all(b["speed"] == 1.0 for b in bodies if b["input"] != LINES[1])
    fitted = SPOKEN[LINES[1]] / speeds[1]  # seconds the faster take lasts
    assert STARTS[1] + fitted <= STARTS[2] - 0.15

    # The chat request: structured output, frames with timestamps.
    (chat,) = fake.chat_bodies()
    assert chat["response_format"]["type"] == "json_schema"
    assert chat["model"] == "gpt-5.4-mini" and "max_completion_tokens" in chat
    images = [p for p in chat["messages"][1]["content"] if p["type"] == "image_url"]
    assert len(images) == 3

    # Subtitles: the real, post-fit timings, matching the onsets measured in the audio.
    srt = parse_srt((cwd / "clip.srt").read_text())
    vtt = parse_vtt((cwd / "clip.vtt").read_text())
    ends = [STARTS[0] + 1.0, STARTS[1] + fitted, STARTS[2] + 1.0]
    for cues in (srt, vtt):
        assert [" ".join(lines) for _, _, lines in cues] == list(LINES)
        assert [c[0] for c in cues] == pytest.approx(list(STARTS), abs=0.001)
        assert [c[0] for c in cues] == pytest.approx(found, abs=ONSET_TOLERANCE_S)
        assert [c[1] for c in cues] == pytest.approx(ends, abs=0.002)

    # The script as spoken.
    assert json.loads((cwd / "clip.script.json").read_text()) == SCRIPT

    # The manifest: inputs, settings without secrets, models, usage, outputs with checksums.
    text = (cwd / "clip.vnarrate.json").read_text()
    assert TEST_KEY not in text
    doc = json.loads(text)
    assert doc["command"] == "voiceover" and doc["status"] == "complete"
    assert doc["input"] == str(clip)
    settings = doc["settings"]
    assert "api_key" not in settings and "tts_api_key" not in settings
    assert settings["model"] == "gpt-5.4-mini" and settings["tts_model"] == "auto"
    assert settings["voice"] == "onyx" and settings["tts_instructions"] == "Warm and unhurried."
    assert "gpt-4o-mini-tts" in doc["speech_backend"]
    assert doc["usage"]["requests"] == 1 and doc["usage"]["prompt_tokens"] == 1000
    # The voice's pace, measured once with the same voice and instructions, is billed too.
    (calibration,) = fake.calibrations()
    assert calibration["voice"] == "onyx" and calibration["instructions"] == "Warm and unhurried."
    assert doc["words_per_second"] == pytest.approx(2.5, abs=0.01)
    assert "measured" in doc["pace_source"]
    assert doc["speech_characters"] == sum(map(len, LINES)) + len(LINES[1]) + len(CALIBRATION_TEXT)
    assert doc["duration_s"] == pytest.approx(DURATION, abs=0.05)
    assert doc["audio_s"] == pytest.approx(DURATION, abs=0.05)
    assert isinstance(doc["cost_usd"], float) and doc["cost_usd"] > 0
    assert [p["speed"] for p in doc["placements"]] == [1.0, speeds[1], 1.0]
    outputs = {o["kind"]: o for o in doc["outputs"]}
    assert set(outputs) == {"audio", "srt", "vtt", "script", "timeline"}
    # Nobody speaks in this video: every line is in a gap, nothing over speech.
    assert (doc["lines"], doc["placed"], doc["placed_in_gaps"]) == (3, 3, 3)
    assert (doc["sped_up"], doc["cut"], doc["dropped"], doc["dropped_segments"]) == (1, 0, 0, [])
    assert doc["seconds_over_speech"] == 0.0 and doc["over_speech"] == "avoid"
    for o in outputs.values():
        path = Path(o["path"])
        assert path.resolve().parent == cwd.resolve()
        assert o["sha256"] == sha256(path) and o["bytes"] == path.stat().st_size


def test_out_dir_holds_every_output(fake: FakeApi, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "nested"
    r = voiceover(clip, "--out-dir", out)
    assert r.code == 0, r
    assert listing(Path.cwd()) == []
    assert listing(out) == [
        "clip.narration.mp3",
        "clip.script.json",
        "clip.srt",
        "clip.timeline.png",
        "clip.vnarrate.json",
        "clip.vtt",
    ]
    measured(out / "clip.narration.mp3", STARTS, DURATION)
    doc = json.loads((out / "clip.vnarrate.json").read_text())
    assert all(Path(o["path"]).parent == out for o in doc["outputs"])


# --- speech options ------------------------------------------------------------------------------


def test_tts_1_gets_no_instructions(fake: FakeApi, clip: Path) -> None:
    r = voiceover(
        clip,
        "--tts-model",
        "tts-1",
        "--tts-backend",
        "auto",
        "--instructions",
        "Warm.",
        "--voice",
        "echo",
    )
    assert r.code == 0, r
    bodies = fake.speech_bodies()
    assert len(bodies) == 4
    for b in bodies:
        assert b["model"] == "tts-1" and b["voice"] == "echo" and b["response_format"] == "wav"
        assert "instructions" not in b
    assert [c.request.url.path for c in fake.models.calls] == ["/v1/models/tts-1"]


def test_no_instructions_unless_given(fake: FakeApi, clip: Path) -> None:
    assert voiceover(clip).code == 0
    bodies = fake.speech_bodies()
    assert all("instructions" not in b and b["voice"] == "alloy" for b in bodies)


def test_a_line_that_cannot_fit_pushes_the_next_one_later_and_says_so(
    api: respx.Router, key: str, clip: Path
) -> None:
    script = json.loads(json.dumps(SCRIPT))
    script["segments"][1]["text"] = OVERLONG
    fake = FakeApi(api, script)
    r = voiceover(clip)
    assert r.code == 0, r
    speeds = [b["speed"] for b in fake.speech_bodies() if b["input"] == OVERLONG]
    assert speeds == [1.0, 1.25]  # spoken again as fast as allowed, then stretched
    doc = json.loads(Path("clip.vnarrate.json").read_text())
    placed = doc["placements"]
    assert placed[1]["speed"] == 1.25 and placed[1]["stretch"] == pytest.approx(1.25)
    assert placed[1]["end_s"] - placed[1]["start_s"] == pytest.approx(4.0 / 1.25 / 1.25, abs=0.02)
    pushed_to = placed[1]["end_s"] + 0.15
    assert placed[2]["start_s"] == pytest.approx(pushed_to, abs=0.001)
    assert placed[2]["pushed_s"] == pytest.approx(pushed_to - STARTS[2], abs=0.001)
    # The last line, pushed into 0.79 s, is fitted the same way and still ends with the video.
    assert [b["speed"] for b in fake.speech_bodies() if b["input"] == LINES[2]] == [1.0, 1.25]
    assert placed[2]["end_s"] <= DURATION + 0.002
    found = measured(Path("clip.narration.mp3"), (STARTS[0], STARTS[1], pushed_to), DURATION)
    cues = parse_srt(Path("clip.srt").read_text())
    assert [c[0] for c in cues] == pytest.approx(found, abs=ONSET_TOLERANCE_S)
    assert [c[1] for c in cues] == pytest.approx([p["end_s"] for p in placed], abs=0.002)
    assert f"segment 3 starts {pushed_to - STARTS[2]:.2f} s late: segment 2 before it is" in r.err
    assert [p["segment"] for p in placed] == [1, 2, 3]  # counted as the warnings count them
    assert "past the end" not in r.err


def test_a_last_line_that_cannot_fit_runs_past_the_video_uncut(
    api: respx.Router, key: str, clip: Path
) -> None:
    script = json.loads(json.dumps(SCRIPT))
    script["segments"][2]["text"] = LAST_WORDS
    FakeApi(api, script)
    r = voiceover(clip)
    assert r.code == 0, r
    last = json.loads(Path("clip.vnarrate.json").read_text())["placements"][2]
    assert last["start_s"] == STARTS[2] and last["speed"] == 1.25
    assert last["end_s"] - last["start_s"] == pytest.approx(3.0 / 1.25 / 1.25, abs=0.02)
    measured(Path("clip.narration.mp3"), STARTS, last["end_s"])  # longer than the video
    assert f"runs {last['end_s'] - DURATION:.2f} s past the end of the video" in r.err


# --- other inputs and outputs --------------------------------------------------------------------


def test_script_file_is_spoken_without_a_chat_call(
    fake: FakeApi, clip: Path, tmp_path: Path
) -> None:
    edited = {
        "title": "Edited",
        "language": "en",
        "segments": [
            {"start_s": 4.0, "end_s": 5.8, "text": "Blue at last."},  # out of order: repaired
            {"start_s": 0.3, "end_s": 1.8, "text": "A red field."},
            {"start_s": 1.9, "end_s": 3.8, "text": "Something greener."},
        ],
    }
    script_file = tmp_path / "edited.json"
    script_file.write_text(json.dumps(edited))
    r = voiceover(clip, "--script", script_file)
    assert r.code == 0, r
    assert fake.chat.call_count == 0
    assert sorted(b["input"] for b in fake.speech_bodies()) == sorted(
        s["text"] for s in edited["segments"]
    )
    measured(Path("clip.narration.mp3"), (0.3, 1.9, 4.0), DURATION)
    written = json.loads(Path("clip.script.json").read_text())
    assert [s["start_s"] for s in written["segments"]] == [0.3, 1.9, 4.0]
    assert json.loads(Path("clip.vnarrate.json").read_text())["usage"]["requests"] == 0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not valid JSON (line 1"),
        ('{"title": "t", "language": "en", "segments": [{"start_s": 1}]}', "segments.0.end_s"),
        (
            json.dumps({**SCRIPT, "segments": [{**SCRIPT["segments"][0], "start_s": 9.0}]}),
            "no segments inside the video",
        ),
    ],
    ids=["not-json", "missing-field", "all-after-the-end"],
)
def test_a_bad_script_file_is_an_input_error_before_any_call(
    fake: FakeApi, clip: Path, tmp_path: Path, content: str, words: str
) -> None:
    script_file = tmp_path / "bad.json"
    script_file.write_text(content)
    r = voiceover(clip, "--script", script_file)
    assert r.code == 4, r
    assert words in r.err and len(r.err.strip().splitlines()) == 1
    assert len(fake.router.calls) == 0
    assert listing(Path.cwd()) == []


@pytest.mark.parametrize(
    ("name", "container", "codec"),
    [("narration.wav", "wav", "pcm_s16le"), ("narration.m4a", "mov,mp4,m4a,3gp,3g2,mj2", "aac")],
)
def test_audio_format_follows_the_output_name(
    fake: FakeApi, clip: Path, name: str, container: str, codec: str
) -> None:
    r = voiceover(clip, "-o", name)
    assert r.code == 0, r
    stem = name.split(".")[0]
    assert listing(Path.cwd()) == sorted(  # every output named after -o
        [
            name,
            f"{stem}.srt",
            f"{stem}.vtt",
            f"{stem}.timeline.png",
            f"{stem}.script.json",
            f"{stem}.vnarrate.json",
        ]
    )
    with av.open(name) as c:
        assert c.format.name == container
        assert c.streams.audio[0].codec_context.name == codec
    found = measured(Path(name), STARTS, DURATION)
    cues = parse_srt(Path(f"{stem}.srt").read_text())
    assert [c[0] for c in cues] == pytest.approx(found, abs=ONSET_TOLERANCE_S)


def test_untimed_narration_is_as_long_as_the_speech(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "--untimed")
    assert r.code == 0, r
    # Back to back with 0.5 s pauses, each line at speed 1.0 (nothing is fitted).
    gap = 0.5
    starts = (0.0, 1.0 + gap, 1.0 + gap + 2.2 + gap)
    length = sum(SPOKEN[line] for line in LINES) + 2 * gap  # 5.2 s, not the video's 6 s
    found = measured(Path("clip.narration.mp3"), starts, length)
    assert [b["speed"] for b in fake.speech_bodies()] == [1.0, 1.0, 1.0]
    cues = parse_vtt(Path("clip.vtt").read_text())
    assert [c[0] for c in cues] == pytest.approx(found, abs=ONSET_TOLERANCE_S)


def test_no_subtitles(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "--no-subtitles", "--no-timeline")
    assert r.code == 0, r
    assert listing(Path.cwd()) == ["clip.narration.mp3", "clip.script.json", "clip.vnarrate.json"]
    doc = json.loads(Path("clip.vnarrate.json").read_text())
    assert {o["kind"] for o in doc["outputs"]} == {"audio", "script"}


# --- muxing --------------------------------------------------------------------------------------


def _streams(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name) for s in c.streams]


def _video_duration(path: Path) -> float:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return float(v.duration * v.time_base)


def test_mux_over_the_original_audio(fake: FakeApi, clip_with_audio: Path) -> None:
    r = voiceover(clip_with_audio, "--mux", "out.mp4")
    assert r.code == 0, r
    out = Path("out.mp4")
    assert _streams(out) == [("video", "h264"), ("audio", "aac")]
    assert video_packets(out) == video_packets(clip_with_audio)  # copied, not re-encoded
    assert _video_duration(out) == pytest.approx(_video_duration(clip_with_audio), abs=0.001)
    x = decode_audio(out, 48000)
    assert abs(len(x) / 48000 - DURATION) <= LENGTH_TOLERANCE_S
    # The narration (220 Hz) is there; the original (440 Hz) is ducked under it, ~-12 dB.
    assert tone_level(x, 48000, 220.0, 0.7, 1.3) > 0.2
    under = tone_level(x, 48000, 440.0, 0.7, 1.3)
    assert under == pytest.approx(0.2 * 10 ** (-12 / 20), rel=0.15)
    doc = json.loads(Path("noisy.vnarrate.json").read_text())
    mux_out = next(o for o in doc["outputs"] if o["kind"] == "mux")
    assert mux_out["sha256"] == sha256(out)
    measured(Path("noisy.narration.mp3"), STARTS, DURATION)


def test_mux_replace_audio(fake: FakeApi, clip_with_audio: Path) -> None:
    r = voiceover(clip_with_audio, "--mux", "out.mkv", "--replace-audio")
    assert r.code == 0, r
    out = Path("out.mkv")
    assert _streams(out) == [("video", "h264"), ("audio", "aac")]
    assert video_packets(out) == video_packets(clip_with_audio)
    x = decode_audio(out, 48000)
    assert tone_level(x, 48000, 440.0, 0.0, 0.4) < 0.005  # the original is gone
    measured(out, STARTS, DURATION, rate=48000)


def test_mux_into_a_video_without_audio(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "--mux", "out.mp4")
    assert r.code == 0, r
    out = Path("out.mp4")
    assert _streams(out) == [("video", "h264"), ("audio", "aac")]
    assert video_packets(out) == video_packets(clip)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.channels == 1
    measured(out, STARTS, DURATION, rate=48000)


def test_replace_audio_needs_mux(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "--replace-audio")
    assert r.code == 2 and "--mux" in r.err
    assert len(fake.router.calls) == 0


# --- nothing overwritten, nothing paid twice -----------------------------------------------------


@pytest.mark.parametrize("existing", ["clip.srt", "clip.vnarrate.json", "out.mp4"])
def test_existing_output_is_refused_before_anything_is_paid(
    fake: FakeApi, clip: Path, existing: str
) -> None:
    Path(existing).write_text("mine\n")
    r = voiceover(clip, "--mux", "out.mp4")
    assert r.code == 6, r
    assert existing in r.err and "--force" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert len(fake.router.calls) == 0  # not even the model check
    assert listing(Path.cwd()) == [existing]
    assert Path(existing).read_bytes() == b"mine\n"
    r = voiceover(clip, "--mux", "out.mp4", "--force")
    assert r.code == 0, r
    assert Path(existing).read_bytes() != b"mine\n"


def test_rerun_is_free_and_a_new_voice_reruns_only_speech(fake: FakeApi, clip: Path) -> None:
    assert voiceover(clip).code == 0
    assert (fake.chat.call_count, len(fake.speech_bodies()), len(fake.calibrations())) == (1, 4, 1)
    first = {p: sha256(Path(p)) for p in ("clip.narration.mp3", "clip.srt", "clip.vtt")}

    calls = len(fake.router.calls)
    r = voiceover(clip, "--force", "--json")
    assert r.code == 0, r
    assert len(fake.router.calls) == calls  # no request at all: all from the cache
    record = json.loads(r.out)
    assert record["speech_characters"] == 0 and record["usage"]["requests"] == 0
    assert record["cost_usd"] == 0.0
    assert {p: sha256(Path(p)) for p in first} == first  # the same files again

    r = voiceover(clip, "--force", "--voice", "nova")
    assert r.code == 0, r
    assert fake.chat.call_count == 1  # the script came from the cache
    new = fake.speech_bodies()[4:]
    assert len(new) == 4 and {b["voice"] for b in new} == {"nova"}
    measured(Path("clip.narration.mp3"), STARTS, DURATION)


def test_several_videos_into_an_out_dir(fake: FakeApi, clip: Path, tmp_path: Path) -> None:
    other = make_video(tmp_path / "other.mp4", seconds=DURATION, fps=10, cuts_s=(2.5, 4.5))
    r = voiceover(clip, other, "--out-dir", "out", "--json")
    assert r.code == 0, r
    assert [json.loads(line)["status"] for line in r.out.splitlines()] == ["ok", "ok"]
    names = listing(Path("out"))
    for stem in ("clip", "other"):
        assert {f"{stem}.narration.mp3", f"{stem}.srt", f"{stem}.vnarrate.json"} <= set(names)
        measured(Path("out") / f"{stem}.narration.mp3", STARTS, DURATION)
    r = voiceover(clip, other, "-o", "one.mp3")
    assert r.code == 2 and "--out-dir" in r.err


# --- machine-readable results and plans ----------------------------------------------------------


def test_json_record(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "--json")
    assert r.code == 0, r
    (line,) = r.out.splitlines()
    record = json.loads(line)
    assert record["input"] == str(clip) and record["status"] == "ok"
    assert sorted(Path(p).name for p in record["outputs"]) == [
        "clip.narration.mp3",
        "clip.script.json",
        "clip.srt",
        "clip.timeline.png",
        "clip.vnarrate.json",
        "clip.vtt",
    ]
    assert all(Path(p).is_file() for p in record["outputs"])
    assert record["duration_s"] == pytest.approx(DURATION, abs=0.05)
    assert record["audio_s"] == pytest.approx(DURATION, abs=0.05)
    assert record["speech_characters"] == sum(map(len, LINES)) + len(LINES[1]) + len(
        CALIBRATION_TEXT
    )
    assert record["usage"]["requests"] == 1
    for field in (
        "placed_in_gaps",
        "shortened",
        "sped_up",
        "cut",
        "dropped",
        "seconds_over_speech",
    ):
        assert field in record
    assert "gpt-4o-mini-tts" in record["speech_backend"]
    assert TEST_KEY not in r.out + r.err


def test_dry_run_plans_and_calls_nothing(api: respx.Router, clip: Path) -> None:
    r = voiceover(clip, "--dry-run")  # no key needed: nothing is sent
    assert r.code == 0, r
    assert "voiceover with gpt-5.4-mini" in r.out
    # OpenAI's /audio/speech models shut down on 2027-01-06: the default speaks over Realtime.
    assert "narration speech: ~" in r.out and "characters with gpt-realtime-2.1-mini" in r.out
    assert "frames: 3" in r.out
    assert len(api.calls) == 0
    assert listing(Path.cwd()) == []

    r = voiceover(clip, "--dry-run", "--json")
    assert r.code == 0, r
    plan = json.loads(r.out)["plan"]
    assert plan["task"] == "voiceover" and plan["speech_model"] == "gpt-realtime-2.1-mini"
    assert plan["speech_characters"] > 0 and len(plan["frame_times_s"]) == 3
    assert len(api.calls) == 0


# --- narration in the gaps between speech --------------------------------------------------------

# People speak at these times (seconds) in a 14 s clip: a 0.8 s turn between the first two.
TALK = ((1.0, 3.5), (4.3, 6.0), (9.0, 11.0))
GAP_LINES = ("A door opens on a bright hallway.", "Someone waves.", "The end.")
GAP_SCRIPT = {  # the model's times: the first line on speech
    "title": "Talk",
    "language": "en",
    "segments": [
        {"start_s": 3.0, "end_s": 6.0, "text": GAP_LINES[0]},
        {"start_s": 7.8, "end_s": 8.6, "text": GAP_LINES[1]},
        {"start_s": 12.0, "end_s": 14.0, "text": GAP_LINES[2]},
    ],
}
for _line in GAP_LINES:
    SPOKEN[_line] = len(_line.split()) / 2.5


@pytest.fixture
def talking(tmp_path: Path) -> Path:
    """14 s: two synthetic voices at TALK's times (a detector takes them for speech)."""
    from _media import make_soundtrack, place, speechlike

    parts = [(a, speechlike(b - a, f0=110 + 60 * n, seed=n)) for n, (a, b) in enumerate(TALK)]
    return make_soundtrack(tmp_path / "talk.mp4", [place(14.0, parts)], rate=16000)


def _answers(script: dict[str, Any], shorter: dict[str, str]) -> Any:
    """The chat route: the script, or the shortening request's answer (`shorter`: old -> new)."""

    def answer(request: httpx2.Request) -> respx.MockResponse:
        body = json.loads(request.content)
        if body["response_format"]["json_schema"]["name"] != "ShortenedLines":
            return respx.MockResponse(200, json=chat_response(script))
        asked = body["messages"][1]["content"]
        lines = [{"id": int(m.group(1)), "text": shorter[m.group(2)]}
                 for m in re.finditer(r"^(\d+)\. \(\d+ words max\) (.*)$", asked, re.M)
                 if m.group(2) in shorter]  # fmt: skip
        return respx.MockResponse(200, json=chat_response({"lines": lines}))

    return answer


def _overlap(a: float, b: float, spans: tuple[tuple[float, float], ...]) -> float:
    return sum(max(0.0, min(b, y) - max(a, x)) for x, y in spans)


def test_narration_goes_only_in_the_gaps_between_speech(api: respx.Router, key: str,
                                                        talking: Path) -> None:  # fmt: skip
    fake = FakeApi(api, GAP_SCRIPT)
    SPOKEN["A door opens."] = 3 / 2.5
    fake.chat.mock(side_effect=_answers(GAP_SCRIPT, {GAP_LINES[0]: "A door opens."}))
    r = voiceover(talking, "--json")
    assert r.code == 0, r
    record = json.loads(r.out)

    # The prompt: the dialogue between the slots, and no slot over speech.
    chat, shorten = fake.chat_bodies()
    prompt = "\n".join(p["text"] for p in chat["messages"][1]["content"] if p["type"] == "text")
    assert "Narrate only inside the slots" in prompt and "someone says" in prompt
    assert fake.heard.call_count == 3 and SAID in prompt  # what they say, for the script
    slots = [tuple(float(x) for x in re.findall(r"0:(\d+\.\d)", line)[:2])
             for line in prompt.splitlines() if "SLOT" in line]  # fmt: skip
    assert slots and all(_overlap(a, b, TALK) == 0 for a, b in slots)

    # The line moved off speech into a gap shared with the next got less time: shortened once.
    assert GAP_LINES[0] in shorten["messages"][1]["content"] and record["shortened"] == 1
    # Every line placed where nobody speaks; the record says so.
    assert record["speech_regions"] == 3 and record["over_speech"] == "avoid"
    assert record["placed"] == record["placed_in_gaps"] == 3
    assert record["seconds_over_speech"] == 0.0 and record["dropped"] == 0
    for p in record["placements"]:
        assert _overlap(p["start_s"], p["end_s"], TALK) == 0, p
    # The track: silent wherever someone speaks.
    x = decode_audio(Path("talk.narration.mp3"))
    for a, b in TALK:
        assert float(np.abs(x[round(a * SR) : round(b * SR)]).max()) < 0.02
    for start, end, _ in parse_srt(Path("talk.srt").read_text()):
        assert _overlap(start, end, TALK) <= 0.35  # a cue may be held into speech to be read
    assert Path("talk.timeline.png").stat().st_size > 10_000


def test_over_speech_duck_lets_lines_run_over_it_and_counts_the_seconds(
    api: respx.Router, key: str, talking: Path
) -> None:
    long = "A long description that goes on and on well past the gap it began in."
    SPOKEN[long] = 8.0  # 5.1 s at most speed and stretch: into the speech after its gap
    script = {**GAP_SCRIPT, "segments": [{"start_s": 7.0, "end_s": 8.5, "text": long}]}
    fake = FakeApi(api, script)
    fake.chat.mock(side_effect=_answers(script, {}))  # shortening changes nothing
    r = voiceover(talking, "--json", "--over-speech", "duck")
    assert r.code == 0, r
    record = json.loads(r.out)
    (p,) = record["placements"]
    assert p["over_speech_s"] > 0.5 and record["seconds_over_speech"] == p["over_speech_s"]
    assert record["placed_in_gaps"] == 0 and record["over_speech"] == "duck"


# --- speech servers at other sample rates ----------------------------------------------------------


def _wav_at(rate: int) -> Any:
    """A speech route answering `wav` at `rate` (a Piper server: 22,050 Hz), ignoring `speed`."""
    import io
    import wave

    def answer(request: httpx2.Request) -> respx.MockResponse:
        body = json.loads(request.content)
        assert body["response_format"] == "wav"
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(speech_pcm(SPOKEN.get(body["input"], 0.8), sample_rate=rate))
        return respx.MockResponse(
            200, content=buf.getvalue(), headers={"content-type": "audio/wav"}
        )

    return answer


@pytest.mark.parametrize("rate", [16000, 22050, 24000])
def test_speech_at_any_rate_plays_at_its_own_pace(
    api: respx.Router, key: str, clip: Path, rate: int
) -> None:
    fake = FakeApi(api)
    fake.speech.mock(side_effect=_wav_at(rate))
    r = voiceover(clip, "--json")
    assert r.code == 0, r
    record = json.loads(r.out)
    assert record["words_per_second"] == pytest.approx(2.5, abs=0.01)  # measured at its rate
    first, second, _ = record["placements"]
    assert first["end_s"] - first["start_s"] == pytest.approx(SPOKEN[LINES[0]], abs=0.01)
    # The second line is too long for its slot; this server ignores `speed`, so it is
    # stretched, and not recorded as spoken faster.
    assert second["speed"] == 1.0 and second["stretch"] > 1.1
    assert any("ignored speed" in n for n in record["notes"])
    measured(Path("clip.narration.mp3"), STARTS, DURATION)


# --- voices: checked before paying, and kept working when `auto` falls back to Realtime --------


@pytest.mark.parametrize(
    "flags",
    [
        ("--voice", "nobody"),
        ("--voice", "onyx", "--tts-backend", "realtime"),
        ("--voice", "nova", "--tts-model", "gpt-realtime-2.1-mini", "--tts-backend", "auto"),
        ("--voice", "nobody", "--dry-run"),
        ("--voice", "fable", "--tts-backend", "realtime", "--script", "clip.script.json"),
    ],
)
def test_a_voice_the_speaking_backend_lacks_is_refused_before_any_request(
    fake: FakeApi, clip: Path, flags: tuple[str, ...]
) -> None:
    Path("clip.script.json").write_text(json.dumps(SCRIPT))
    r = voiceover(clip, *flags)
    assert r.code == 2, r
    (line,) = r.err.strip().splitlines()
    assert line.startswith("vnarrate: error:") and repr(flags[1]) in line, line
    assert len(fake.router.calls) == 0  # not even the free model check
    assert not Path("clip.narration.mp3").exists()


def test_other_servers_name_their_own_voices(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "--voice", "en_US-lessac-medium", "--tts-base-url",
                  "http://127.0.0.1:9/v1", "--dry-run")  # fmt: skip
    assert r.code == 0, r


def test_auto_falling_back_to_realtime_speaks_the_closest_voice_and_says_so(
    fake: FakeApi, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After 2027-01-06 OpenAI no longer serves the speech models: `--voice onyx` (a voice the
    Realtime API lacks) keeps working with the closest Realtime voice, a notice and a record."""
    from realtime_server import RealtimeServer

    from vnarrate.narration import backend

    def gone(request: httpx2.Request) -> respx.MockResponse:
        error = {"message": "gone", "type": "invalid_request_error", "code": "model_not_found"}
        return respx.MockResponse(404, json={"error": error})

    fake.models.mock(side_effect=gone)
    with RealtimeServer(key=TEST_KEY) as server:
        ws = openai.OpenAI(api_key=TEST_KEY, websocket_base_url=server.base_url, max_retries=0)
        real = backend.RealtimeBackend
        monkeypatch.setattr(backend, "RealtimeBackend", lambda _client, **kw: real(ws, **kw))
        r = voiceover(clip, "--voice", "onyx", "--tts-backend", "auto", "--json", "--no-cache")
    assert r.code == 0, r
    record = json.loads(r.out)
    notice = "the Realtime API has no voice 'onyx': 'cedar', the closest, speaks"
    assert record["voice"] == "cedar" and notice in record["notes"]
    assert sum(notice in line for line in r.err.splitlines()) == 1, r.err  # said once, a warning
    assert "model_not_found" in record["speech_backend"]
    manifest = json.loads(Path("clip.vnarrate.json").read_text())
    assert manifest["voice"] == "cedar" and manifest["settings"]["voice"] == "onyx"
    voices = {s.get("audio", {}).get("output", {}).get("voice") for s in server.sessions}
    assert voices == {"cedar"} and len(server.spoken) >= len(LINES)
    assert fake.speech.call_count == 0  # nothing went to the speech endpoint


# --- --subtitles narration|dialogue|both ---------------------------------------------------------


def test_subtitles_both_shows_the_dialogue_beside_the_narration(
    api: respx.Router, key: str, talking: Path
) -> None:
    fake = FakeApi(api, GAP_SCRIPT)
    fake.chat.mock(side_effect=_answers(GAP_SCRIPT, {}))
    r = voiceover(talking, "--subtitles", "both", "--json")
    assert r.code == 0, r
    srt = parse_srt(Path("talk.srt").read_text())
    said = [c for c in srt if SAID in " ".join(c[2])]
    narrated = [c for c in srt if c[2][0].startswith("<i>")]
    assert len(said) == 3 and len(narrated) == json.loads(r.out)["placed"] >= 2
    for (start, _, _), (a, _) in zip(said, TALK, strict=True):
        assert abs(start - a) < 0.5  # at the detector's times
    vtt = Path("talk.vtt").read_text()
    assert vtt.count("<v Narrator>") == len(narrated) and vtt.count("<v Speech>") == 3


def test_subtitles_dialogue_with_a_given_script_transcribes_and_prices_it(
    api: respx.Router, key: str, talking: Path
) -> None:
    fake = FakeApi(api, GAP_SCRIPT)
    Path("talk.script.json").write_text(json.dumps(GAP_SCRIPT))
    r = voiceover(talking, "--script", "talk.script.json", "--subtitles", "dialogue", "--json")
    assert r.code == 0, r
    assert fake.chat.call_count == 0 and fake.heard.call_count == 3
    texts = [" ".join(c[2]) for c in parse_srt(Path("talk.srt").read_text())]
    assert texts == [SAID] * 3  # the dialogue only: no narration line
    record = json.loads(r.out)
    assert record["cost_usd"] is not None and record["cost_usd"] > 0  # transcription counted
    # --max-cost counts the transcription before it is paid for.
    r = voiceover(talking, "--script", "talk.script.json", "--subtitles", "dialogue",
                  "--max-cost", "0.00001", "--no-cache", "--force")  # fmt: skip
    assert r.code == 3 and "max-cost" in r.err and "transcription $" in r.err, r
    assert fake.heard.call_count == 3


def test_a_given_scripts_dry_run_prices_what_max_cost_charges(
    api: respx.Router, key: str, talking: Path
) -> None:
    """The dry-run showed speech only while --max-cost charged the dialogue's transcription
    too: both now price one plan (pipeline.plan_script)."""
    fake = FakeApi(api, GAP_SCRIPT)
    Path("talk.script.json").write_text(json.dumps(GAP_SCRIPT))
    given = ("--script", "talk.script.json", "--subtitles", "both", "--verify")
    r = voiceover(talking, *given, "--dry-run", "--json")
    assert r.code == 0, r
    plan = json.loads(r.out)["plan"]
    assert plan["transcription_requests"] == 3 and plan["transcription_cost_usd"] > 0
    assert plan["speech_cost_usd"] > 0 and plan["verify_cost_usd"] > 0
    parts = plan["speech_cost_usd"] + plan["transcription_cost_usd"] + plan["verify_cost_usd"]
    assert plan["cost_usd"] == pytest.approx(parts)
    assert len(plan["soundtrack"]["regions"]) == 3  # where people speak, as the run finds it
    text = voiceover(talking, *given, "--dry-run").out
    assert "transcription: " in text and "narration speech: " in text
    assert "people speak: 3 stretch(es)" in text
    assert "at most" not in text  # no chat request: the estimate is the worst case
    # Just under the dry-run's total: refused; at it: the run goes ahead.
    r = voiceover(talking, *given, "--max-cost", f"{plan['cost_usd'] * 0.999:.7f}")
    assert r.code == 3 and "transcription $" in r.err, r
    assert not api.calls
    r = voiceover(talking, *given, "--max-cost", f"{plan['cost_usd'] * 1.001:.7f}", "--json")
    assert r.code == 0, r
    assert fake.heard.call_count >= 3


def test_subtitles_without_a_transcript_say_why(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "--subtitles", "dialogue", "--json")  # clip has no audio track
    assert r.code == 0, r
    assert any("no audio track, so no dialogue" in n for n in json.loads(r.out)["notes"])
    assert Path("clip.srt").read_text() == "" and Path("clip.vtt").read_text() == "WEBVTT\n"


def test_subtitles_off_and_the_old_switch(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "--no-subtitles")
    assert r.code == 0, r
    assert not Path("clip.srt").exists() and not Path("clip.vtt").exists()
    r = voiceover(clip, "--subtitles", "dialogue", "--transcribe", "off")
    assert r.code == 2 and "--transcribe off" in r.err, r


def test_untimed_narration_is_not_fitted_between_speech(
    api: respx.Router, key: str, talking: Path
) -> None:
    # One continuous narration is not on the video's times: nothing is moved into gaps or
    # shortened for them, and the record says honestly how much of it falls on speech.
    fake = FakeApi(api, GAP_SCRIPT)
    fake.chat.mock(side_effect=_answers(GAP_SCRIPT, {}))
    r = voiceover(talking, "--untimed", "--json")
    assert r.code == 0, r
    record = json.loads(r.out)
    assert not any(w in r.err for w in ("into the gaps", "shorten", "over budget"))
    assert len(fake.chat_bodies()) == 1 and fake.heard.call_count == 0  # no shortening, no STT
    assert record["over_speech"] == "untimed" and record["shortened"] == 0
    assert record["placed"] == len(GAP_LINES) and record["dropped"] == 0
    starts = [p["start_s"] for p in record["placements"]]
    assert starts[0] == 0.0 and starts == sorted(starts)  # back to back from the start
    over = sum(_overlap(p["start_s"], p["end_s"], TALK) for p in record["placements"])
    assert record["seconds_over_speech"] == pytest.approx(over, abs=0.5) and over > 0
    # A given script's dry run plans it the same way: not moved off speech when untimed.
    Path("given.json").write_text(json.dumps(GAP_SCRIPT))
    fitted = voiceover(talking, "--script", "given.json", "--dry-run")
    untimed = voiceover(talking, "--script", "given.json", "--dry-run", "--untimed")
    assert fitted.code == untimed.code == 0, (fitted, untimed)
    assert "into the gaps" in fitted.out + fitted.err
    assert "into the gaps" not in untimed.out + untimed.err


def test_transcribe_off_still_narrates_only_between_speech(
    api: respx.Router, key: str, talking: Path
) -> None:
    fake = FakeApi(api, GAP_SCRIPT)
    fake.chat.mock(side_effect=_answers(GAP_SCRIPT, {GAP_LINES[0]: "A door opens."}))
    r = voiceover(talking, "--transcribe", "off", "--json")
    assert r.code == 0, r
    record = json.loads(r.out)
    assert fake.heard.call_count == 0  # nothing transcribed
    assert record["speech_regions"] == 3 and record["seconds_over_speech"] == 0.0
    for p in record["placements"]:
        assert _overlap(p["start_s"], p["end_s"], TALK) == 0, p
    chat = fake.chat_bodies()[0]
    prompt = "\n".join(p["text"] for p in chat["messages"][1]["content"] if p["type"] == "text")
    assert "someone speaks" in prompt and SAID not in prompt  # when, not what


# --- --verify: the narration heard back through speech-to-text -----------------------------------

# Long enough lines that a line missing half its words is conclusive on its own.
LONG_LINES = (
    "A red field stretches away under a wide and empty sky.",
    "Green shoots cover the ground and a path runs between them.",
    "Blue light falls at last on the quiet water by the dock.",
)
LONG_SCRIPT = {
    **SCRIPT,
    "segments": [{**s, "text": t} for s, t in zip(SCRIPT["segments"], LONG_LINES, strict=True)],
}


def _every_other_word(text: str) -> str:
    return " ".join(text.split()[::2])


class RoundTrip:
    """A speech server whose every take is a tone of a pitch of its own, and a recogniser that
    names what it hears by that pitch: it hears what the server really spoke. `say` is what the
    server makes of a text (a word-dropping one drops words); `lead_s` of -40 dBFS noise before
    the words (above the timeline's trim: the line starts late); `rate_factor` a wav header that
    claims another rate than the samples' (the take plays at the wrong rate and pitch)."""

    def __init__(
        self,
        fake: FakeApi,
        *,
        say: Any = lambda text: text,
        lead_s: float = 0.0,
        rate_factor: float = 1.0,
    ) -> None:
        self.say, self.lead_s, self.rate_factor = say, lead_s, rate_factor
        self.pitches: dict[str, float] = {}
        self.lock = threading.Lock()
        fake.speech.mock(side_effect=self._speak)
        fake.heard.mock(side_effect=self._hear)
        self.heard = fake.heard

    def _speak(self, request: httpx2.Request) -> respx.MockResponse:
        body = json.loads(request.content)
        text = body["input"]
        said = self.say(text)
        with self.lock:
            pitch = self.pitches.setdefault(said, 300.0 + 70.0 * len(self.pitches))
        share = len(said.split()) / len(text.split())
        pcm = speech_pcm(SPOKEN.get(text, 0.8) * share / body.get("speed", 1.0), freq=pitch)
        if self.lead_s:
            noise = np.random.default_rng(0).standard_normal(round(self.lead_s * SR))
            pcm = (at_dbfs(noise, -40.0) * 32767).astype("<i2").tobytes() + pcm
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(round(SR * self.rate_factor))
            w.writeframes(pcm)
        return respx.MockResponse(
            200, content=buf.getvalue(), headers={"content-type": "audio/wav"}
        )

    def _hear(self, request: httpx2.Request) -> respx.MockResponse:
        _, files = multipart_fields(request.headers["content-type"], request.content)
        with av.open(io.BytesIO(files["file"])) as container:
            x = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        x = x.astype(np.float64) / 32768.0
        peak = np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * 16000 / len(x)
        near = [t for t, p in self.pitches.items() if abs(p - peak) < 10.0]
        text = near[0] if near and x.std() > 1e-3 else ""  # another pitch: nothing intelligible
        return respx.MockResponse(200, json=transcription_response(text))


def _script_file(tmp_path: Path, script: dict[str, Any] = LONG_SCRIPT) -> Path:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(script))
    return path


def test_verify_hears_a_faithful_narration_back_and_passes(fake: FakeApi, clip: Path) -> None:
    trip = RoundTrip(fake)
    r = voiceover(clip, "--verify", "--strict", "--json")
    assert r.code == 0, r
    assert "warning" not in r.err
    record = json.loads(r.out)
    checked = record["verify"]
    assert checked["ok"] and checked["problems"] == [] and checked["off"] == 0
    assert checked["model"] == "gpt-transcribe" and checked["wer_threshold"] == 0.15
    assert [(v["segment"], v["said"], v["wer"], v["ok"]) for v in checked["lines"]] == [
        (i + 1, line, 0.0, True) for i, line in enumerate(LINES)
    ]
    placed = [p["start_s"] for p in record["placements"]]
    assert [v["onset_s"] for v in checked["lines"]] == pytest.approx(placed, abs=0.02)
    # One request per placed line (this video has no audio of its own to transcribe), each a
    # FLAC of its line's span, validated against the schema by the `api` fixture.
    assert trip.heard.call_count == checked["requests"] == 3
    for call in trip.heard.calls:
        fields, _ = multipart_fields(call.request.headers["content-type"], call.request.content)
        assert fields["model"] == "gpt-transcribe" and fields["file"].endswith(".flac")
    assert checked["cost_usd"] > 0 and record["cost_usd"] > checked["cost_usd"]
    assert json.loads(Path("clip.vnarrate.json").read_text())["verify"] == checked
    # A rerun hears the same narration from the cache.
    r = voiceover(clip, "--verify", "--force", "--json")
    assert r.code == 0 and trip.heard.call_count == 3
    assert json.loads(r.out)["verify"]["requests"] == 0


def test_verify_catches_a_speech_server_that_drops_words(
    api: respx.Router, key: str, clip: Path, tmp_path: Path
) -> None:
    fake = FakeApi(api)
    RoundTrip(fake, say=_every_other_word)
    script = _script_file(tmp_path)
    # --strict: the run fails (exit 5) before any output lands; the warnings come first.
    r = voiceover(clip, "--script", script, "--verify", "--strict")
    assert r.code == 5, r
    warnings = [line for line in r.err.splitlines() if line.startswith("vnarrate: warning:")]
    errors = [line for line in r.err.splitlines() if line.startswith("vnarrate: error:")]
    assert len(warnings) == 4 and len(errors) == 1
    assert "verify: segment 1 (0.5–" in warnings[0] and "of 11 words wrong" in warnings[0]
    assert "words missing from the speech" in warnings[-1]
    assert "--verify: 3 of 3 line(s) off" in errors[0] and "drop words" in errors[0]
    assert listing(Path.cwd()) == []
    # Without --strict the narration lands, and the manifest says what was heard.
    calls = len(api.calls)
    r = voiceover(clip, "--script", script, "--verify", "--json")
    assert r.code == 0, r
    assert len(api.calls) == calls  # speech and transcriptions: all from the cache
    checked = json.loads(r.out)["verify"]
    assert not checked["ok"] and checked["problems"] == ["lines", "wer", "missing"]
    kept = sum(len(_every_other_word(line).split()) for line in LONG_LINES)
    assert (checked["heard_words"], checked["words"]) == (kept, 34)
    assert [v["problems"] for v in checked["lines"]] == [["words"]] * 3
    assert checked["lines"][0]["said"] == _every_other_word(LONG_LINES[0])
    assert json.loads(Path("clip.vnarrate.json").read_text())["verify"] == checked


@pytest.mark.parametrize(
    ("server", "problem"),
    [({"lead_s": 0.6}, "onset"), ({"rate_factor": 1.5}, "words")],
    ids=["late-onset", "wrong-rate"],
)
def test_verify_catches_late_speech_and_a_wrong_rate(
    api: respx.Router,
    key: str,
    clip: Path,
    tmp_path: Path,
    server: dict[str, float],
    problem: str,
) -> None:
    RoundTrip(FakeApi(api), **server)
    r = voiceover(clip, "--script", _script_file(tmp_path), "--verify", "--json")
    assert r.code == 0, r
    checked = json.loads(r.out)["verify"]
    assert not checked["ok"]
    assert all(problem in v["problems"] for v in checked["lines"]), checked["lines"]
    if problem == "onset":
        assert all(v["onset_error_s"] == pytest.approx(0.6, abs=0.03) for v in checked["lines"])
        assert "starts 0.6" in r.err and "late (tolerance 0.2 s)" in r.err
        assert all(v["wer"] == 0.0 for v in checked["lines"])  # every word was said


def test_verify_is_priced_and_counted_by_max_cost(
    fake: FakeApi, clip: Path, tmp_path: Path
) -> None:
    script = _script_file(tmp_path)
    plans = {}
    for flags in ((), ("--verify",)):
        r = voiceover(clip, "--script", script, "--dry-run", "--json", *flags)
        assert r.code == 0, r
        plans[flags] = json.loads(r.out)["plan"]
    plain, verified = plans[()], plans[("--verify",)]
    assert plain["verify_model"] is None and verified["verify_model"] == "gpt-transcribe"
    assert verified["verify_requests"] == 3 and verified["verify_seconds"] > 0
    assert verified["cost_usd"] == pytest.approx(plain["cost_usd"] + verified["verify_cost_usd"])
    r = voiceover(clip, "--script", script, "--verify", "--dry-run")
    assert "verify: ~" in r.out and "3 request(s) with gpt-transcribe" in r.out
    budget = str(plain["cost_usd"] + verified["verify_cost_usd"] / 2)
    r = voiceover(clip, "--script", script, "--verify", "--max-cost", budget)
    assert r.code == 3 and "exceeds --max-cost" in r.err, r
    assert len(fake.router.calls) == 0 and listing(Path.cwd()) == []
    assert voiceover(clip, "--script", script, "--max-cost", budget).code == 0


def test_verify_on_a_speech_to_text_server_without_a_price_costs_unknown(
    fake: FakeApi, clip: Path, tmp_path: Path
) -> None:
    """An STT server on this machine that is no known local kind: --verify's cost is null (it
    was recorded as 0.0), in the dry-run and in the run's record."""
    trip = RoundTrip(fake)
    stt = "http://127.0.0.1:8760/v1"
    local = fake.router.post(f"{stt}/audio/transcriptions").mock(side_effect=trip._hear)
    given = ("--script", _script_file(tmp_path), "--verify", "--stt-base-url", stt, "--json")
    plan = json.loads(voiceover(clip, *given, "--dry-run").out)["plan"]
    assert plan["verify_cost_usd"] is None and plan["stt_pricing"] == "unknown"
    assert plan["cost_usd"] is None
    r = voiceover(clip, *given)
    assert r.code == 0, r
    record = json.loads(r.out)
    assert local.call_count == 3 and trip.heard.call_count == 0
    assert record["verify"]["requests"] == 3 and record["verify"]["cost_usd"] is None
    assert record["cost_usd"] is None


def test_verify_needs_a_speech_to_text_server(
    api: respx.Router, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script_file(tmp_path)
    # No key for OpenAI's transcription endpoint: refused before anything is sent.
    local = ("--tts-base-url", "http://127.0.0.1:9/v1")
    r = voiceover(clip, "--script", script, *local, "--verify")
    assert r.code == 3 and "no API key for --verify's speech-to-text server" in r.err, r
    assert len(api.calls) == 0
    # A server without the endpoint: an error (--verify was asked for), not a silent skip.
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("VNARRATE_TTS_BACKEND", "speech")
    fake = FakeApi(api)
    fake.heard.respond(404, json={"error": {"message": "Not found", "type": "invalid_request"}})
    r = voiceover(clip, "--script", script, "--verify")
    assert r.code == 5, r
    assert "no transcription endpoint" in r.err and "--verify needs a speech-to-text" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert listing(Path.cwd()) == []
    # A server that fails otherwise: the error says it was --verify's step.
    fake.heard.respond(500, json={"error": {"message": "boom", "type": "server_error"}})
    r = voiceover(clip, "--script", script, "--verify", "--max-retries", "0")
    assert r.code == 5 and "--verify could not hear the narration back: " in r.err, r
    assert listing(Path.cwd()) == []
