"""Realtime speech backend against a local server that speaks the Realtime protocol as the openai
SDK's types define it (tests/realtime_server.py), and choose_backend's decisions."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conftest import TEST_KEY
from realtime_server import (
    CLIENT_EVENTS,
    Mode,
    ProtocolViolation,
    RealtimeServer,
    paraphrase,
    validate_client_event,
)

from vnarrate.errors import ApiError, ConfigError
from vnarrate.models import Clip, Segment
from vnarrate.narration.realtime import (
    MAX_PIECE_CHARS,
    RealtimeBackend,
    session_instructions,
)
from vnarrate.narration.speech import (
    SAMPLE_RATE,
    SpeechOptions,
    synthesize_all,
)

TEXT = "A heron lands on the jetty at 7 o'clock, and the fog lifts over 2,000 boats."
OPTIONS = SpeechOptions(model="gpt-realtime-2.1-mini", voice="marin", instructions="warm, slow")


def client_for(server: RealtimeServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=TEST_KEY, websocket_base_url=server.base_url, max_retries=0)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[RealtimeServer]:
    kwargs: dict[str, Any] = getattr(request, "param", {})
    with RealtimeServer(**kwargs) as srv:
        yield srv
    assert srv.violations == [], "the client sent events the SDK's types do not describe"


# --- the test server's own protocol checks ----------------------------------------------------


def test_server_knows_the_sdk_client_events() -> None:
    # GA names, read from the SDK: a rename in a future SDK changes this set and fails here.
    assert {"session.update", "conversation.item.create", "response.create"} <= set(CLIENT_EVENTS)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "response.audio.delta", "delta": ""},  # not a client event
        {"type": "session.update", "session": {"modalities": ["audio"]}},  # beta shape
        {
            "type": "session.update",
            "session": {"type": "realtime", "output_audio_format": "pcm16"},  # beta field
        },
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"format": {"type": "pcm16"}}}},
        },
        {"type": "conversation.item.create", "item": {"type": "message", "role": "user"}},
        {"type": "response.create", "response": {"modalities": ["audio"]}},
    ],
)
def test_server_rejects_events_the_sdk_does_not_describe(event: dict[str, Any]) -> None:
    with pytest.raises(ProtocolViolation):
        validate_client_event(event)


# --- speaking ---------------------------------------------------------------------------------


def test_speaks_the_text_and_returns_the_servers_pcm(server: RealtimeServer) -> None:
    result = RealtimeBackend(client_for(server)).synthesize(TEXT, OPTIONS)

    [spoken] = server.spoken
    assert spoken.completed and spoken.text == TEXT
    assert result.pcm == spoken.pcm and len(result.pcm) > SAMPLE_RATE  # real audio, over 0.5 s
    assert result.sample_rate == SAMPLE_RATE
    assert result.transcript == TEXT
    assert result.wer == 0.0 and result.faithful is True
    assert result.characters == len(TEXT)

    # One connection, for the model asked, and exactly the three events the backend needs.
    assert server.connections == 1
    assert server.models == ["gpt-realtime-2.1-mini"]
    assert [e["type"] for e in server.client_events] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    [session] = server.sessions
    assert session["type"] == "realtime"
    assert session["output_modalities"] == ["audio"]
    assert session["audio"]["output"] == {
        "voice": "marin",
        "format": {"type": "audio/pcm", "rate": 24000},
    }
    assert "word for word" in session["instructions"]
    assert "warm, slow" in session["instructions"]
    item = server.client_events[1]["item"]
    assert item == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": TEXT}],
    }


def test_backend_model_overrides_the_speech_model_and_speed_and_custom_voice(
    server: RealtimeServer,
) -> None:
    backend = RealtimeBackend(client_for(server), model="gpt-realtime-2.1")
    options = SpeechOptions(model="gpt-4o-mini-tts", voice="voice_abc123", speed=1.2)
    backend.synthesize("Short line.", options)
    assert server.models == ["gpt-realtime-2.1"]
    output = server.sessions[0]["audio"]["output"]
    assert output["voice"] == {"id": "voice_abc123"}
    assert output["speed"] == 1.2
    assert "How to speak" not in server.sessions[0]["instructions"]  # no tone given


@pytest.mark.parametrize("server", [{"mode": "paraphrase_once"}], indirect=True)
def test_paraphrase_is_retried_once_with_stricter_instructions(server: RealtimeServer) -> None:
    result = RealtimeBackend(client_for(server)).synthesize(TEXT, OPTIONS)

    assert server.connections == 2  # a fresh session: the paraphrase is not in its context
    first, second = server.sessions
    assert "previous reading" not in first["instructions"]
    assert "previous reading" in second["instructions"]
    assert "warm, slow" in second["instructions"]
    assert result.faithful is True and result.wer == 0.0
    assert result.pcm == server.spoken[1].pcm  # the faithful take, not the paraphrase


@pytest.mark.parametrize("server", [{"mode": "paraphrase"}], indirect=True)
def test_persistent_paraphrase_is_flagged_never_shipped_silently(server: RealtimeServer) -> None:
    result = RealtimeBackend(client_for(server), wer_threshold=0.15).synthesize(TEXT, OPTIONS)

    assert server.connections == 2
    assert result.faithful is False
    assert result.wer is not None and result.wer > 0.15
    assert result.transcript == paraphrase(TEXT)  # what was really said, for the manifest
    assert result.pcm in (server.spoken[0].pcm, server.spoken[1].pcm)


@pytest.mark.parametrize("server", [{"mode": "paraphrase"}], indirect=True)
def test_persistent_paraphrase_fails_when_strict(server: RealtimeServer) -> None:
    with pytest.raises(ApiError) as info:
        RealtimeBackend(client_for(server), strict=True).synthesize(TEXT, OPTIONS)
    assert info.value.exit_code == 5
    assert "word error rate" in str(info.value)
    assert "Sure! In short" in str(info.value)  # says what it said instead
    assert server.connections == 2


@pytest.mark.parametrize("server", [{"mode": "paraphrase"}], indirect=True)
def test_a_generous_threshold_accepts_without_retry(server: RealtimeServer) -> None:
    result = RealtimeBackend(client_for(server), wer_threshold=5.0).synthesize(TEXT, OPTIONS)
    assert server.connections == 1 and result.faithful is True


def test_long_text_is_spoken_in_pieces_and_joined(server: RealtimeServer) -> None:
    sentence = "The tide comes in over the flats and the birds move up the shore. "
    text = sentence * (MAX_PIECE_CHARS // len(sentence) + 5)
    result = RealtimeBackend(client_for(server)).synthesize(text, OPTIONS)
    assert server.connections == len(server.spoken) >= 2
    assert all(len(s.text) <= MAX_PIECE_CHARS for s in server.spoken)
    assert result.pcm == b"".join(s.pcm for s in server.spoken)
    assert result.faithful is True and result.wer == 0.0


def test_empty_text_opens_no_session(server: RealtimeServer) -> None:
    result = RealtimeBackend(client_for(server)).synthesize("   ", OPTIONS)
    assert result.pcm == b"" and server.connections == 0


@pytest.mark.parametrize(
    ("voice", "speed", "words"),
    [("onyx", 1.0, "speech endpoint"), ("marin", 2.0, "speeds"), ("marin", 0.2, "speeds")],
)
def test_options_the_realtime_api_cannot_honour_fail_before_connecting(
    server: RealtimeServer, voice: str, speed: float, words: str
) -> None:
    options = SpeechOptions.model_construct(model="m", voice=voice, speed=speed, instructions=None)
    with pytest.raises(ConfigError, match=words):
        RealtimeBackend(client_for(server)).synthesize("Hello.", options)
    assert server.connections == 0


def test_instructions_text() -> None:
    assert "How to speak" in session_instructions("  calm\n and low ")
    assert "calm and low" in session_instructions("calm\n and low")
    assert session_instructions(None, stricter=True).count("previous reading") == 1


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("error", "reported an error (server_error)"),
        ("silent", "went silent"),
        ("drop", "closed before the response was complete"),
        ("incomplete", "ended incomplete (max_output_tokens)"),
        ("reject401", "rejected by the Realtime API (401)"),
    ],
)
def test_failures_are_one_line_api_errors_without_secrets(mode: Mode, words: str) -> None:
    with RealtimeServer(mode=mode) as server:
        backend = RealtimeBackend(client_for(server), timeout_s=0.5)
        with pytest.raises(ApiError) as info:
            backend.synthesize(TEXT, OPTIONS)
    message = str(info.value)
    assert words in message
    assert "\n" not in message
    assert TEST_KEY not in message and "SECRET" not in message
    assert info.value.exit_code == 5
    assert server.violations == []
    if mode in ("drop", "incomplete", "silent"):
        assert "discarded" in message  # partial audio is never passed on as if complete


def test_connection_refused() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = openai.OpenAI(api_key=TEST_KEY, websocket_base_url=f"ws://127.0.0.1:{port}/v1")
    with pytest.raises(ApiError, match=r"cannot reach ws://127\.0\.0\.1"):
        RealtimeBackend(client, timeout_s=2).synthesize(TEXT, OPTIONS)


def test_wrong_endpoint_is_a_404(server: RealtimeServer) -> None:
    client = openai.OpenAI(api_key=TEST_KEY, websocket_base_url=server.base_url + "/nope")
    with pytest.raises(ApiError, match=r"not found \(404\)"):
        RealtimeBackend(client).synthesize(TEXT, OPTIONS)


# --- concurrency and the timeline --------------------------------------------------------------


@pytest.mark.parametrize("server", [{"response_latency_s": 0.15}], indirect=True)
def test_concurrent_segments_one_connection_each(server: RealtimeServer) -> None:
    texts = [f"Line number {i} of the narration, spoken on its own." for i in range(8)]
    results = synthesize_all(RealtimeBackend(client_for(server)), texts, OPTIONS, jobs=4)

    by_text = {s.text: s.pcm for s in server.spoken}
    assert [r.pcm for r in results] == [by_text[t] for t in texts]  # in the order asked
    assert [r.transcript for r in results] == texts
    assert server.connections == 8
    assert 2 <= server.max_concurrent <= 4


def test_synthesis_goes_onto_a_plain_timeline(server: RealtimeServer) -> None:
    timeline = pytest.importorskip("vnarrate.narration.timeline")
    segments = [
        Segment(start_s=0.5, end_s=3.0, text="The fog lifts."),
        Segment(start_s=3.0, end_s=6.0, text="A heron lands."),
    ]
    backend = RealtimeBackend(client_for(server))
    clips = [
        Clip(segment=i, text=seg.text, pcm=s.pcm, sample_rate=s.sample_rate)
        for i, seg in enumerate(segments)
        for s in [backend.synthesize(seg.text, OPTIONS)]
    ]
    track, placements = timeline.fit_timeline(segments, clips, 6.0, resynthesize=None)
    assert len(track) == 6 * SAMPLE_RATE
    assert [p.start_s for p in placements] == [0.5, 3.0]
    start = round(0.5 * SAMPLE_RATE)
    head = clips[0].pcm[:2000]
    assert track[start : start + 1000].tobytes() == head
