"""Chat stage: messages -> a validated pydantic answer (structured output) and its token usage.

Takes an OpenAI client, messages and the few request options; gives (answer, Usage). Uses
`chat.completions.parse(response_format=Model)` where the server supports json_schema, and JSON
mode with validation and one repair turn where it does not. A cut-off, refused, empty or
non-JSON answer becomes an ApiError with advice, never an empty output. A 400 whose advice names a
fix (server/advice.py: the token field, structured output, `detail`, temperature, reasoning
effort) that changes what was sent is retried once with it, and the caller is told (`fixed`) so
the run, and later runs, start right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ApiError, redact
from ..models import StructuredMode, TokenField, Usage
from ..server.advice import advise_bad_request
from ..server.cache import request_key
from ..server.client import map_api_error, one_line, server_message

if TYPE_CHECKING:
    import openai

T = TypeVar("T", bound=BaseModel)


class ResponseStore(Protocol):
    """What chat needs from a response cache (see cache.py)."""

    def get_json(self, key: str) -> dict[str, Any] | None: ...

    def put_json(self, key: str, value: dict[str, Any]) -> None: ...


class ChatOptions(BaseModel):
    """The request options chat needs (session/options.py builds them once per run)."""

    model_config = ConfigDict(frozen=True)

    model: str
    max_tokens: int
    token_field: TokenField = "max_completion_tokens"
    temperature: float | None = None
    reasoning_effort: str | None = None
    structured: StructuredMode = "json_schema"
    base_url: str | None = None
    provider: str = "openai"
    send_detail: bool = True  # False: `detail` is left out of image parts (a server rejected it)


# What a successful retry tells the caller: the options that worked and what was changed.
Fixed = Callable[[ChatOptions, list[str]], None]
# Called with the messages, usage and response schema (JSON) of each single request the server
# answered (never for cache hits).
Observe = Callable[[Sequence[dict[str, Any]], Usage, str], None]


def _quiet(_: str) -> None:
    pass


class RejectedRequest(ApiError):
    """A 400 whose advice names a setting change (`fix`) that may let the request pass."""

    def __init__(self, error: ApiError, fix: Mapping[str, Any]) -> None:
        super().__init__(error.message, hint=error.hint)
        self.fix = dict(fix)


def request_params(options: ChatOptions) -> dict[str, Any]:
    """The request fields besides model, messages and response_format."""
    params: dict[str, Any] = {options.token_field: options.max_tokens}
    if options.temperature is not None:
        params["temperature"] = options.temperature
    if options.reasoning_effort is not None:
        params["reasoning_effort"] = options.reasoning_effort
    return params


def usage_of(completion: Any) -> Usage:
    u = getattr(completion, "usage", None)
    if u is None:
        return Usage(requests=1)
    prompt_details = getattr(u, "prompt_tokens_details", None)
    completion_details = getattr(u, "completion_tokens_details", None)
    return Usage(
        prompt_tokens=u.prompt_tokens or 0,
        completion_tokens=u.completion_tokens or 0,
        total_tokens=u.total_tokens or 0,
        cached_tokens=(getattr(prompt_details, "cached_tokens", 0) or 0),
        reasoning_tokens=(getattr(completion_details, "reasoning_tokens", 0) or 0),
        requests=1,
    )


def _length_error(options: ChatOptions) -> ApiError:
    return ApiError(
        f"the answer was cut off at {options.max_tokens} tokens ({options.token_field})",
        hint="raise --max-completion-tokens (reasoning models spend tokens thinking first)",
    )


def _not_json_error(options: ChatOptions) -> ApiError:
    return ApiError(
        "the server answered with something that is not a Chat Completions response "
        "(an HTML or text page?)",
        hint=f"check --base-url ({options.base_url or 'https://api.openai.com/v1'}): "
        "it usually ends in /v1",
    )


def _extract_json(text: str) -> str:
    """The JSON object in a reply that may wrap it in prose or ``` fences."""
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.S)
    if fenced:
        return fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start != -1 and end > start else text


def _check_choice(completion: Any, options: ChatOptions) -> Any:
    if isinstance(completion, str) or not getattr(completion, "choices", None):
        raise _not_json_error(options)
    choice = completion.choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        raise ApiError(f"the model refused: {one_line(message.refusal)}")
    if choice.finish_reason == "length":
        raise _length_error(options)
    if choice.finish_reason == "content_filter":
        raise ApiError("the answer was withheld by the provider's content filter")
    if not (message.content or "").strip():
        raise _empty_error()
    return message


def _empty_error() -> ApiError:
    return ApiError(
        "the model returned an empty answer",
        hint="try again, raise --max-completion-tokens, or try another --model",
    )


def _call(client: openai.OpenAI, options: ChatOptions, key: str, **kwargs: Any) -> Any:
    import openai

    try:
        return kwargs.pop("_fn")(model=options.model, **kwargs)
    except openai.LengthFinishReasonError:
        raise _length_error(options) from None
    except openai.ContentFilterFinishReasonError:
        raise ApiError("the answer was withheld by the provider's content filter") from None
    except openai.APIError as exc:
        error = map_api_error(
            exc, model=options.model, base_url=options.base_url, key=key, provider=options.provider
        )
        if isinstance(exc, openai.BadRequestError):
            advice = advise_bad_request(one_line(server_message(exc)), options.provider)
            if advice is not None and advice.fix:
                raise RejectedRequest(error, advice.fix) from None
        raise error from None
    except (AttributeError, TypeError):
        # The SDK hands back a plain str for a non-JSON body (an HTML page with status 200),
        # which parse() then trips over.
        raise _not_json_error(options) from None
    except json.JSONDecodeError as exc:
        # The HTTP body itself is not JSON (cut off, or broken by a proxy): parse() reports bad
        # *content* as a ValidationError, so this is the response, not the model's answer.
        raise ApiError(
            f"the server's response is not valid JSON ({exc.msg} at character {exc.pos})",
            hint="a cut-off or garbled response; try again, or check --base-url",
        ) from None
    except ValidationError as exc:
        # parse() validates the content itself; a non-conforming answer lands here.
        if not str(exc.errors()[0].get("input", "x")).strip():
            raise _empty_error() from None
        raise _answer_error(exc, options, key) from None


_TRY_INSTEAD = {
    "json_schema": "pass --structured json_object (JSON mode) or --structured none (the schema "
    "goes in the prompt), or try another --model",
    "json_object": "pass --structured none (the schema goes in the prompt), or try another --model",
    "none": "try another --model, one that can answer in JSON",
}


def _answer_error(
    exc: ValidationError,
    options: ChatOptions,
    key: str,
    *,
    said: str | None = None,
    after: str = "",
) -> ApiError:
    """What to say of an answer that failed validation: a non-JSON answer shows how it began
    (secrets masked) and what to try; a JSON answer names the first field that is wrong."""
    err = exc.errors()[0]
    if err.get("type") != "json_invalid":
        return ApiError(f"the answer did not match the expected fields{after}: {_first_error(exc)}")
    text = said if said is not None else str(err.get("input", ""))
    begins = one_line(redact(text, key), 80)
    return ApiError(
        f"the model did not answer in JSON{after}; it began: {begins!r} ({options.model} "
        + (
            "likely cannot answer in JSON)"
            if options.structured == "none"
            else f"likely cannot do structured output with --structured {options.structured})"
        ),
        hint=_TRY_INSTEAD.get(options.structured, _TRY_INSTEAD["none"]),
    )


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "answer"
        return f"{where}: {err['msg']}"
    return one_line(str(exc), 160)


def complete(
    client: openai.OpenAI,
    schema: type[T],
    messages: Sequence[dict[str, Any]],
    options: ChatOptions,
    *,
    key: str = "",
    cache: ResponseStore | None = None,
    report: Callable[[str], None] = _quiet,
    fixed: Fixed | None = None,
    observe: Observe | None = None,
) -> tuple[T, Usage]:
    """Ask for an answer of type `schema`; return it validated, with the usage it cost.

    With a cache, an identical earlier request (same model, messages with image bytes,
    parameters, schema, server) is answered from it at zero usage; only validated answers are
    stored, so a bad answer is never served again. A 400 whose advice names a fix that changes
    what was sent is retried once with that fix (never more), `report` says so, and `fixed` is
    told the options that worked.
    """
    try:
        return _ask(client, schema, messages, options, key, cache, observe)
    except RejectedRequest as rejected:
        better, changes = apply_fix(options, rejected.fix, messages)
        if not changes:
            raise ApiError(rejected.message, hint=rejected.hint) from None
        report(
            f"{options.model}: {one_line(rejected.message, 200)}; retrying once with "
            f"{', '.join(changes)}"
        )
    try:
        answer, usage = _ask(client, schema, messages, better, key, cache, observe)
    except RejectedRequest as again:
        raise ApiError(again.message, hint=again.hint) from None
    if fixed is not None:
        fixed(better, changes)
    return answer, usage


def apply_fix(
    options: ChatOptions, fix: Mapping[str, Any], messages: Sequence[dict[str, Any]] = ()
) -> tuple[ChatOptions, list[str]]:
    """`options` changed as a 400's advice says, only where that changes what was sent, and the
    changes in words ("max_tokens -> max_completion_tokens"); no change: the same options, []."""
    update: dict[str, Any] = {}
    said: list[str] = []
    wanted = fix.get("token_field")
    if wanted in ("max_tokens", "max_completion_tokens") and wanted != options.token_field:
        update["token_field"] = wanted
        said.append(f"{options.token_field} -> {wanted}")
    wanted = fix.get("structured_output")
    if wanted in ("json_schema", "json_object", "none") and wanted != options.structured:
        update["structured"] = wanted
        said.append(f"--structured {options.structured} -> {wanted}")
    if "temperature" in fix and fix["temperature"] is None and options.temperature is not None:
        update["temperature"] = None
        said.append("no temperature")
    if "reasoning_effort" in fix and options.reasoning_effort is not None:
        wanted = fix["reasoning_effort"]
        if wanted != options.reasoning_effort:
            update["reasoning_effort"] = wanted
            said.append(f"reasoning_effort {wanted}" if wanted else "no reasoning_effort")
    if fix.get("send_detail") is False and options.send_detail and _has_detail(messages):
        update["send_detail"] = False
        said.append("no image detail")
    return options.model_copy(update=update), said


def _has_detail(messages: Sequence[dict[str, Any]]) -> bool:
    return any("detail" in part for part in _image_parts(messages))


def _image_parts(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                image = part.get("image_url") if isinstance(part, dict) else None
                if isinstance(image, dict):
                    parts.append(image)
    return parts


def sent_messages(messages: Sequence[dict[str, Any]], options: ChatOptions) -> list[dict[str, Any]]:
    """The messages as they are sent: without image `detail` where the server refused it."""
    return list(messages) if options.send_detail else _without_detail(messages)


def _without_detail(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of `messages` whose image parts carry no `detail` (the originals are untouched)."""

    def part(p: Any) -> Any:
        if isinstance(p, dict) and isinstance(p.get("image_url"), dict):
            image = {k: v for k, v in p["image_url"].items() if k != "detail"}
            return {**p, "image_url": image}
        return p

    out = []
    for m in messages:
        content = m.get("content")
        out.append({**m, "content": [part(p) for p in content]} if isinstance(content, list) else m)
    return out


def _ask(
    client: openai.OpenAI,
    schema: type[T],
    messages: Sequence[dict[str, Any]],
    options: ChatOptions,
    key: str,
    cache: ResponseStore | None,
    observe: Observe | None,
) -> tuple[T, Usage]:
    """One request as `options` say (from the cache when identical), keyed by what is sent."""
    sent = sent_messages(messages, options)
    cache_key = chat_key(schema, messages, options) if cache is not None else ""
    if cache is not None:
        hit = cached_answer(cache, schema, cache_key)
        if hit is not None:
            return hit[0], Usage()  # a cache hit costs nothing
    answer, usage = _complete(client, schema, sent, options, key)
    answer = _without_key(answer, key)
    if observe is not None and usage.requests == 1:
        observe(sent, usage, json.dumps(schema.model_json_schema(), separators=(",", ":")))
    if cache is not None:
        store_answer(cache, cache_key, answer, usage)
    return answer, usage


def _without_key(answer: T, key: str) -> T:
    """`answer` with the API key masked wherever the model (or a compromised server) quoted it,
    so that it is never written, cached or read aloud."""
    if len(key) < 4:
        return answer

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(key, "***")
        if isinstance(value, list):
            return [mask(v) for v in value]
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        return value

    data = answer.model_dump(mode="json")
    masked = mask(data)
    return answer if masked == data else type(answer).model_validate(masked)


def _complete(
    client: openai.OpenAI,
    schema: type[T],
    messages: Sequence[dict[str, Any]],
    options: ChatOptions,
    key: str,
) -> tuple[T, Usage]:
    params = request_params(options)
    if options.structured == "json_schema":
        completion = _call(
            client,
            options,
            key,
            _fn=client.chat.completions.parse,
            messages=list(messages),
            response_format=schema,
            **params,
        )
        message = _check_choice(completion, options)
        parsed = getattr(message, "parsed", None)
        if parsed is None:
            try:
                parsed = schema.model_validate_json(_extract_json(message.content))
            except ValidationError as exc:
                raise _answer_error(exc, options, key, said=message.content) from None
        return parsed, usage_of(completion)
    return _complete_json_mode(client, schema, list(messages), options, params, key)


def _complete_json_mode(
    client: openai.OpenAI,
    schema: type[T],
    messages: list[dict[str, Any]],
    options: ChatOptions,
    params: dict[str, Any],
    key: str,
) -> tuple[T, Usage]:
    """For servers without json_schema: describe the schema in the prompt, validate, repair once."""
    msgs, params = _json_mode_request(schema, messages, options, params)
    usage = Usage()
    for attempt in range(2):  # the answer, then at most one repair turn
        completion = _call(
            client, options, key, _fn=client.chat.completions.create, messages=msgs, **params
        )
        message = _check_choice(completion, options)
        usage = usage + usage_of(completion)
        try:
            return schema.model_validate_json(_extract_json(message.content)), usage
        except ValidationError as exc:
            last_error = _first_error(exc)
            if attempt == 1:
                after = " after a repair"
                raise _answer_error(exc, options, key, said=message.content, after=after) from None
            msgs = [*msgs, *_repair_turn(message.content, last_error)]
    raise AssertionError("unreachable: the repair turn returns or raises")


def _json_mode_request(
    schema: type[BaseModel],
    messages: Sequence[dict[str, Any]],
    options: ChatOptions,
    params: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """JSON mode's first request: the schema described in a system message (and
    response_format json_object where the server takes it)."""
    shape = json.dumps(schema.model_json_schema(), separators=(",", ":"))
    instruction = f"Answer with one JSON object only, matching this JSON schema: {shape}"
    msgs = [*messages, {"role": "system", "content": instruction}]
    if options.structured == "json_object":
        params = {**params, "response_format": {"type": "json_object"}}
    return msgs, params


def _repair_turn(content: str, error: str) -> list[dict[str, Any]]:
    """What JSON mode adds to the conversation when the answer does not validate."""
    return [
        {"role": "assistant", "content": content},
        {
            "role": "user",
            "content": f"That JSON is invalid ({error}). Send the corrected JSON object only.",
        },
    ]


# --- one request outside a live call: its cache key, its body, its answer (the Batch API) ------


class AnswerMismatch(ApiError):
    """A JSON-mode answer that does not fit the schema: a live run repairs it once (`detail`
    and `content` are what the repair turn quotes; `usage` what the answer cost)."""

    def __init__(self, message: str, *, content: str, detail: str, usage: Usage) -> None:
        super().__init__(message)
        self.content, self.detail, self.usage = content, detail, usage


def chat_key(
    schema: type[BaseModel], messages: Sequence[dict[str, Any]], options: ChatOptions
) -> str:
    """The response cache's key of one chat request: what `complete` looks up and stores under."""
    return request_key(
        "chat",
        {
            "model": options.model,
            "messages": sent_messages(messages, options),
            "response_format": schema,
            "structured": options.structured,
            **request_params(options),
        },
        provider=options.provider,
        base_url=options.base_url,
    )


def cached_answer(cache: ResponseStore, schema: type[T], key: str) -> tuple[T, Usage] | None:
    """The validated answer stored under `key` and the usage it cost when it was asked; None when
    there is none, or when it no longer fits the schema (an entry from an older schema)."""
    hit = cache.get_json(key)
    if hit is None:
        return None
    try:
        answer = schema.model_validate(hit["answer"])
    except (KeyError, TypeError, ValidationError):
        return None
    try:
        usage = Usage.model_validate(hit.get("usage") or {})
    except ValidationError:
        usage = Usage(requests=1)
    return answer, usage


def store_answer(cache: ResponseStore, key: str, answer: BaseModel, usage: Usage) -> None:
    """Keep a validated answer (and what it cost) under its request's key."""
    cache.put_json(key, {"answer": answer.model_dump(mode="json"), "usage": usage.model_dump()})


def chat_body(
    schema: type[BaseModel], messages: Sequence[dict[str, Any]], options: ChatOptions
) -> dict[str, Any]:
    """The JSON body a live run POSTs to /chat/completions for this request: what the SDK's
    `parse()` sends (its own response_format for the schema) or, in JSON mode, what `create()`
    sends for the first turn."""
    params = request_params(options)
    messages = sent_messages(messages, options)
    if options.structured == "json_schema":
        from openai.lib._parsing import type_to_response_format_param

        fmt = type_to_response_format_param(schema)
        return {
            "model": options.model,
            "stream": False,
            "messages": list(messages),
            **params,
            "response_format": fmt,
        }
    msgs, params = _json_mode_request(schema, messages, options, params)
    return {"model": options.model, "messages": msgs, **params}


def repair_body(body: dict[str, Any], content: str, detail: str) -> dict[str, Any]:
    """The second turn of a JSON-mode request (`body`, the first) whose answer `content` did not
    validate (`detail`, the AnswerMismatch's): what a live run sends next."""
    return {**body, "messages": [*body["messages"], *_repair_turn(content, detail)]}


class _Fields:
    """A JSON object read by attribute, None where a field is missing (as the SDK's lenient
    models read a response), so the live checks apply unchanged to a raw body."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return _fields(self._data.get(name))


def _fields(value: Any) -> Any:
    if isinstance(value, dict):
        return _Fields(value)
    if isinstance(value, list):
        return [_fields(v) for v in value]
    return value


def answer_from_body(
    schema: type[T], body: Any, options: ChatOptions, *, key: str = "", repaired: bool = False
) -> tuple[T, Usage]:
    """A validated answer (and its usage) from a raw Chat Completions response body, such as a
    Batch API output line's `response.body`, with the checks of a live answer: refused, cut
    off, filtered, empty or non-JSON answers are ApiErrors. A JSON-mode answer that does not fit
    is an AnswerMismatch (the caller may send the repair turn) unless it is the repair."""
    completion = _fields(body)
    try:
        message = _check_choice(completion, options)
        content = str(message.content)
    except (AttributeError, TypeError):
        raise _not_json_error(options) from None
    try:
        usage = usage_of(completion)
    except ValidationError:
        usage = Usage(requests=1)
    try:
        # As a live answer: parse() validates the content, then fenced or wrapped JSON is tried.
        answer = schema.model_validate_json(_extract_json(content))
    except ValidationError as exc:
        if options.structured == "json_schema" and not content.strip():
            raise _empty_error() from None
        detail = _first_error(exc)
        if options.structured == "json_schema" or repaired:
            after = " after a repair" if repaired else ""
            raise _answer_error(exc, options, key, said=content, after=after) from None
        raise AnswerMismatch(
            f"the answer did not match the expected fields: {detail}",
            content=content,
            detail=detail,
            usage=usage,
        ) from None
    return _without_key(answer, key), usage
