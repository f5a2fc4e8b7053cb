"""Chat: structured output, JSON-mode fallback with one repair, and every bad answer's error."""

from __future__ import annotations

import json

import openai
import pytest
import respx
from conftest import chat_response

from vnarrate.errors import ApiError
from vnarrate.models import Description
from vnarrate.vision.chat import ChatOptions, complete

MSGS = [{"role": "user", "content": "describe"}]
GOOD = {"title": "A dog", "description": "A dog sleeps."}


def _client() -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test-key-000000", max_retries=0)


def test_structured_output_parsed_and_usage_captured(api: respx.Router) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(GOOD))
    answer, usage = complete(
        _client(), Description, MSGS, ChatOptions(max_tokens=8000, model="gpt-5.4-mini")
    )
    assert answer == Description(**GOOD)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens) == (1000, 200, 50)
    body = json.loads(route.calls[0].request.content)
    assert body["max_completion_tokens"] == 8000
    assert "max_tokens" not in body and "temperature" not in body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True


def test_optional_fields_sent_only_when_set(api: respx.Router) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(GOOD))
    opts = ChatOptions(
        model="m",
        token_field="max_tokens",
        max_tokens=300,
        temperature=0.2,
        reasoning_effort="low",
    )
    complete(_client(), Description, MSGS, opts)
    body = json.loads(route.calls[0].request.content)
    assert body["max_tokens"] == 300 and "max_completion_tokens" not in body
    assert body["temperature"] == 0.2 and body["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (chat_response(None, finish_reason="length"), "cut off at 8000 tokens"),
        (chat_response('{"title": "A', finish_reason="length"), "cut off"),
        (chat_response(None, refusal="I can't help with that."), "refused: I can't help"),
        (chat_response(""), "empty answer"),
        (chat_response("   "), "empty answer"),
        (chat_response({"title": "only"}), "description"),
    ],
)
def test_bad_answers_become_clear_errors(api: respx.Router, response: dict, match: str) -> None:
    api.post("/chat/completions").respond(200, json=response)
    with pytest.raises(ApiError, match=match) as err:
        complete(_client(), Description, MSGS, ChatOptions(max_tokens=8000, model="m"))
    assert err.value.exit_code == 5


def test_html_page_with_status_200(api: respx.Router) -> None:
    api.post("/chat/completions").respond(
        200, text="<html><body>Welcome</body></html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(ApiError, match=r"not a Chat Completions response.*base-url"):
        complete(_client(), Description, MSGS, ChatOptions(max_tokens=8000, model="m"))


def test_malformed_json_with_status_200(api: respx.Router) -> None:
    api.post("/chat/completions").respond(
        200, text='{"id": "x", "choices": [', headers={"content-type": "application/json"}
    )
    with pytest.raises(ApiError):
        complete(_client(), Description, MSGS, ChatOptions(max_tokens=8000, model="m"))


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (
            401,
            {"error": {"message": "Incorrect API key provided: sk-test-***"}},
            "rejected \\(401\\)",
        ),
        (404, {"error": {"message": "The model `nope` does not exist"}}, "model 'm' was not found"),
        (
            400,
            {
                "error": {
                    "message": "Your request was rejected by the safety system",
                    "code": "content_policy_violation",
                }
            },
            "rejected the request \\(400\\)",
        ),
        (429, {"error": {"message": "Rate limit reached"}}, "rate limited"),
        (503, {"error": {"message": "overloaded"}}, "server error \\(503\\)"),
    ],
)
def test_status_errors(api: respx.Router, status: int, body: dict, match: str) -> None:
    api.post("/chat/completions").respond(status, json=body)
    with pytest.raises(ApiError, match=match) as err:
        complete(_client(), Description, MSGS, ChatOptions(max_tokens=8000, model="m"))
    assert "sk-test-key" not in str(err.value)
    assert "\n" not in str(err.value)


def test_json_mode_validates_and_repairs_once(api: respx.Router) -> None:
    route = api.post("/chat/completions").mock(
        side_effect=[
            respx.MockResponse(200, json=chat_response('Sure! {"title": "x"}')),
            respx.MockResponse(200, json=chat_response("```json\n" + json.dumps(GOOD) + "\n```")),
        ]
    )
    answer, usage = complete(
        _client(),
        Description,
        MSGS,
        ChatOptions(max_tokens=8000, model="m", structured="json_object"),
    )
    assert answer.title == "A dog" and usage.requests == 2
    first = json.loads(route.calls[0].request.content)
    assert first["response_format"] == {"type": "json_object"}
    second = json.loads(route.calls[1].request.content)
    assert "invalid" in second["messages"][-1]["content"]


def test_json_mode_gives_up_after_one_repair(api: respx.Router) -> None:
    api.post("/chat/completions").respond(200, json=chat_response("no json here"))
    with pytest.raises(ApiError, match="after a repair"):
        complete(
            _client(), Description, MSGS, ChatOptions(max_tokens=8000, model="m", structured="none")
        )
