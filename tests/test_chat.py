"""Chat: structured output, JSON-mode fallback with one repair, and every bad answer's error."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import respx
from conftest import MAX_TOKENS_400, chat_response

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


# --- a rejected request is retried once with the fix its advice names (issue 12, item 5) ------

IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}
WITH_IMAGE = [{"role": "user", "content": [{"type": "text", "text": "what?"}, IMAGE]}]


def _sequence(api: respx.Router, *answers: tuple[int, dict]) -> respx.Route:
    return api.post("/chat/completions").mock(
        side_effect=[respx.MockResponse(code, json=body) for code, body in answers]
    )


def test_max_tokens_rejected_is_retried_once_with_the_fix(api: respx.Router) -> None:
    route = _sequence(api, (400, MAX_TOKENS_400), (200, chat_response(GOOD)))
    said: list[str] = []
    fixed: list[tuple[ChatOptions, list[str]]] = []
    opts = ChatOptions(model="gpt-5.4", max_tokens=900, token_field="max_tokens")
    answer, usage = complete(
        _client(),
        Description,
        MSGS,
        opts,
        report=said.append,
        fixed=lambda o, c: fixed.append((o, c)),
    )
    assert answer == Description(**GOOD) and usage.requests == 1
    first, second = (json.loads(c.request.content) for c in route.calls)
    assert first["max_tokens"] == 900 and "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == 900 and "max_tokens" not in second
    assert fixed[0][0].token_field == "max_completion_tokens"
    assert "max_tokens -> max_completion_tokens" in fixed[0][1][0]
    assert "retrying once" in said[0] and "max_tokens" in said[0]


def test_a_fix_that_changes_nothing_sent_is_not_retried(api: respx.Router) -> None:
    route = api.post("/chat/completions").respond(400, json=MAX_TOKENS_400)
    opts = ChatOptions(model="m", max_tokens=900, token_field="max_completion_tokens")
    with pytest.raises(ApiError, match=r"rejected the request \(400\)") as err:
        complete(_client(), Description, MSGS, opts)
    assert route.call_count == 1 and "max_completion_tokens" in (err.value.hint or "")


def test_a_second_rejection_is_not_retried_again(api: respx.Router) -> None:
    temperature_400 = {
        "error": {
            "message": "Unsupported value: 'temperature' does not support 0.2 with this "
            "model. Only the default (1) value is supported."
        }
    }
    route = _sequence(api, (400, MAX_TOKENS_400), (400, temperature_400))
    opts = ChatOptions(model="m", max_tokens=900, token_field="max_tokens", temperature=0.2)
    with pytest.raises(ApiError, match="temperature"):
        complete(_client(), Description, MSGS, opts)
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("message", "opts", "check"),
    [
        (
            "Unsupported value: 'temperature' does not support 0.2 with this model. Only the "
            "default (1) value is supported.",
            {"temperature": 0.2},
            lambda body: "temperature" not in body,
        ),
        (
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with "
            "this model.",
            {},
            lambda body: body["response_format"] == {"type": "json_object"},
        ),
        (
            "Unsupported value: 'reasoning_effort' does not support 'none' with this model. "
            "Supported values are: 'low', 'medium', 'high', and 'xhigh'.",
            {"reasoning_effort": "none"},
            lambda body: body["reasoning_effort"] == "low",
        ),
        (
            "Extra inputs are not permitted: messages.0.content.1.image_url.detail",
            {},
            lambda body: "detail" not in body["messages"][0]["content"][1]["image_url"],
        ),
    ],
    ids=["temperature", "response_format", "reasoning_effort", "detail"],
)
def test_each_known_fix_is_applied_on_the_retry(
    api: respx.Router, message: str, opts: dict, check: object
) -> None:
    route = _sequence(api, (400, {"error": {"message": message}}), (200, chat_response(GOOD)))
    options = ChatOptions(model="gpt-6.2-astra", max_tokens=900, provider="compatible", **opts)
    answer, _ = complete(_client(), Description, WITH_IMAGE, options)
    assert answer.title == "A dog" and route.call_count == 2
    assert check(json.loads(route.calls[1].request.content))  # type: ignore[operator]
    assert "detail" in WITH_IMAGE[0]["content"][1]["image_url"]  # the caller's copy untouched


def test_the_cache_keys_the_request_actually_sent(api: respx.Router, tmp_path) -> None:
    from vnarrate.server.cache import ResponseCache

    cache = ResponseCache(tmp_path)
    route = _sequence(api, (400, MAX_TOKENS_400), (200, chat_response(GOOD)))
    opts = ChatOptions(model="m", max_tokens=900, token_field="max_tokens")
    fixed: list[ChatOptions] = []
    complete(_client(), Description, MSGS, opts, cache=cache, fixed=lambda o, _: fixed.append(o))
    assert route.call_count == 2
    # A later run that starts with the fix gets the answer from the cache: nothing is sent.
    answer, usage = complete(_client(), Description, MSGS, fixed[0], cache=cache)
    assert answer.title == "A dog" and usage.requests == 0 and route.call_count == 2


# --- a non-JSON answer says how it began and what to try (issue 12, item 8) -------------------


def test_a_non_json_answer_shows_its_start_masked_and_what_to_try(api: respx.Router) -> None:
    key = "sk-test-key-000000"
    said = "Sure! Here is the video: a man " + key + " walks " + "very " * 40 + "far."
    api.post("/chat/completions").respond(200, json=chat_response(said))
    with pytest.raises(ApiError) as err:
        complete(_client(), Description, MSGS, ChatOptions(max_tokens=800, model="m"), key=key)
    text = str(err.value)
    assert "did not answer in JSON" in text and "Sure! Here is the video" in text
    assert key not in text and "***" in text and "Invalid JSON" not in text
    assert "--structured json_object" in (err.value.hint or "")
    assert "--model" in (err.value.hint or "") and len(text) < 400


def test_json_mode_non_json_after_the_repair_says_what_to_try(api: respx.Router) -> None:
    api.post("/chat/completions").respond(200, json=chat_response("cat sat mat " * 3))
    opts = ChatOptions(max_tokens=800, model="m", structured="json_object")
    with pytest.raises(ApiError, match="after a repair; it began: 'cat sat mat") as err:
        complete(_client(), Description, MSGS, opts)
    assert "--structured none" in (err.value.hint or "")


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
