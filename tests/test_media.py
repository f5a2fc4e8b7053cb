"""Integration over every real clip in ../shared/media (skipped when the folder is absent): the CLI's
describe (frames sent, their times, sizes and orientation, through the mocked API whose requests
are validated against the OpenAPI schema), plan and frames (offline, no key), and voiceover with
--mux on the clips that have audio (narration length and onsets, streams of the muxed copy)."""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
from pathlib import Path

import av
import cv2
import httpx2
import numpy as np
import pytest
import respx
from _media import decode_audio, onsets, speech_pcm, video_packets
from conftest import (
    MEDIA,
    TEST_KEY,
    chat_response,
    media_clips,
    requires_media,
    run_cli,
    transcription_response,
)

pytestmark = [requires_media, pytest.mark.media]

CLIPS = [p.name for p in media_clips()]
FRAMES = 4
RESIZE = 768  # the default longest side
# Frames as a viewer sees them (rotation applied), scaled to the default 768 px longest side.
SHOWN = {
    "asl_bird.mkv": (640, 480),
    "bbb_vertical.mp4": (270, 480),  # portrait
    "big_buck_bunny_0_30.webm": (768, 432),
    "car-detection.mp4": (768, 432),
    "fire2.mp4": (768, 432),  # stored upside down (rotate 180): sent upright
    "nasa_13013.mp4": (320, 180),  # the first of two video streams
    "one-by-one-person-detection.mp4": (768, 432),
}
DESC = {"title": "A clip", "description": "Something happens."}
SAID = "Every move is slow and careful."


def facts(path: Path) -> tuple[float, int, int]:
    """(duration of the main video stream, stored width, stored height), read with PyAV."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        if v.duration is not None:
            duration = float(v.duration * v.time_base)
        else:
            assert c.duration is not None
            duration = c.duration / 1_000_000
        return duration, v.codec_context.width, v.codec_context.height


def check_size(name: str, width: int, height: int) -> None:
    """Known clips: exactly as expected. Clips added later: the stored aspect (either way round,
    rotation may turn it) within the default size."""
    want = SHOWN.get(name)
    if want is not None:
        assert (width, height) == want, name
        return
    _, w, h = facts(MEDIA / name)
    assert max(width, height) <= RESIZE
    aspect = width / height
    assert aspect == pytest.approx(w / h, rel=0.03) or aspect == pytest.approx(h / w, rel=0.03)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    # These tests mock /audio/speech; OpenAI's default speech is now the Realtime API.
    monkeypatch.setenv("VNARRATE_TTS_BACKEND", "speech")
    return TEST_KEY


def jpeg(url: str) -> np.ndarray:
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    image = cv2.imdecode(np.frombuffer(base64.b64decode(url[len(prefix) :]), np.uint8), 1)
    assert image is not None, "not a decodable JPEG"
    return image


# --- describe ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIPS)
def test_describe(api: respx.Router, key: str, name: str) -> None:
    clip = MEDIA / name
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    heard = api.post("/audio/transcriptions").respond(200, json=transcription_response(SAID))
    r = run_cli(["describe", clip, "--json", "--frames", FRAMES, "--no-cache"])
    assert r.code == 0, r
    record = json.loads(r.out)
    assert record["status"] == "ok" and record["title"] == DESC["title"]
    # Where people speak was transcribed (one request per stretch of speech), and what they
    # say reached the prompt; a clip without speech (or audio) asked nothing.
    regions = record["soundtrack"]["speech"]["regions"] if "soundtrack" in record else []
    assert len(heard.calls) == len(regions)
    prompt = json.loads(route.calls[0].request.content)["messages"][1]["content"][0]["text"]
    assert (SAID in prompt) == bool(regions)
    assert record["frames_sent"] == FRAMES
    duration, _, _ = facts(clip)
    times = record["frame_times_s"]
    assert len(times) == FRAMES
    assert all(b > a for a, b in itertools.pairwise(times)), times
    assert times[0] >= 0 and times[-1] < duration, (times, duration)

    (call,) = route.calls
    body = json.loads(call.request.content)
    parts = body["messages"][1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == FRAMES
    # Each image is preceded by its timestamp label, in the order of the times reported.
    labels = [
        parts[i - 1]["text"] for i, p in enumerate(parts) if p["type"] == "image_url" and i > 0
    ]
    assert all(re.fullmatch(r"\[\d+:\d\d\.\d\]", label) for label in labels), labels
    label_s = [int(m) * 60 + float(s) for m, s in (lab.strip("[]").split(":") for lab in labels)]
    assert label_s == pytest.approx(times, abs=0.051)
    for part in images:
        image = jpeg(part["image_url"]["url"])
        check_size(name, image.shape[1], image.shape[0])


@pytest.mark.skipif(not (MEDIA / "fire2.mp4").is_file(), reason="fire2.mp4 not in the media")
def test_describe_sends_fire2_upright(api: respx.Router, key: str) -> None:
    """fire2.mp4 is stored upside down (rotate 180): the frames sent must be turned upright."""
    clip = MEDIA / "fire2.mp4"
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    r = run_cli(["describe", clip, "--json", "--frames", "2", "--no-cache"])
    assert r.code == 0, r
    time_s = json.loads(r.out)["frame_times_s"][0]
    parts = json.loads(route.calls[0].request.content)["messages"][1]["content"]
    sent = jpeg(next(p for p in parts if p["type"] == "image_url")["image_url"]["url"])
    with av.open(str(clip)) as c:  # PyAV does not rotate: the stored picture
        stored = next(
            f for f in c.decode(video=0) if f.time is not None and f.time >= time_s - 1e-3
        )
        raw = stored.to_ndarray(format="bgr24")
    raw = cv2.resize(raw, sent.shape[1::-1], interpolation=cv2.INTER_AREA).astype(np.int16)
    sent16 = sent.astype(np.int16)
    upright, as_stored = np.abs(sent16 - raw[::-1, ::-1]).mean(), np.abs(sent16 - raw).mean()
    assert upright < 8 < as_stored, (upright, as_stored)


# --- plan and frames: offline --------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIPS)
def test_plan_offline(api: respx.Router, name: str) -> None:
    clip = MEDIA / name
    r = run_cli(["plan", clip, "--json", "--frames", FRAMES, "--task", "voiceover"])
    assert r.code == 0, r  # no key in the environment, and none needed
    plan = json.loads(r.out)["plan"]
    duration, _, _ = facts(clip)
    assert plan["duration_s"] == pytest.approx(duration, abs=0.05)
    assert len(plan["frame_times_s"]) == FRAMES
    assert plan["requests"] and plan["input_tokens"] > 0
    # Narration goes only between speech: none where someone speaks all through.
    assert (plan["speech_characters"] > 0) == (name not in TALKING) and plan["cost_usd"] > 0
    check_size(name, plan["frame_width"], plan["frame_height"])
    assert len(api.calls) == 0


@pytest.mark.parametrize("name", CLIPS)
def test_frames_offline(name: str, tmp_path: Path) -> None:
    clip = MEDIA / name
    out = tmp_path / "frames"
    r = run_cli(["frames", clip, "-o", out, "--frames", FRAMES])
    assert r.code == 0, r
    doc = json.loads((out / "frames.json").read_text())
    records = doc["frames"]
    assert len(records) == FRAMES
    times = [rec["time_s"] for rec in records]
    assert times == sorted(times) and times[-1] < facts(clip)[0]
    for rec in records:
        image = cv2.imread(str(out / rec["file"]))
        assert image is not None
        assert (image.shape[1], image.shape[0]) == (rec["width"], rec["height"])
        check_size(name, rec["width"], rec["height"])
    sheet = cv2.imread(str(out / "contact_sheet.jpg"))
    assert sheet is not None and sheet.shape[0] > 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(rec["file"] for rec in records), "frames.json", "contact_sheet.jpg"]
    )


# --- voiceover with --mux on the clips with audio --------------------------------------------------

WITH_AUDIO = {
    "nasa_13013.mp4": ".mp4",  # 2 video, 2 audio, 2 subtitle streams
    "bbb_vertical.mp4": ".mp4",  # Opus 5.1 in MP4
    "big_buck_bunny_0_30.webm": ".mkv",  # VP8 + Vorbis: Matroska holds VP8, so it is copied
    "fire2.mp4": ".mp4",  # rotated 180, VFR, AAC mono
}
SPEECH_S = 0.6
TALKING = {"nasa_13013.mp4"}  # someone speaks from 0.5 s to the end


@pytest.mark.skipif("nasa_13013.mp4" not in CLIPS, reason="needs nasa_13013.mp4")
def test_a_video_spoken_all_through_gets_no_narration_and_no_vision_request(
    api: respx.Router, key: str
) -> None:
    chat = api.post("/chat/completions").mock(side_effect=_script)
    api.get(path__regex=r"/models/[^/]+$").respond(
        200, json={"id": "gpt-4o-mini-tts", "object": "model", "created": 1, "owned_by": "system"}
    )
    speech = api.post("/audio/speech").respond(200, content=speech_pcm(SPEECH_S))
    r = run_cli(["voiceover", MEDIA / "nasa_13013.mp4", "--frames", FRAMES, "--json",
                 "--words-per-second", "3"])  # fmt: skip
    assert r.code == 0, r
    record = json.loads(r.out)
    assert (record["lines"], record["placed"], record["seconds_over_speech"]) == (0, 0, 0.0)
    assert chat.call_count == 0 and speech.call_count == 0  # nothing paid for
    assert record["speech_regions"] >= 1 and record["speech_s"] > 10
    assert any("people speak all through" in n for n in record["notes"])
    x = decode_audio(Path("nasa_13013.narration.mp3"))
    assert onsets(x) == [] and abs(len(x) / 24000 - record["duration_s"]) <= 0.05


def _script(request: httpx2.Request) -> respx.MockResponse:
    """A script with a line at 0.3 s and one at half the duration the prompt states."""
    body = json.loads(request.content)
    text = "\n".join(p["text"] for p in body["messages"][1]["content"] if p["type"] == "text")
    m = re.search(r"\(([\d.]+) s\)", text)
    assert m, text
    duration = float(m.group(1))
    half = round(duration / 2, 2)
    script = {
        "title": "Narrated",
        "language": "en",
        "segments": [
            {"start_s": 0.3, "end_s": half - 0.1, "text": "Look."},
            {"start_s": half, "end_s": duration, "text": "There."},
        ],
    }
    return respx.MockResponse(200, json=chat_response(script))


def _main_audio_duration(path: Path) -> float:
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        if a.duration is not None:
            return float(a.duration * a.time_base)
        assert c.duration is not None
        return c.duration / 1_000_000


@pytest.mark.parametrize("name", [n for n in WITH_AUDIO if n in CLIPS])
def test_voiceover_mux(api: respx.Router, key: str, name: str) -> None:
    clip = MEDIA / name
    api.post("/chat/completions").mock(side_effect=_script)
    api.get(path__regex=r"/models/[^/]+$").respond(
        200, json={"id": "gpt-4o-mini-tts", "object": "model", "created": 1, "owned_by": "system"}
    )
    api.post("/audio/speech").respond(200, content=speech_pcm(SPEECH_S))
    heard = api.post("/audio/transcriptions").respond(200, json=transcription_response(SAID))
    target = Path("out" + WITH_AUDIO[name])
    # A narrator speaks all through nasa_13013.mp4: there the lines may only go over the speech.
    duck = ["--over-speech", "duck"] if name in TALKING else []
    r = run_cli(["voiceover", clip, "--frames", FRAMES, "--mux", target, "--json", *duck])
    assert r.code == 0, r
    record = json.loads(r.out)
    duration, _, _ = facts(clip)
    assert record["duration_s"] == pytest.approx(duration, abs=0.05)
    assert (record["placed"], record["dropped"]) == (2, 0)
    assert (record["seconds_over_speech"] > 0) == (name in TALKING)
    assert (heard.call_count > 0) == (name in TALKING)  # what the narrator says, for the prompt

    # The narration: as long as the video, speech at 0.3 s and at half the duration.
    stem = clip.stem
    x = decode_audio(Path(f"{stem}.narration.mp3"))
    assert abs(len(x) / 24000 - duration) <= 0.05, (len(x) / 24000, duration)
    found = onsets(x)
    starts = [0.3, round(duration / 2, 2)]
    assert len(found) == 2 and max(abs(a - b) for a, b in zip(found, starts, strict=True)) <= 0.06

    # The muxed copy: the main video stream copied packet for packet, the narrated AAC track,
    # and every other audio track of the original as it was.
    with av.open(str(clip)) as src, av.open(str(target)) as out:
        assert [s.type for s in out.streams] == ["video"] + ["audio"] * len(src.streams.audio)
        vin, vout = src.streams.video[0], out.streams.video[0]
        assert vout.codec_context.name == vin.codec_context.name
        assert (vout.codec_context.width, vout.codec_context.height) == (
            vin.codec_context.width,
            vin.codec_context.height,
        )
        assert out.streams.audio[0].codec_context.name == "aac"
        rotation_in = next(src.decode(video=0)).rotation
        rotation_out = next(out.decode(video=0)).rotation
        assert rotation_out == rotation_in
    assert video_packets(target) == video_packets(clip)
    mixed = decode_audio(target, 48000)
    want = max(duration, _main_audio_duration(clip))  # the original audio is kept whole
    assert abs(len(mixed) / 48000 - want) <= 0.1, (len(mixed) / 48000, want)


@pytest.mark.skipif("fire2.mp4" not in CLIPS, reason="needs fire2.mp4")
def test_an_overlong_script_on_a_short_clip_ends_placed_and_reported(
    api: respx.Router, key: str
) -> None:
    """Issue 12: on fire2.mp4 (2.38 s) a line whose speech ran past the next line's slot and the
    end of the clip crashed voiceover (OverflowError), and the rerun from the cache again."""
    script = {
        "title": "Fire",
        "language": "en",
        "segments": [
            {"start_s": 0.0, "end_s": 1.0, "text": "Flames leap from the logs and sparks fly."},
            {"start_s": 1.1, "end_s": 2.0, "text": "The fire roars on into the night."},
            {"start_s": 2.0, "end_s": 2.3, "text": "Embers glow."},
        ],
    }

    def answer(request: httpx2.Request) -> respx.MockResponse:
        schema = json.loads(request.content)["response_format"]["json_schema"]["name"]
        shortened: dict[str, list[str]] = {"lines": []}  # asked to shorten: no change
        return respx.MockResponse(
            200, json=chat_response(script if schema == "Script" else shortened)
        )

    api.post("/chat/completions").mock(side_effect=answer)
    api.get(path__regex=r"/models/[^/]+$").respond(
        200, json={"id": "gpt-4o-mini-tts", "object": "model", "created": 1, "owned_by": "system"}
    )
    speech = api.post("/audio/speech").respond(200, content=speech_pcm(2.5))  # ignores speed
    records = []
    for _ in range(2):  # the second run answers from the cache
        r = run_cli(["voiceover", MEDIA / "fire2.mp4", "--frames", FRAMES, "--out-dir", "out",
                     "--json", "--force", "--words-per-second", "2.5"])  # fmt: skip
        assert r.code == 0, r
        records.append(json.loads(r.out))
    assert speech.call_count == 4  # three lines, one re-spoken faster (ignored): then cached
    for record in records:
        assert record["placed"] == record["lines"] == 3
        assert any("past the end of the video" in n for n in record["notes"])
        ends = [p["end_s"] for p in record["placements"]]
        assert all(math.isfinite(e) for e in ends) and record["audio_s"] >= ends[-1] - 0.01
    assert records[0]["placements"] == records[1]["placements"]
