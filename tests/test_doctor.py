"""The server check (`vnarrate models`): one verdict and a hint for every way a server can answer."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import respx

from vnarrate.server.doctor import check_server

GOOD = {"title": "A dog", "description": "A dog sleeps."}


def _client(**kw: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test-key-000000", max_retries=0, **kw)


# --- check_server ---------------------------------------------------------------------------


def _models(*ids: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 0, "owned_by": "x"} for i in ids],
    }


def test_check_server_ok(api: respx.Router) -> None:
    api.get("/models").respond(200, json=_models("gpt-5.4-mini", "gpt-5.4", "tts-1"))
    report = check_server(_client(), model="gpt-5.4-mini")
    assert report.model_dump(include={"verdict", "ok", "key_ok", "model_listed"}) == {
        "verdict": "ok",
        "ok": True,
        "key_ok": True,
        "model_listed": True,
    }
    assert report.provider == "openai" and report.models[0] == "gpt-5.4"
    text = "\n".join(report.lines())
    assert "* gpt-5.4-mini" in text and "verdict:  OK" in text


def test_check_server_model_missing_suggests_close_names(api: respx.Router) -> None:
    api.get("/models").respond(200, json=_models("llava:13b", "qwen2.5vl:7b"))
    report = check_server(_client(), model="llava:7b", provider="ollama")
    assert report.verdict == "model_missing" and not report.ok and report.model_listed is False
    assert report.hint and "llava:13b" in report.hint and "ollama pull llava:7b" in report.hint
    assert "NOT listed" in "\n".join(report.lines())


def test_check_server_ollama_latest_tag_counts(api: respx.Router) -> None:
    api.get("/models").respond(200, json=_models("llava:latest"))
    report = check_server(_client(), model="llava", provider="ollama")
    assert report.ok and report.model_listed


def test_check_server_llamacpp_serves_any_name(api: respx.Router) -> None:
    api.get("/models").respond(200, json=_models("/models/gemma-3-4b-it-Q4_K_M.gguf"))
    report = check_server(_client(), model="whatever", provider="llamacpp")
    assert report.ok and report.verdict == "ok" and report.model_listed is False


def test_check_server_bad_key(api: respx.Router) -> None:
    api.get("/models").respond(
        401, json={"error": {"message": "Incorrect API key provided", "type": "invalid_request"}}
    )
    report = check_server(_client(), model="gpt-5.4-mini")
    assert not report.ok and report.reachable and report.key_ok is False
    assert report.verdict == "bad_key"
    assert report.hint and "OPENAI_API_KEY" in report.hint


def test_check_server_bad_key_on_local_server_says_it_wants_one(api: respx.Router) -> None:
    api.get("/models").respond(401, json={"error": {"message": "Unauthorized"}})
    report = check_server(_client(), model="m", provider="vllm")
    assert report.hint and "started with an API key" in report.hint


def test_check_server_unreachable_tries_once(api: respx.Router) -> None:
    route = api.get("/models").mock(side_effect=httpx2.ConnectError("Connection refused"))
    report = check_server(_client(), model="llava", provider="ollama")
    assert (report.verdict, report.reachable, report.key_ok) == ("unreachable", False, None)
    assert "Connection refused" in report.message
    assert report.hint and "ollama serve" in report.hint and "11434" in report.hint
    assert route.call_count == 1  # no retries: a doctor must answer quickly


def test_check_server_timeout(api: respx.Router) -> None:
    api.get("/models").mock(side_effect=httpx2.ReadTimeout("slow"))
    report = check_server(_client(), model="m")
    assert report.verdict == "unreachable" and "did not answer in time" in report.message


def test_check_server_wrong_path(api: respx.Router) -> None:
    api.get("/models").respond(404, json={"error": {"message": "not found"}})
    report = check_server(_client(), model="m")
    assert report.verdict == "wrong_url" and report.hint and "/v1" in report.hint


def test_check_server_html_page(api: respx.Router) -> None:
    api.get("/models").respond(200, text="<html>hi</html>", headers={"content-type": "text/html"})
    report = check_server(_client(), model="m")
    assert report.verdict == "wrong_url" and not report.ok


def test_check_server_empty_list(api: respx.Router) -> None:
    api.get("/models").respond(200, json=_models())
    report = check_server(_client(), model="llava", provider="ollama")
    assert report.verdict == "no_models" and report.hint == "`ollama pull llava`"


def test_check_server_5xx(api: respx.Router) -> None:
    api.get("/models").respond(503, json={"error": {"message": "loading"}})
    report = check_server(_client(), model="m")
    assert report.verdict == "error" and "503" in report.message
