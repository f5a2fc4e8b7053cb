"""Session: which servers need a key, and what a run remembers about a server (item 6, 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from _media import speech_pcm
from conftest import MAX_TOKENS_400, run_cli

LOCAL = "http://127.0.0.1:8760/v1"
LOCAL_TTS = "http://127.0.0.1:8766/v1"


def _router(base_url: str) -> Iterator[respx.Router]:
    import pytest_httpx2._plugin  # noqa: F401  (registers the httpcore2 mocker)

    with respx.mock(
        base_url=base_url, using="httpcore2", assert_all_mocked=True, assert_all_called=False
    ) as router:
        yield router


@pytest.fixture
def local() -> Iterator[respx.Router]:
    """A mocked server on a loopback address (no key configured anywhere)."""
    yield from _router(LOCAL)


@pytest.fixture
def local_tts() -> Iterator[respx.Router]:
    yield from _router(LOCAL_TTS)


def _script(path: Path) -> Path:
    script = {
        "title": "t",
        "language": "en",
        "segments": [{"start_s": 0.2, "end_s": 2.5, "text": "Red, then green."}],
    }
    path.write_text(json.dumps(script))
    return path


def _auth(router: respx.Router) -> list[str]:
    return [c.request.headers.get("authorization", "") for c in router.calls]


def test_models_on_a_local_server_needs_no_key(local: respx.Router) -> None:
    models: dict[str, Any] = {
        "object": "list",
        "data": [{"id": "gpt-5.4-mini", "object": "model", "created": 0, "owned_by": "x"}],
    }
    local.get("/models").respond(200, json=models)
    r = run_cli(["models", "--base-url", LOCAL])
    assert r.code == 0, r
    assert "gpt-5.4-mini" in r.out and "no API key" not in r.err


def test_voiceover_script_on_a_local_server_needs_no_key(
    local: respx.Router, video: Path, tmp_path: Path
) -> None:
    speech = local.post("/audio/speech").respond(200, content=speech_pcm(0.8))
    out = tmp_path / "out.mp3"
    script = _script(tmp_path / "s.json")
    r = run_cli(["voiceover", video, "--script", script, "--base-url", LOCAL, "-o", out])
    assert r.code == 0, r
    assert speech.call_count == 1 and out.is_file()


def test_voiceover_script_with_a_local_speech_server_asks_openai_for_nothing(
    local_tts: respx.Router, video: Path, tmp_path: Path
) -> None:
    """--tts-base-url on a loopback address, chat on OpenAI but unused (--script): no key."""
    speech = local_tts.post("/audio/speech").respond(200, content=speech_pcm(0.8))
    out = tmp_path / "out.mp3"
    script = _script(tmp_path / "s.json")
    r = run_cli(["voiceover", video, "--script", script, "--tts-base-url", LOCAL_TTS, "-o", out])
    assert r.code == 0, r
    assert speech.call_count == 1 and out.is_file()
    assert _auth(local_tts) == ["Bearer not-needed"]


def test_voiceover_with_a_vision_call_still_needs_the_openai_key(
    local_tts: respx.Router, video: Path, tmp_path: Path
) -> None:
    r = run_cli(["voiceover", video, "--tts-base-url", LOCAL_TTS, "-o", tmp_path / "o.mp3"])
    assert r.code == 3 and "no API key" in r.err, r
    assert local_tts.calls.call_count == 0


def test_speech_on_openai_without_any_key_is_refused_early(video: Path, tmp_path: Path) -> None:
    r = run_cli(
        ["voiceover", video, "--script", _script(tmp_path / "s.json"), "-o", tmp_path / "o.mp3"]
    )
    assert r.code == 3 and "no API key" in r.err, r


# --- a server's fix is applied, said with -v, and remembered for later runs (item 5) -----------

GOOD = {"title": "Shots", "description": "Red, green, blue."}


def test_a_gateway_that_wants_max_completion_tokens_is_retried_and_remembered(
    local: respx.Router, video: Path
) -> None:
    from conftest import chat_response

    chat = local.post("/chat/completions").mock(
        side_effect=[
            respx.MockResponse(400, json=MAX_TOKENS_400),
            respx.MockResponse(200, json=chat_response(GOOD)),
        ]
    )
    r = run_cli(["describe", video, "--base-url", LOCAL, "--frames", "2", "-v"])
    assert r.code == 0, r
    assert "Red, green, blue." in r.out
    bodies = [json.loads(c.request.content) for c in chat.calls]
    assert "max_tokens" in bodies[0] and "max_completion_tokens" in bodies[1]
    assert "retrying once with max_tokens -> max_completion_tokens" in r.err
    assert "remembered in" in r.err

    # A later run starts right: one request, with the field the server wants.
    chat.side_effect = None
    chat.return_value = respx.MockResponse(200, json=chat_response(GOOD))
    again = run_cli(["describe", video, "--base-url", LOCAL, "--frames", "2", "-v", "--no-cache"])
    assert again.code == 0, again
    assert chat.call_count == 3
    assert "max_completion_tokens" in json.loads(chat.calls[2].request.content)
    assert "taught an earlier run: token_field=max_completion_tokens" in again.err


# --- prices by server: OpenAI's table, free, or unknown (item 9) --------------------------------


def _plan(*args: object) -> dict[str, Any]:
    r = run_cli(["plan", *args, "--json"])
    assert r.code == 0, r
    plan: dict[str, Any] = json.loads(r.out)["plan"]
    return plan


def test_a_compatible_server_is_not_priced_as_openai(video: Path, tmp_path: Path) -> None:
    plan = _plan(video, "--frames", "2", "--base-url", LOCAL)
    assert plan["chat_pricing"] == "unknown" and plan["chat_cost_usd"] is None
    text = run_cli(["plan", video, "--frames", "2", "--base-url", LOCAL]).out
    assert "chat unknown (no price for this server)" in text and "$" not in text
    # ... unless the user's own prices file names the model.
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"chat": {"gpt-5.4-mini": {"input": 1.0, "output": 2.0}}}))
    priced = _plan(video, "--frames", "2", "--base-url", LOCAL, "--prices", prices)
    assert priced["chat_cost_usd"] > 0


def test_a_local_server_kind_is_free_and_passes_a_zero_budget(video: Path) -> None:
    ollama = "http://localhost:11434/v1"
    plan = _plan(video, "--frames", "2", "--base-url", ollama, "--max-cost", "0")
    assert plan["chat_pricing"] == "free" and plan["cost_usd"] == 0.0
    text = run_cli(["plan", video, "--frames", "2", "--base-url", ollama]).out
    assert "chat free" in text and "estimated cost: free" in text


def test_openai_is_priced_by_the_table(video: Path) -> None:
    plan = _plan(video, "--frames", "2")
    assert plan["chat_pricing"] == "table" and plan["chat_cost_usd"] > 0
    # A gateway or proxy in front of OpenAI, declared so: OpenAI's prices, batch price included.
    declared = _plan(video, "--frames", "2", "--base-url", LOCAL, "--provider", "openai")
    assert declared["chat_pricing"] == "table"
    assert declared["chat_cost_usd"] == plan["chat_cost_usd"]
    batch = _plan(video, "--frames", "2", "--base-url", LOCAL, "--provider", "openai", "--batch")
    assert batch["chat_cost_usd"] == pytest.approx(plan["chat_cost_usd"] / 2, rel=0.01)


def test_speech_on_a_local_server_is_not_priced_as_openai(
    local_tts: respx.Router, video: Path, tmp_path: Path
) -> None:
    local_tts.post("/audio/speech").respond(200, content=speech_pcm(0.8))
    script = _script(tmp_path / "s.json")
    base = ["voiceover", video, "--script", script, "--tts-base-url", LOCAL_TTS]
    dry = run_cli([*base, "--dry-run", "--json"])
    plan = json.loads(dry.out)["plan"]
    assert plan["speech_pricing"] == "unknown" and plan["speech_cost_usd"] is None
    capped = run_cli([*base, "--max-cost", "1", "-o", tmp_path / "capped.mp3"])
    assert capped.code == 3 and "cannot check --max-cost" in capped.err, capped
    assert local_tts.calls.call_count == 0
    r = run_cli([*base, "--json", "-o", tmp_path / "o.mp3"])
    assert r.code == 0, r
    assert json.loads(r.out.splitlines()[-1])["cost_usd"] is None


# --- image tokens learned from the API's usage, for models whose rule is unpublished (17) -------


def test_image_tokens_of_an_unpublished_rule_are_learned_from_usage(
    api: respx.Router, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import TEST_KEY, chat_response

    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    args = [video, "--frames", "3", "--model", "gpt-6-luna"]
    before = _plan(*args)
    assert not before["image_rule_known"] and "learned" not in before["image_rule"]
    api.post("/chat/completions").respond(
        200, json=chat_response(GOOD, prompt_tokens=4000, model="gpt-6-luna")
    )
    r = run_cli(["describe", *args, "-v"])
    assert r.code == 0, r
    assert "learned from 1 request" in r.err
    after = _plan(*args)
    assert after["image_rule"] == "learned from 1 request"
    assert 900 < after["image_tokens_per_frame"] < 1333
    assert after["image_tokens_per_frame"] != before["image_tokens_per_frame"]
    assert any("learned from 1 request" in n for n in after["notes"])
    assert not any("assume the gpt-5.4 rule" in n for n in after["notes"])
