"""Advice for a server's 400: which --provider or setting to use, and the fix to retry with."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from vnarrate.server.advice import advise_bad_request, explain_bad_request, parse_image_limit

GOOD = {"title": "A dog", "description": "A dog sleeps."}


def _client(**kw: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test-key-000000", max_retries=0, **kw)


# --- advice for a 400 -------------------------------------------------------------------------

CASES = [
    # OpenAI reasoning models
    (
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "ollama",
        "--token-field max_completion_tokens",
        {"token_field": "max_completion_tokens"},
    ),
    # A server that knows only max_tokens (OpenAI-style and pydantic-style rejections)
    (
        "Unrecognized request argument supplied: max_completion_tokens",
        "compatible",
        "--token-field max_tokens",
        {"token_field": "max_tokens"},
    ),
    (
        "[{'type': 'extra_forbidden', 'loc': ('body', 'max_completion_tokens'), "
        "'msg': 'Extra inputs are not permitted'}]",
        "openai",
        "this server wants max_tokens: pass --provider ollama",
        {"token_field": "max_tokens"},
    ),
    (
        "max_tokens is too large: 100000. This model supports at most 16384 completion tokens",
        "openai",
        "lower --max-completion-tokens",
        {},
    ),
    # vLLM's image cap, old and new wording
    (
        "At most 1 image(s) may be provided in one request.",
        "compatible",
        "--pack grid",
        {"max_images": 1, "pack": "grid"},
    ),
    (
        "At most 4 image(s) may be provided in one prompt.",
        "vllm",
        "at most 4 image(s)",
        {"max_images": 4, "pack": "grid"},
    ),
    ("At most 0 image(s) may be provided in one prompt.", "vllm", "vision model", {}),
    ("Too many images in request. Max is 500.", "openai", "at most 500", {"max_images": 500}),
    # Structured output
    (
        "'response_format.type' must be 'json_schema'",
        "compatible",
        "--provider lmstudio",
        {"structured_output": "json_schema"},
    ),
    (
        "'response_format.type' must be 'json_schema' or 'text'",
        "compatible",
        "--structured json_schema",
        {"structured_output": "json_schema"},
    ),
    (
        "Invalid parameter: 'response_format' of type 'json_schema' is not supported with "
        "this model.",
        "openai",
        "--structured json_object",
        {"structured_output": "json_object"},
    ),
    # Images
    (
        "image URLs are not currently supported, please use base64 encoded data instead",
        "compatible",
        "--image-urls download",
        {"image_urls": "download"},
    ),
    (
        "'url' field must be a base64 encoded image.",
        "lmstudio",
        "--image-urls download",
        {"image_urls": "download"},
    ),
    ("Failed to download image", "llamacpp", "--image-urls download", {"image_urls": "download"}),
    (
        "image input is not supported - hint: if this is unexpected, you may need to provide "
        "the mmproj",
        "llamacpp",
        "--mmproj",
        {},
    ),
    ("invalid image input", "compatible", "--provider ollama", {"image_urls": "download"}),
    (
        "Unrecognized request argument supplied: detail",
        "compatible",
        "leaves it out",
        {"send_detail": False},
    ),
    # Sampling, reasoning, size
    (
        "Unsupported value: 'temperature' does not support 0.2 with this model. Only the "
        "default (1) value is supported.",
        "openai",
        "--temperature",
        {"temperature": None},
    ),
    (
        "Unrecognized request argument supplied: reasoning_effort",
        "vllm",
        "--reasoning-effort",
        {"reasoning_effort": None},
    ),
    (
        "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens.",
        "vllm",
        "--max-frames",
        {},
    ),
]


@pytest.mark.parametrize(("message", "provider", "says", "fix"), CASES)
def test_bad_request_advice(message: str, provider: str, says: str, fix: dict[str, Any]) -> None:
    advice = advise_bad_request(message, provider)
    assert advice is not None
    assert says in advice.advice
    for key, value in fix.items():
        assert advice.fix[key] == value
    assert explain_bad_request(message, provider) == advice.advice


@pytest.mark.parametrize(
    "message",
    ["Invalid model name: 'gpt-x'", "messages: field required", "Something went wrong", ""],
)
def test_unrelated_400_gets_no_advice(message: str) -> None:
    assert explain_bad_request(message, "openai") is None


def test_parse_image_limit() -> None:
    assert parse_image_limit("At most 2 image(s) may be provided in one request.") == 2
    assert parse_image_limit("maximum of 12 images per request") == 12
    assert parse_image_limit("no number here") is None


def test_a_rejected_reasoning_effort_falls_to_the_lowest_the_model_takes() -> None:
    # GPT-6 Sol/Astra reject `none` (Sol also `minimal`).
    msg = (
        "Unsupported value: 'reasoning_effort' does not support 'minimal' with this model. "
        "Supported values are: 'low', 'medium', 'high', and 'xhigh'."
    )
    advice = advise_bad_request(msg, "openai")
    assert advice is not None and advice.fix == {"reasoning_effort": "low"}
    plain = advise_bad_request("Unrecognized request argument supplied: reasoning_effort", "vllm")
    assert plain is not None and plain.fix == {"reasoning_effort": None}
