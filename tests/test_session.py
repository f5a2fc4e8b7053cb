"""Session: which servers need a key, and what a run remembers about a server (item 6, 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from _media import speech_pcm
from conftest import run_cli

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
