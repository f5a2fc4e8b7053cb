"""Chat: structured output, JSON-mode fallback with one repair, and every bad answer's error."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import respx
from conftest import chat_response

from vnarrate.errors import ApiError
from vnarrate.models import Description
from vnarrate.server.cache import ResponseCache
from vnarrate.vision.chat import (
    AnswerMismatch,
    ChatOptions,
    answer_from_body,
    cached_answer,
    chat_body,
    chat_key,
    complete,
    repair_body,
    store_answer,
)

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


# --- one request outside a live call (the Batch API) ----------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        ChatOptions(max_tokens=8000, model="gpt-5.4-mini", reasoning_effort="low"),
        ChatOptions(max_tokens=300, model="m", token_field="max_tokens", temperature=0.2),
        ChatOptions(max_tokens=300, model="m", structured="json_object"),
        ChatOptions(max_tokens=300, model="m", structured="none"),
    ],
)
def test_chat_body_is_what_a_live_call_sends(api: respx.Router, options: ChatOptions) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(GOOD))
    complete(_client(), Description, MSGS, options)
    assert json.loads(route.calls[0].request.content) == chat_body(Description, MSGS, options)


def test_a_raw_answer_is_checked_like_a_live_one_and_cached_under_the_live_key(
    tmp_path: Path, api: respx.Router
) -> None:
    options = ChatOptions(max_tokens=8000, model="m")
    answer, usage = answer_from_body(Description, chat_response(GOOD), options)
    assert answer == Description(**GOOD) and usage.prompt_tokens == 1000 and usage.requests == 1
    cache = ResponseCache(tmp_path)
    store_answer(cache, chat_key(Description, MSGS, options), answer, usage)
    # A live run with the same request is answered from the cache: no route is mocked.
    assert complete(_client(), Description, MSGS, options, cache=cache)[0] == answer
    assert cached_answer(cache, Description, chat_key(Description, MSGS, options)) == (
        answer,
        usage,
    )


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (chat_response(None, finish_reason="length"), "cut off at 8000 tokens"),
        (chat_response(None, refusal="No."), "refused: No."),
        (chat_response("", finish_reason="content_filter"), "content filter"),
        (chat_response("  "), "empty answer"),
        (chat_response({"title": "only"}), "did not match the expected fields: description"),
        (chat_response("```json\n{}\n```"), "did not match"),
        ({"error": "nope"}, "not a Chat Completions response"),
        ("<html>", "not a Chat Completions response"),
        ({"choices": [{"message": {"content": ["a", "list"]}}]}, "not a Chat Completions"),
    ],
)
def test_bad_raw_answers_are_the_live_errors(body: object, match: str) -> None:
    with pytest.raises(ApiError, match=match):
        answer_from_body(Description, body, ChatOptions(max_tokens=8000, model="m"))


def test_json_mode_raw_answer_that_does_not_fit_asks_for_the_live_repair_turn() -> None:
    options = ChatOptions(max_tokens=300, model="m", structured="json_object")
    with pytest.raises(AnswerMismatch) as err:
        answer_from_body(Description, chat_response('Sure! {"title": "x"}'), options)
    body = chat_body(Description, MSGS, options)
    second = repair_body(body, err.value.content, err.value.detail)
    assert second["messages"][:-2] == body["messages"]
    assert second["messages"][-2] == {"role": "assistant", "content": 'Sure! {"title": "x"}'}
    assert "invalid (description: Field required)" in second["messages"][-1]["content"]
    with pytest.raises(ApiError, match="after a repair"):
        answer_from_body(Description, chat_response("no"), options, repaired=True)
    fenced = chat_response("```json\n" + json.dumps(GOOD) + "\n```")
    assert answer_from_body(Description, fenced, options)[0].title == "A dog"


def test_a_raw_answer_never_carries_the_key() -> None:
    key = "sk-test-key-000000"
    leaky = chat_response({"title": f"key {key}", "description": "x"})
    answer, _ = answer_from_body(Description, leaky, ChatOptions(max_tokens=9, model="m"), key=key)
    assert key not in answer.title
