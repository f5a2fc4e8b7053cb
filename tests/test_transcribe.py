"""Transcription (soundtrack/transcribe.py) against the mocked API, whose multipart requests are
validated against CreateTranscriptionRequest and the spec's description-only rules (conftest):
one request per speech region, the text placed by the detector's times, answers never trusted,
the cache, and the errors every endpoint gives. Then through the CLI: the transcript reaches the
prompt; `auto` goes on without it, `on` fails; no audio, unreadable audio or `off` ask nothing;
`plan` and `frames` show where people speak, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai._base_client
import pytest
import respx
from _media import damage_audio, make_soundtrack, place, speech_map, speechlike
from conftest import TEST_KEY, chat_response, multipart_fields, run_cli, transcription_response

from vnarrate.errors import ApiError
from vnarrate.server.cache import ResponseCache
from vnarrate.server.client import make_client
from vnarrate.server.prices import load_prices
from vnarrate.soundtrack.transcribe import (
    NoTranscriptionEndpoint,
    TranscribeOptions,
    answer_text,
    clean_text,
    transcribe,
)

RATE = 16000
DESC = {"title": "Two people talk", "description": "They talk."}
OPTIONS = TranscribeOptions(
    mode="auto", model="gpt-transcribe", provider="openai", base_url=None, pricing="table",
    prices=load_prices(None),
)  # fmt: skip
ERR = "vnarrate: error: "


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's retries without its sleeps."""
    monkeypatch.setattr(
        openai._base_client.BaseClient, "_calculate_retry_timeout", lambda *a, **k: 0.0
    )


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s of video whose soundtrack has three lines from two voices (2-4.5, 6-8, 9.5-11 s)."""
    x = place(
        12.0,
        [
            (2.0, speechlike(2.5, f0=110, seed=1)),
            (6.0, speechlike(2.0, f0=210, seed=2)),
            (9.5, speechlike(1.5, f0=130, seed=3)),
        ],
    )
    return make_soundtrack(tmp_path_factory.mktemp("talk") / "talk.mp4", [x], rate=RATE)


def client(retries: int = 0) -> Any:
    return make_client(api_key=TEST_KEY, base_url=None, timeout=10, max_retries=retries)


def said_by_file(request: Any) -> Any:
    """An answer naming the clip it was given (file names carry the region number)."""
    fields, files = multipart_fields(request.headers["content-type"], request.content)
    assert files["file"][:4] == b"fLaC"
    region = int(str(fields["file"]).split("-")[1])
    return respx.MockResponse(200, json=transcription_response(f"line {region} said"))


# --- the stage ---------------------------------------------------------------------------------


def test_one_request_per_region_and_each_line_keeps_its_regions_times(
    api: respx.Router, talk: Path
) -> None:
    route = api.post("/audio/transcriptions").mock(side_effect=said_by_file)
    speech = speech_map([(1.9, 4.6), (5.9, 8.1), (9.4, 11.1)])
    said = transcribe(talk, speech, OPTIONS, client=client(), key=TEST_KEY, jobs=2)
    assert len(route.calls) == 3 and said.requests == 3 and said.cached == 0
    assert [(ln.start_s, ln.end_s) for ln in said.lines] == speech.regions
    assert [ln.text for ln in said.lines] == ["line 1 said", "line 2 said", "line 3 said"]
    assert said.seconds == pytest.approx(2.7 + 2.2 + 1.7, abs=0.01)
    fields, _ = multipart_fields(
        route.calls[0].request.headers["content-type"], route.calls[0].request.content
    )
    assert fields["model"] == "gpt-transcribe" and fields["response_format"] == "json"


def test_the_cache_answers_the_same_audio_and_holds_no_key(
    api: respx.Router, talk: Path, tmp_path: Path
) -> None:
    route = api.post("/audio/transcriptions").mock(side_effect=said_by_file)
    cache = ResponseCache(tmp_path / "cache", secrets=[TEST_KEY])
    speech = speech_map([(1.9, 4.6), (5.9, 8.1)])
    first = transcribe(talk, speech, OPTIONS, client=client(), cache=cache, key=TEST_KEY)
    again = transcribe(talk, speech, OPTIONS, client=client(), cache=cache, key=TEST_KEY)
    assert len(route.calls) == 2
    assert again.lines == first.lines and again.cached == 2
    assert again.requests == 0 and again.seconds == 0.0
    other = OPTIONS.model_copy(update={"model": "whisper-1"})
    transcribe(talk, speech, other, client=client(), cache=cache, key=TEST_KEY)
    assert len(route.calls) == 4  # another model is another question
    for entry in (tmp_path / "cache").rglob("*.json"):
        assert TEST_KEY.encode() not in entry.read_bytes()


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"<!doctype html><html><body>Welcome</body></html>", "text/html"),
        (b"<html>oops</html>", "text/plain"),
        (b'{"error": "nope"}', "application/json"),
        (b'{"text": 12}', "application/json"),
        (b"", "application/json"),
        (b"\xff\xfe\x00garbage", "application/octet-stream"),
    ],
)
def test_answers_that_are_not_transcriptions_are_api_errors(body: bytes, ctype: str) -> None:
    with pytest.raises(ApiError, match="not a transcription") as err:
        answer_text(body, ctype, OPTIONS)
    assert err.value.exit_code == 5 and "\n" not in str(err.value)


def test_plain_text_and_segments_only_answers_are_read() -> None:
    assert answer_text(b"hello there", "text/plain; charset=utf-8", OPTIONS) == "hello there"
    segments = {"segments": [{"text": " one"}, {"text": "two "}]}
    assert answer_text(json.dumps(segments).encode(), "application/json", OPTIONS).split() == [
        "one",
        "two",
    ]


def test_text_is_cleaned_and_a_recognisers_loop_is_cut() -> None:
    assert clean_text("a\x00b\n\n  c\td", 2.0) == ("a b c d", None)
    looped, note = clean_text("the " * 500, 1.0)
    assert len(looped) <= 242 and looped.endswith("…") and note and "cut" in note


def test_an_empty_answer_is_heard_as_no_words(api: respx.Router, talk: Path) -> None:
    api.post("/audio/transcriptions").respond(200, json=transcription_response(""))
    said = transcribe(talk, speech_map([(1.9, 4.6)]), OPTIONS, client=client())
    assert said.lines[0].text == "" and said.lines[0].start_s == 1.9
    assert any("no words" in w for w in said.warnings)


def test_a_server_without_the_endpoint_says_so(api: respx.Router, talk: Path) -> None:
    api.post("/audio/transcriptions").respond(404, json={"detail": "Not Found"})
    with pytest.raises(NoTranscriptionEndpoint, match="no transcription endpoint") as err:
        transcribe(talk, speech_map([(1.9, 4.6)]), OPTIONS, client=client())
    assert "--stt-base-url" in str(err.value) and err.value.exit_code == 5


def test_server_errors_are_retried_by_the_sdk_then_one_clear_error(
    api: respx.Router, talk: Path
) -> None:
    route = api.post("/audio/transcriptions").respond(503, json={"error": {"message": "busy"}})
    with pytest.raises(ApiError, match=r"server error \(503\) after the SDK's retries: busy"):
        transcribe(talk, speech_map([(1.9, 4.6)]), OPTIONS, client=client(retries=2))
    assert len(route.calls) == 3


def test_a_rejected_key_is_never_shown(api: respx.Router, talk: Path) -> None:
    api.post("/audio/transcriptions").respond(
        401, json={"error": {"message": f"Incorrect API key provided: {TEST_KEY}"}}
    )
    with pytest.raises(ApiError, match=r"rejected \(401\)") as err:
        transcribe(talk, speech_map([(1.9, 4.6)]), OPTIONS, client=client(), key=TEST_KEY)
    assert TEST_KEY not in str(err.value) and "--stt-api-key" in str(err.value)


# --- through the command line --------------------------------------------------------------------


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    return TEST_KEY


def describe(video: Path, *extra: str) -> Any:
    return run_cli(["describe", video, "--json", "--frames", "3", "--no-cache", *extra])


def prompt_text(route: respx.Route) -> str:
    return str(json.loads(route.calls[0].request.content)["messages"][1]["content"][0]["text"])


def test_describe_puts_what_is_said_into_the_prompt(
    api: respx.Router, key: str, talk: Path
) -> None:
    chat = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    heard = api.post("/audio/transcriptions").mock(side_effect=said_by_file)
    r = describe(talk)
    assert r.code == 0, r
    record = json.loads(r.out)
    regions = record["soundtrack"]["speech"]["regions"]
    assert len(regions) == 3 and len(heard.calls) == 3
    assert record["soundtrack"]["transcribed"] is True
    text = prompt_text(chat)
    block = text.split("<soundtrack>\n")[1].split("\n</soundtrack>")[0].splitlines()
    # Each line at its detected time, in time order.
    assert [ln.split("] ")[1] for ln in block] == ["line 1 said", "line 2 said", "line 3 said"]
    assert block[0].startswith("[0:0") and "never instructions" in text
    # Transcription is priced into the run's cost (gpt-transcribe: $0.0045 a minute).
    seconds = record["soundtrack"]["transcription_seconds"]
    assert record["soundtrack"]["transcription_cost_usd"] == pytest.approx(seconds / 60 * 0.0045)


def test_auto_goes_on_without_a_transcript_and_on_fails(
    api: respx.Router, key: str, talk: Path
) -> None:
    chat = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    stt = api.post("/audio/transcriptions").respond(404, json={"detail": "Not Found"})
    r = describe(talk)
    assert r.code == 0, r
    assert "warning:" in r.err and "no transcription endpoint" in r.err
    assert len(stt.calls) == 1  # the first 404 ends the asking
    assert "<soundtrack>" not in prompt_text(chat)
    assert json.loads(r.out)["soundtrack"]["transcribed"] is False
    r = describe(talk, "--transcribe", "on")
    assert r.code == 5 and "no transcription endpoint" in r.err
    assert len(chat.calls) == 1  # nothing more was asked


def test_garbage_from_the_speech_server_under_on_is_exit_5(
    api: respx.Router, key: str, talk: Path
) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    api.post("/audio/transcriptions").respond(200, text="<html>login</html>")
    r = describe(talk, "--transcribe", "on")
    assert r.code == 5 and "not a transcription" in r.err and "Traceback" not in r.err


def test_no_audio_unreadable_audio_and_off_ask_nothing(
    api: respx.Router, key: str, talk: Path, video: Path, tmp_path: Path
) -> None:
    chat = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    stt = api.post("/audio/transcriptions").mock(side_effect=said_by_file)
    assert describe(video).code == 0  # no audio track at all
    broken = damage_audio(talk, tmp_path / "broken.mp4")
    r = describe(broken)
    assert r.code == 0, r
    assert "warning:" in r.err and "continuing without the soundtrack" in r.err
    assert describe(talk, "--transcribe", "off").code == 0
    assert len(stt.calls) == 0 and len(chat.calls) == 3
    assert all("<soundtrack>" not in prompt_text(chat) for _ in chat.calls)


def test_a_separate_speech_server_gets_its_own_key_and_never_the_main_one(
    api: respx.Router, key: str, talk: Path
) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    stt = api.post("https://stt.example.org/v1/audio/transcriptions").mock(side_effect=said_by_file)
    stt_key = "sk-stt-OTHER-0123456789"
    r = describe(talk, "--stt-base-url", "https://stt.example.org/v1", "--stt-api-key", stt_key)
    assert r.code == 0, r
    assert len(stt.calls) == 3
    assert {c.request.headers["authorization"] for c in stt.calls} == {f"Bearer {stt_key}"}
    assert stt_key not in r.out + r.err


# --- offline: plan and frames show where people speak -------------------------------------------


def test_plan_shows_speech_and_prices_its_transcription_without_a_key(
    api: respx.Router, talk: Path
) -> None:
    r = run_cli(["plan", talk, "--frames", "3"])
    assert r.code == 0, r
    assert "people speak: 3 stretch(es)" in r.out and "gaps: 0:00.0–0:0" in r.out
    assert "transcription:" in r.out and "with gpt-transcribe" in r.out
    r = run_cli(["plan", talk, "--frames", "3", "--json"])
    plan = json.loads(r.out)["plan"]
    assert len(plan["soundtrack"]["regions"]) == 3 and plan["transcription_requests"] == 3
    seconds = plan["transcription_seconds"]
    assert plan["transcription_cost_usd"] == pytest.approx(seconds / 60 * 0.0045)
    assert plan["cost_usd"] == pytest.approx(plan["chat_cost_usd"] + plan["transcription_cost_usd"])
    off = json.loads(run_cli(["plan", talk, "--frames", "3", "--json", "--transcribe", "off"]).out)
    assert off["plan"]["transcription_model"] is None and off["plan"]["soundtrack"] is not None
    # The transcript's tokens are counted in the requests.
    assert plan["input_tokens"] > off["plan"]["input_tokens"]
    assert not api.calls


def test_max_cost_counts_the_transcription(api: respx.Router, key: str, talk: Path) -> None:
    prices = talk.parent / "dear-stt.json"
    prices.write_text(json.dumps({"transcription": {"gpt-transcribe": {"per_minute": 100.0}}}))
    r = describe(talk, "--prices", prices, "--max-cost", "1")
    assert r.code == 3 and "exceeds --max-cost" in r.err
    r = describe(talk, "--stt-model", "my-whisper", "--max-cost", "1")
    assert r.code == 3 and "no price for 'my-whisper'" in r.err
    assert not api.calls  # refused before anything was paid for


@pytest.mark.parametrize("url", ["http://127.0.0.1:8760/v1", "http://10.0.0.5:9000/v1"])
def test_transcription_on_a_server_without_a_price_is_unknown_not_free(
    api: respx.Router, talk: Path, url: str
) -> None:
    """A server on this machine or a private network that is no known local kind is priced as
    chat is there: unknown (it was $0.00)."""
    r = run_cli(["plan", talk, "--frames", "3", "--base-url", url])
    assert r.code == 0, r
    said = next(line for line in r.out.splitlines() if "transcription:" in line)
    assert said.endswith("with gpt-transcribe, unknown (no price for this server)"), said
    assert "speech-to-text server is not OpenAI: transcription cost unknown" in r.out
    plan = json.loads(run_cli(["plan", talk, "--frames", "3", "--base-url", url, "--json"]).out)
    plan = plan["plan"]
    assert plan["transcription_cost_usd"] is None and plan["stt_pricing"] == "unknown"
    assert plan["cost_usd"] is None
    assert not api.calls


def test_transcription_is_priced_by_the_server_that_transcribes(
    api: respx.Router, talk: Path, tmp_path: Path
) -> None:
    def plan(*flags: str) -> Any:
        r = run_cli(["plan", talk, "--frames", "3", "--json", *flags])
        assert r.code == 0, r
        return json.loads(r.out)["plan"]

    local = plan("--stt-base-url", "http://localhost:11434/v1")  # a known local kind: free
    assert local["stt_pricing"] == "free" and local["transcription_cost_usd"] == 0.0
    # A local chat server, OpenAI transcribing: OpenAI's price.
    openai_stt = plan("--base-url", "http://localhost:11434/v1",
                      "--stt-base-url", "https://api.openai.com/v1")  # fmt: skip
    seconds = openai_stt["transcription_seconds"]
    assert openai_stt["chat_cost_usd"] == 0.0 and openai_stt["stt_pricing"] == "table"
    assert openai_stt["transcription_cost_usd"] == pytest.approx(seconds / 60 * 0.0045)
    assert openai_stt["cost_usd"] == pytest.approx(openai_stt["transcription_cost_usd"])
    # An unknown server whose model the user's prices file names.
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"transcription": {"gpt-transcribe": {"per_minute": 0.01}}}))
    priced = plan("--base-url", "http://10.0.0.5:9000/v1", "--prices", str(mine))
    assert priced["transcription_cost_usd"] == pytest.approx(seconds / 60 * 0.01)
    assert not api.calls


def test_max_cost_refuses_an_unpriced_transcription(
    api: respx.Router, talk: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "chat-only.json"
    mine.write_text(json.dumps({"chat": {"gpt-5.4-mini": {"input": 0.1, "output": 0.5}}}))
    r = describe(talk, "--base-url", "http://10.0.0.5:9000/v1", "--prices", mine,
                 "--max-cost", "5")  # fmt: skip
    assert r.code == 3 and "no price for 'gpt-transcribe'" in r.err, r
    assert not api.calls  # refused before anything was sent


def test_frames_json_holds_where_people_speak(talk: Path, tmp_path: Path) -> None:
    r = run_cli(["frames", talk, "--frames", "2", "-o", tmp_path / "f"])
    assert r.code == 0, r
    doc = json.loads((tmp_path / "f" / "frames.json").read_text())
    assert len(doc["soundtrack"]["regions"]) == 3 and doc["soundtrack"]["gaps"]
    assert "people speak: 3 stretch(es)" in r.err


def test_a_damaged_soundtrack_still_plans(talk: Path, tmp_path: Path) -> None:
    broken = damage_audio(talk, tmp_path / "broken.mp4")
    r = run_cli(["plan", broken, "--frames", "2"])
    assert r.code == 0, r
    assert "warning:" in r.err and "continuing without the soundtrack" in r.err
    assert "people speak:" not in r.out and "transcription:" not in r.out


def test_a_server_without_the_endpoint_is_asked_once_per_run(
    api: respx.Router, key: str, talk: Path, tmp_path: Path
) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    stt = api.post("/audio/transcriptions").respond(405, text="Method Not Allowed")
    other = tmp_path / "other.mp4"
    other.write_bytes(talk.read_bytes())
    r = run_cli(["describe", talk, other, "--json", "--frames", "2", "--no-cache", "--jobs", "1"])
    assert r.code == 0, r
    assert len(stt.calls) == 1 and r.err.count("no transcription endpoint") == 2
