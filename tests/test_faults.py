"""Faults: what the API (or the network) can do to a run, through the CLI against the mocked API.

Each case ends in the right outcome, one line on stderr naming the cause, the documented exit code
(5 for API failures), and exactly the number of HTTP attempts the SDK's own retries should make
(`--max-retries`; vnarrate has no retry loop of its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai._base_client
import pytest
import respx
from conftest import TEST_KEY, THREE_SHOT_SCRIPT, chat_response, run_cli

DESC = {"title": "Three shots", "description": "A grey square crosses red, green and blue."}
ERR = "vnarrate: error: "


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Keep the SDK's retries but not its sleeps: the SDK's own retry-delay helper
    (`BaseClient._calculate_retry_timeout`) still runs, its answer is recorded, and the SDK then
    sleeps 0 s. Tests read the recorded delays to check that Retry-After was honoured."""
    computed: list[float] = []
    real = openai._base_client.BaseClient._calculate_retry_timeout

    def recorded(self: Any, *args: Any, **kwargs: Any) -> float:
        computed.append(real(self, *args, **kwargs))
        return 0.0

    monkeypatch.setattr(openai._base_client.BaseClient, "_calculate_retry_timeout", recorded)
    yield computed


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    return TEST_KEY


def describe(video: Path, *extra: str, retries: int = 2) -> Any:
    return run_cli(
        ["describe", video, "--frames", "2", "--no-cache", "--max-retries", str(retries), *extra]
    )


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(ERR), err
    assert "Traceback" not in err and TEST_KEY not in err
    return lines[0]


def error(status: int, message: str, *, code: str | None = None, type_: str = "") -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


# --- retried, then success ------------------------------------------------------------------


def test_429_with_retry_after_then_success(
    api: respx.Router, video: Path, no_backoff: list[float]
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            respx.MockResponse(
                429,
                headers={"Retry-After": "0.01"},
                json=error(429, "Rate limit reached for requests", code="rate_limit_exceeded"),
            ),
            respx.MockResponse(200, json=chat_response(DESC)),
        ]
    )
    r = describe(video)
    assert r.code == 0, r
    assert r.out == f"# {DESC['title']}\n\n{DESC['description']}\n"
    assert route.call_count == 2
    assert no_backoff == [0.01]  # the SDK waited what the server asked, not its own backoff
    # Both attempts are the same request (the SDK reuses its idempotency key for a retry).
    first, second = (c.request for c in route.calls)
    assert first.content == second.content
    assert first.headers.get("Idempotency-Key") == second.headers.get("Idempotency-Key")
    assert second.headers["x-stainless-retry-count"] == "1"


def test_429_with_retry_after_ms_is_honoured(
    api: respx.Router, video: Path, no_backoff: list[float]
) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            respx.MockResponse(429, headers={"retry-after-ms": "20"}, json=error(429, "slow down")),
            respx.MockResponse(200, json=chat_response(DESC)),
        ]
    )
    r = describe(video)
    assert r.code == 0, r
    assert route.call_count == 2 and no_backoff == [0.02]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_then_success(api: respx.Router, video: Path, status: int) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            respx.MockResponse(status, json=error(status, "The server had an error")),
            respx.MockResponse(200, json=chat_response(DESC)),
        ]
    )
    r = describe(video)
    assert r.code == 0, r
    assert r.out.startswith(f"# {DESC['title']}")
    assert route.call_count == 2


def test_two_failures_then_success_uses_every_retry(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            respx.MockResponse(503, text="Service Unavailable"),
            httpx2.ReadTimeout("read timed out"),
            respx.MockResponse(200, json=chat_response(DESC)),
        ]
    )
    r = describe(video)
    assert r.code == 0, r
    assert route.call_count == 3


def test_read_timeout_then_success(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            httpx2.ReadTimeout("read timed out"),
            respx.MockResponse(200, json=chat_response(DESC)),
        ]
    )
    r = describe(video)
    assert r.code == 0, r
    assert route.call_count == 2


# --- retried, still failing -----------------------------------------------------------------


def test_429_forever_exits_5_rate_limited(
    api: respx.Router, video: Path, no_backoff: list[float]
) -> None:
    route = api.post("/chat/completions").respond(
        429,
        headers={"Retry-After": "0.01"},
        json=error(429, "Rate limit reached for gpt-5.4-mini", code="rate_limit_exceeded"),
    )
    r = describe(video)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "rate limited (429)" in line and "Rate limit reached" in line
    assert "--jobs" in line  # what to do about it
    assert route.call_count == 3  # 1 + --max-retries 2
    assert no_backoff == [0.01, 0.01]
    assert r.out == ""


def test_429_quota_is_not_retried_forever_and_says_billing(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").respond(
        429,
        json=error(429, "You exceeded your current quota", code="insufficient_quota"),
    )
    r = describe(video, retries=1)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "429" in line and "quota" in line and "billing" in line
    assert route.call_count == 2  # the SDK retries any 429; --max-retries bounds it


def test_max_retries_zero_means_one_attempt(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").respond(500, json=error(500, "boom"))
    r = describe(video, retries=0)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "server error (500)" in line and "boom" in line
    assert route.call_count == 1


def test_503_forever_exits_5(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").respond(503, text="upstream connect error")
    r = describe(video)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "server error (503)" in line and "upstream connect error" in line
    assert route.call_count == 3


def test_read_timeout_forever_exits_5(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").mock(side_effect=httpx2.ReadTimeout("read timed out"))
    r = describe(video, "--timeout", "5")
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "timed out" in line and "--timeout" in line
    assert route.call_count == 3  # timeouts are retried by the SDK too


@pytest.mark.parametrize(
    "exc",
    [
        httpx2.RemoteProtocolError("Server disconnected without sending a response."),
        httpx2.ConnectError("[Errno 111] Connection refused"),
    ],
    ids=["dropped", "refused"],
)
def test_dropped_connection_exits_5(api: respx.Router, video: Path, exc: Exception) -> None:
    route = api.post("/chat/completions").mock(side_effect=exc)
    r = describe(video)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "cannot reach api.openai.com" in line
    assert str(exc) in line  # the cause, not just "connection error"
    assert route.call_count == 3


def test_dropped_connection_then_success(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            httpx2.RemoteProtocolError("Server disconnected without sending a response."),
            respx.MockResponse(200, json=chat_response(DESC)),
        ]
    )
    r = describe(video)
    assert r.code == 0, r
    assert route.call_count == 2


# --- not retried -----------------------------------------------------------------------------


@pytest.mark.parametrize("structured", ["json_schema", "json_object"])
def test_malformed_json_with_200(api: respx.Router, video: Path, structured: str) -> None:
    route = api.post("/chat/completions").respond(
        200,
        content=b'{"id": "chatcmpl-1", "choices": [{"index": 0, "mess',
        content_type="application/json",
    )
    r = describe(video, "--structured", structured)
    assert r.code == 5, r
    line = one_error_line(r.err)
    # The response is broken, not the model's answer: say so (not "did not match the fields").
    assert "response is not valid JSON" in line and "Unterminated string" in line, line
    assert "expected fields" not in line
    assert route.call_count == 1


def test_html_page_with_200(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").respond(
        200, html="<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
    )
    r = describe(video)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "not a Chat Completions response" in line and "--base-url" in line
    assert route.call_count == 1


def test_json_of_the_wrong_shape_with_200(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").respond(200, json={"status": "ok", "result": [1, 2]})
    r = describe(video)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "not a Chat Completions response" in line
    assert route.call_count == 1


def test_401_is_not_retried(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").respond(
        401,
        json=error(
            401,
            f"Incorrect API key provided: {TEST_KEY[:8]}****{TEST_KEY[-4:]}. You can find your "
            "API key at https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
            type_="invalid_request_error",
        ),
    )
    r = describe(video)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "API key was rejected (401)" in line and "OPENAI_API_KEY" in line
    assert route.call_count == 1


def test_400_content_policy(api: respx.Router, video: Path) -> None:
    msg = (
        "Your request was rejected as a result of our safety system. Your prompt may contain "
        "text that is not allowed by our safety system."
    )
    route = api.post("/chat/completions").respond(
        400, json=error(400, msg, code="content_policy_violation", type_="invalid_request_error")
    )
    r = describe(video)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "rejected the request (400)" in line and "safety system" in line
    assert route.call_count == 1


def test_404_unknown_model_suggests_models_command(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").respond(
        404,
        json=error(
            404,
            "The model `gpt-9-ultra` does not exist or you do not have access to it.",
            code="model_not_found",
            type_="invalid_request_error",
        ),
    )
    r = describe(video, "--model", "gpt-9-ultra")
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "model 'gpt-9-ultra' was not found (404)" in line
    assert "vnarrate models" in line and "--model" in line
    assert route.call_count == 1
    assert json.loads(route.calls[0].request.content)["model"] == "gpt-9-ultra"


# --- the speech endpoint (voiceover) ---------------------------------------------------------

SCRIPT = THREE_SHOT_SCRIPT


def voiceover(video: Path, out: Path, *extra: str) -> Any:
    return run_cli(
        [
            "voiceover", video, "--frames", "2", "--no-cache", "--max-retries", "2",
            "--tts-backend", "speech", "--jobs", "1", "--out-dir", out, *extra,
        ]
    )  # fmt: skip


def test_speech_5xx_then_success(api: respx.Router, video: Path, tmp_path: Path) -> None:
    from _media import speech_pcm

    api.post("/chat/completions").respond(200, json=chat_response(SCRIPT))
    speech = api.post("/audio/speech").mock(
        side_effect=[
            respx.MockResponse(500, json=error(500, "The server had an error")),
            respx.MockResponse(200, content=speech_pcm(0.5)),
            respx.MockResponse(503, text="busy"),
            respx.MockResponse(200, content=speech_pcm(0.5)),
        ]
    )
    # --words-per-second: no request measures the voice, so the answers above are the lines'.
    r = voiceover(video, tmp_path / "out", "--words-per-second", "2.5")
    assert r.code == 0, r
    assert speech.call_count == 4  # two segments, each retried once
    assert (tmp_path / "out" / "clip.narration.mp3").stat().st_size > 1000


def test_speech_429_forever_writes_nothing(api: respx.Router, video: Path, tmp_path: Path) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(SCRIPT))
    speech = api.post("/audio/speech").respond(
        429, headers={"Retry-After": "0.01"}, json=error(429, "Rate limit reached for tts")
    )
    r = voiceover(video, tmp_path / "out")
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "rate limited (429)" in line
    assert speech.call_count == 3  # the first segment: 1 + 2 retries; the second never starts
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())  # no half mp3, no manifest


def test_speech_html_page_with_200_is_not_spoken(
    api: respx.Router, video: Path, tmp_path: Path
) -> None:
    """An HTML page with status 200 where audio was expected (a proxy's login page, a wrong
    --tts-base-url) must fail, not be encoded as noise into the narration."""
    api.post("/chat/completions").respond(200, json=chat_response(SCRIPT))
    speech = api.post("/audio/speech").respond(
        200, html="<!DOCTYPE html><html><body>Please sign in</body></html>"
    )
    r = voiceover(video, tmp_path / "out")
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "answered with text/html, not audio" in line and "Please sign in" in line
    assert speech.call_count == 1
    assert not (tmp_path / "out" / "clip.narration.mp3").exists()


def test_speech_json_error_with_200_is_not_spoken(
    api: respx.Router, video: Path, tmp_path: Path
) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(SCRIPT))
    api.post("/audio/speech").respond(200, json={"error": {"message": "voice not found"}})
    r = voiceover(video, tmp_path / "out")
    assert r.code == 5, r
    assert "application/json, not audio" in one_error_line(r.err)


def test_an_unexpected_failure_is_one_line_and_exit_1(api: respx.Router, video: Path) -> None:
    """A bug (here: an exception no layer expects) still ends in one line and exit 1."""
    route = api.post("/chat/completions").mock(
        side_effect=RuntimeError("something\nspread over\n  three lines")
    )
    r = describe(video, retries=0)
    assert r.code == 1, r
    line = one_error_line(r.err)
    assert "unexpected error: RuntimeError: something spread over three lines" in line
    assert route.call_count == 1


def test_429_asking_for_a_long_wait_is_not_retried_and_says_so(
    api: respx.Router, video: Path
) -> None:
    """Retry-After beyond the SDK's 120 s cap: the SDK gives up at once (no retry); the message
    must not claim retries happened, and says how long the server wants."""
    route = api.post("/chat/completions").respond(
        429, headers={"Retry-After": "3600"}, json=error(429, "Rate limit reached for RPD")
    )
    r = describe(video)
    assert r.code == 5, r
    line = one_error_line(r.err)
    assert "rate limited (429)" in line and "wait 3600 s" in line and "Rate limit reached" in line
    assert "after the SDK retries" not in line
    assert route.call_count == 1


@pytest.mark.parametrize("status", [408, 409])
def test_408_and_409_are_retried(api: respx.Router, video: Path, status: int) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            respx.MockResponse(status, text="try again"),
            respx.MockResponse(200, json=chat_response(DESC)),
        ]
    )
    r = describe(video)
    assert r.code == 0, r
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (
            lambda: respx.MockResponse(200, content=b"", content_type="application/json"),
            "response is not valid JSON",
        ),
        (
            lambda: respx.MockResponse(
                200,
                json={
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [],
                },
            ),
            "not a Chat Completions response",
        ),
        (lambda: respx.MockResponse(200, json=chat_response(None)), "empty answer"),
        (
            lambda: respx.MockResponse(
                200, json=chat_response('{"title": "t", "desc', finish_reason="length")
            ),
            "cut off at 8000 tokens",
        ),
        (
            lambda: respx.MockResponse(200, json=chat_response(None, refusal="I can't help.")),
            "the model refused: I can't help.",
        ),
        (lambda: respx.MockResponse(413, html="<html>413 Request Entity Too Large</html>"), "413"),
    ],
    ids=["empty-body", "no-choices", "null-content", "length", "refusal", "413"],
)
def test_other_unusable_answers_are_not_retried(
    api: respx.Router, video: Path, response: Any, words: str
) -> None:
    route = api.post("/chat/completions").mock(side_effect=[response()])
    r = describe(video)
    assert r.code == 5, r
    assert words in one_error_line(r.err)
    assert route.call_count == 1
