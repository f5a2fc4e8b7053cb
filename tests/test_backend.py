"""Choosing the speech backend (`--tts-backend auto|speech|realtime`), and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
import respx
from conftest import TEST_KEY

from vnarrate.errors import ApiError
from vnarrate.narration.realtime import (
    RealtimeBackend,
)
from vnarrate.narration.speech import (
    SpeechEndpointBackend,
    SpeechOptions,
)
from vnarrate.server.cache import ResponseCache

TEXT = "A heron lands on the jetty at 7 o'clock, and the fog lifts over 2,000 boats."
OPTIONS = SpeechOptions(model="gpt-realtime-2.1-mini", voice="marin", instructions="warm, slow")

from vnarrate.narration import backend  # noqa: E402
from vnarrate.settings import Settings  # noqa: E402

DEFAULT_REALTIME_MODEL = Settings().realtime_model


def choose_backend(*args: Any, **kw: Any) -> backend.BackendChoice:
    kw.setdefault("realtime_model", DEFAULT_REALTIME_MODEL)
    return backend.choose_backend(*args, **kw)


# --- choose_backend ---------------------------------------------------------------------------


def openai_client() -> openai.OpenAI:
    return openai.OpenAI(api_key=TEST_KEY, max_retries=0)


def test_explicit_modes() -> None:
    client = openai_client()
    speech = choose_backend("speech", client, provider="openai", tts_model="gpt-4o-mini-tts")
    assert isinstance(speech.backend, SpeechEndpointBackend)
    assert speech.model == "gpt-4o-mini-tts" and "speech" in speech.reason

    rt = choose_backend(
        "realtime", client, provider="openai", tts_model="gpt-4o-mini-tts", strict=True
    )
    assert isinstance(rt.backend, RealtimeBackend)
    assert rt.model == DEFAULT_REALTIME_MODEL == rt.backend.model
    assert rt.backend.strict is True

    named = choose_backend("realtime", client, provider="openai", tts_model="gpt-realtime-2.1")
    assert named.model == "gpt-realtime-2.1"


def test_auto_with_a_realtime_model_name_needs_no_request() -> None:
    choice = choose_backend("auto", openai_client(), provider="openai", tts_model="gpt-realtime-2")
    assert isinstance(choice.backend, RealtimeBackend)
    assert choice.model == "gpt-realtime-2" and "Realtime model" in choice.reason


def test_auto_uses_compatible_servers_speech_endpoint() -> None:
    choice = choose_backend("auto", openai_client(), provider="vllm", tts_model="kokoro")
    assert isinstance(choice.backend, SpeechEndpointBackend)
    assert "vllm" in choice.reason


def test_auto_keeps_the_speech_endpoint_while_openai_serves_the_model(api: respx.Router) -> None:
    api.get("/models/gpt-4o-mini-tts").respond(
        200, json={"id": "gpt-4o-mini-tts", "object": "model", "created": 0, "owned_by": "system"}
    )
    choice = choose_backend("auto", openai_client(), provider="openai", tts_model="gpt-4o-mini-tts")
    assert isinstance(choice.backend, SpeechEndpointBackend)
    assert choice.model == "gpt-4o-mini-tts"


def test_auto_falls_back_to_realtime_when_the_speech_model_is_gone(api: respx.Router) -> None:
    api.get("/models/gpt-4o-mini-tts").respond(
        404,
        json={
            "error": {
                "message": "The model `gpt-4o-mini-tts` does not exist.",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
        },
    )
    choice = choose_backend(
        "auto",
        openai_client(),
        provider="openai",
        tts_model="gpt-4o-mini-tts",
        realtime_model="gpt-realtime-2.1-mini",
        wer_threshold=0.2,
    )
    assert isinstance(choice.backend, RealtimeBackend)
    assert choice.model == "gpt-realtime-2.1-mini"
    assert choice.backend.wer_threshold == 0.2
    assert "model_not_found" in choice.reason and "gpt-4o-mini-tts" in choice.reason


def test_auto_rejected_key_is_an_error_and_other_failures_keep_speech(api: respx.Router) -> None:
    route = api.get("/models/gpt-4o-mini-tts")
    route.respond(401, json={"error": {"message": f"Incorrect API key provided: {TEST_KEY}"}})
    with pytest.raises(ApiError) as info:
        choose_backend("auto", openai_client(), provider="openai", tts_model="gpt-4o-mini-tts")
    assert TEST_KEY not in str(info.value)

    route.respond(403, json={"error": {"message": "missing scope"}})
    choice = choose_backend("auto", openai_client(), provider="openai", tts_model="gpt-4o-mini-tts")
    assert isinstance(choice.backend, SpeechEndpointBackend)
    assert "not checked: 403" in choice.reason


def test_auto_remembers_a_clear_answer_for_the_day(api: respx.Router, tmp_path: Path) -> None:
    # An identical rerun must make no request at all, the model check included (issue 5).
    route = api.get("/models/gpt-4o-mini-tts")
    route.respond(403, json={"error": {"message": "missing scope"}})
    cache = ResponseCache(tmp_path / "cache")

    def choose() -> Any:
        return choose_backend(
            "auto", openai_client(), provider="openai", tts_model="gpt-4o-mini-tts", cache=cache
        )

    assert "not checked: 403" in choose().reason
    assert "not checked: 403" in choose().reason
    assert route.call_count == 2  # "cannot tell" is not remembered

    route.respond(404, json={"error": {"message": "gone", "code": "model_not_found"}})
    assert isinstance(choose().backend, RealtimeBackend)
    assert route.call_count == 3
    again = choose()
    assert isinstance(again.backend, RealtimeBackend) and "model_not_found" in again.reason
    assert route.call_count == 3  # answered from the cache


# --- voices -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("voice", "mode", "model", "refused"),
    [
        ("nobody", "auto", "gpt-4o-mini-tts", "OpenAI has no voice 'nobody'"),
        ("onyx", "realtime", "gpt-4o-mini-tts", "only on the speech endpoint"),
        ("nova", "auto", "gpt-realtime-2.1-mini", "only on the speech endpoint"),
        ("onyx", "auto", "gpt-4o-mini-tts", None),  # auto may keep the speech endpoint
        ("onyx", "speech", "gpt-4o-mini-tts", None),
        ("Marin", "realtime", "gpt-realtime-2.1-mini", None),
        ("voice_1234", "realtime", "gpt-realtime-2.1-mini", None),  # the account's own
    ],
)
def test_check_voice_knows_which_backend_has_which_voice(
    voice: str, mode: str, model: str, refused: str | None
) -> None:
    from vnarrate.errors import UsageError

    def check() -> None:
        backend.check_voice(voice, provider="openai", mode=mode, tts_model=model)  # type: ignore[arg-type]

    if refused is None:
        check()
    else:
        with pytest.raises(UsageError, match=refused) as exc:
            check()
        assert exc.value.exit_code == 2
    # Other servers name their own voices: never refused here.
    backend.check_voice(voice, provider="compatible", mode=mode, tts_model=model)  # type: ignore[arg-type]


@pytest.mark.parametrize(("asked", "spoken"), [("onyx", "cedar"), ("nova", "marin"),
                                               ("fable", "ballad"), ("coral", "coral")])  # fmt: skip
def test_auto_falling_back_maps_a_speech_only_voice_to_the_closest(
    api: respx.Router, asked: str, spoken: str
) -> None:
    api.get("/models/gpt-4o-mini-tts").respond(404, json={"error": {"message": "gone"}})
    choice = choose_backend("auto", openai_client(), provider="openai",
                            tts_model="gpt-4o-mini-tts", voice=asked)  # fmt: skip
    assert isinstance(choice.backend, RealtimeBackend)
    assert choice.speaking(OPTIONS).voice == spoken and choice.voice == spoken
    assert choice.speaking(OPTIONS).model == DEFAULT_REALTIME_MODEL
    if asked == spoken:
        assert choice.notice == ""
    else:
        assert (
            choice.notice
            == f"the Realtime API has no voice {asked!r}: {spoken!r}, the closest, speaks"
        )
        assert choice.notice in choice.reason
