"""Providers: THE list of server kinds vnarrate knows, and what differs between them.

Takes a provider name or a base URL; gives a ProviderProfile (token-limit field, `detail`, images
and tokens per request, structured output, image URLs, key, whether it is a local server, how to
start it and pull a model) that the session resolves once per run and the stages obey. advice.py
reads a server's 400s and doctor.py checks a server, both from this table.

Sources, read 2026-11 (each profile's `sources` repeats the ones it rests on):
- OpenAI: Images and vision guide; Chat Completions reference (max_tokens is rejected by
  reasoning models in favour of max_completion_tokens; up to 1,500 images and 512 MB per request,
  500 images and 50 MB on older deployments).
- Ollama: docs/api/openai-compatibility and openai/openai.go. Request fields include max_tokens
  (-> num_predict), not max_completion_tokens (unknown fields are silently dropped, so the limit
  would vanish). Images must be base64 data URLs of jpeg/png/webp ("image URLs are not currently
  supported"); response_format json_schema is mapped to Ollama's `format`.
- vLLM: docs (engine args, OpenAI-compatible server) and entrypoints/chat_utils.py. Both token
  fields work; `--limit-mm-per-prompt` defaulted to 1 image before v0.9 and is 999 since, and a
  model may allow fewer ("At most N image(s) may be provided in one request/prompt"); http(s) image
  URLs are fetched by the server; json_schema goes to guided decoding.
- llama.cpp: tools/server (server-common.cpp oaicompat_chat_params_parse). max_completion_tokens
  is read only by recent builds, max_tokens by all; images need `--mmproj`, and http URLs are
  fetched by the server (10 MB, 10 s) while data URLs always work; response_format json_schema
  and json_object (with schema) become a grammar.
- LM Studio: lmstudio.ai/docs (OpenAI compatibility, structured output) and its bug tracker:
  max_tokens; response_format only `json_schema` or `text` (json_object -> 400
  "'response_format.type' must be 'json_schema'"); images only as base64 data URLs and WebP
  data URLs are refused ("'url' field must be a base64 encoded image").
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError
from ..models import PlanLimits, ProviderName, StructuredMode, TokenField

PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
MB = 1024 * 1024
# OpenAI's per-request caps on current deployments; a profile may say less.
API_MAX_IMAGES = 1500
API_MAX_BYTES = 50 * MB  # 512 MB on current deployments; 50 MB holds everywhere


class ProviderProfile(BaseModel):
    """What one kind of server accepts. Settings may override single fields (see the report)."""

    model_config = ConfigDict(frozen=True)

    name: ProviderName
    label: str  # for messages: "Ollama"
    token_field: TokenField
    send_detail: bool  # False: `detail` is left out of image parts (the server ignores it)
    max_images_per_request: int | None  # None: no documented cap
    max_request_bytes: int | None  # None: no documented cap
    max_input_tokens: int  # per request, well inside the usual context window
    structured_output: StructuredMode  # best mode the server supports for the chat stage
    json_object_ok: bool  # whether response_format {"type": "json_object"} is accepted
    url_images_ok: bool  # False: http(s) image URLs must be downloaded and sent as data URLs
    image_mimes: frozenset[str]  # data URL types the server decodes
    dummy_key_ok: bool  # the server ignores the key (the SDK still needs a non-empty one)
    default_base_url: str | None
    local: bool  # runs on the user's machine: no per-token price
    start_hint: str | None  # how to start the server, for "cannot connect"
    pull_hint: str | None  # how to get a model onto it ({model} is filled in)
    sources: tuple[str, ...] = Field(default=(), repr=False)


_COMMON_MIMES = frozenset({"image/jpeg", "image/png"})


def _server(name: ProviderName, label: str, **differences: Any) -> ProviderProfile:
    """A profile that differs from a typical OpenAI-compatible server only where stated."""
    typical: dict[str, Any] = {
        "token_field": "max_tokens",  # the field every compatible server knows
        "send_detail": False,  # local servers ignore it; some strict validators reject it
        "max_images_per_request": None,
        "max_request_bytes": None,
        "max_input_tokens": 32_000,  # local servers have small contexts
        "structured_output": "json_schema",
        "json_object_ok": True,
        "url_images_ok": True,
        "image_mimes": _COMMON_MIMES,
        "dummy_key_ok": True,
        "default_base_url": None,
        "local": True,
        "start_hint": None,
        "pull_hint": None,
    }
    return ProviderProfile(name=name, label=label, **{**typical, **differences})


PROFILES: dict[str, ProviderProfile] = {
    "openai": _server(
        "openai",
        "OpenAI",
        token_field="max_completion_tokens",  # reasoning models reject max_tokens
        send_detail=True,
        # 1,500 images / 512 MB on current deployments; the older 500 / 50 MB holds everywhere.
        max_images_per_request=500,
        max_request_bytes=50 * MB,
        max_input_tokens=100_000,
        image_mimes=frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"}),
        dummy_key_ok=False,
        local=False,
        default_base_url="https://api.openai.com/v1",
        sources=(
            "https://platform.openai.com/docs/guides/images-vision",
            "https://platform.openai.com/docs/api-reference/chat/create",
        ),
    ),
    "ollama": _server(
        "ollama",
        "Ollama",
        # No API cap on images; some models (llama3.2-vision) take one, and say so in a 400.
        url_images_ok=False,  # "image URLs are not currently supported"
        image_mimes=frozenset({"image/jpeg", "image/png", "image/webp"}),  # no GIF
        default_base_url="http://localhost:11434/v1",
        start_hint="start it with `ollama serve`",
        pull_hint="`ollama pull {model}`",
        sources=(
            "https://docs.ollama.com/api/openai-compatibility",
            "https://github.com/ollama/ollama/blob/main/openai/openai.go",
        ),
    ),
    "vllm": _server(
        "vllm",
        "vLLM",
        # max_tokens: honoured by every vLLM version, max_completion_tokens only by newer ones.
        # One image: the old default of --limit-mm-per-prompt, and some models' own limit.
        # Raise it with --max-images-per-request when the server was started with a higher limit.
        max_images_per_request=1,
        image_mimes=_COMMON_MIMES | {"image/webp", "image/gif"},
        default_base_url="http://localhost:8000/v1",
        start_hint="start it with `vllm serve MODEL`",
        sources=(
            "https://docs.vllm.ai/en/stable/configuration/engine_args/#-limit-mm-per-prompt",
            "https://github.com/vllm-project/vllm/blob/main/vllm/entrypoints/chat_utils.py",
        ),
    ),
    "llamacpp": _server(
        "llamacpp",
        "llama.cpp server",
        # http(s) image URLs are fetched by the server itself (curl builds; 10 MB, 10 s).
        image_mimes=_COMMON_MIMES | {"image/webp", "image/gif"},
        default_base_url="http://localhost:8080/v1",
        start_hint="start `llama-server -m model.gguf --mmproj mmproj.gguf`",
        sources=("https://github.com/ggml-org/llama.cpp/tree/master/tools/server",),
    ),
    "lmstudio": _server(
        "lmstudio",
        "LM Studio",
        json_object_ok=False,  # "'response_format.type' must be 'json_schema'"
        url_images_ok=False,  # base64 data URLs only, and not WebP ones
        default_base_url="http://localhost:1234/v1",
        start_hint="start it with `lms server start`",
        pull_hint="`lms load {model}` (or load it in LM Studio)",
        sources=(
            "https://lmstudio.ai/docs/api/openai-api",
            "https://lmstudio.ai/docs/advanced/structured-output",
            "https://github.com/lmstudio-ai/lmstudio-bug-tracker/issues/189",
            "https://github.com/lmstudio-ai/lmstudio-bug-tracker/issues/1120",
        ),
    ),
    # Anything else (hosted OpenAI-compatible APIs, proxies, unknown local servers): what most of
    # them accept. A proxy in front of an OpenAI reasoning model answers 400 naming max_tokens,
    # and explain_bad_request says what to pass. Hosted services need a real key.
    "compatible": _server(
        "compatible",
        "OpenAI-compatible server",
        max_input_tokens=100_000,
        dummy_key_ok=False,
        local=False,
    ),
}


def profile_for(name: str) -> ProviderProfile:
    """The profile of a provider name; ConfigError listing the choices when unknown."""
    profile = PROFILES.get(name.strip().lower())
    if profile is None:
        raise ConfigError(
            f"unknown provider {name!r}",
            hint=f"choose one of: auto, {', '.join(PROVIDERS)}",
        )
    return profile


def resolve_profile(provider: str, base_url: str | None) -> ProviderProfile:
    """The profile for a `--provider` value, where `auto` means detected from the base URL."""
    if provider.strip().lower() == "auto":
        return PROFILES[detect_provider(base_url)]
    return profile_for(provider)


_LOCAL_HOSTS = {"localhost", "localhost.localdomain", "host.docker.internal", "0.0.0.0"}


def _is_local(host: str) -> bool:
    if host in _LOCAL_HOSTS or host.endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified


def _host_port(base_url: str) -> tuple[str, int | None]:
    raw = base_url.strip()
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port


def is_local_url(base_url: str | None) -> bool:
    """Whether a base URL points at this machine or a private network (a server that, unless
    it was started with one, needs no key)."""
    return bool(base_url and base_url.strip()) and _is_local(_host_port(base_url or "")[0])


def detect_provider(base_url: str | None) -> ProviderName:
    """The provider a base URL points at, where the URL says so; `compatible` where it does not.

    Unset -> openai. Host names decide first (api.openai.com, *.openai.azure.com; a host naming
    ollama / lmstudio / vllm / llama.cpp). Then each server's default port, but only on a local or
    private address, where the port was most likely left as installed: 11434 Ollama, 1234 LM
    Studio, 8080 llama.cpp, 8000 vLLM. Port 8000 is also llama-cpp-python's, but guessing vLLM
    there costs little (its profile is the cautious one: one image per request, packed), while
    missing a vLLM costs a rejected request.
    """
    if not base_url or not base_url.strip():
        return "openai"
    host, port = _host_port(base_url)
    if host == "api.openai.com" or host.endswith(".openai.azure.com"):
        return "openai"
    labels = re.split(r"[.\-_]", host)
    if "ollama" in labels or host.startswith("ollama"):
        return "ollama"
    if "lmstudio" in labels or "lm-studio" in host:
        return "lmstudio"
    if "vllm" in labels:
        return "vllm"
    if "llamacpp" in labels or "llama-cpp" in host or "llama-server" in host:
        return "llamacpp"
    if _is_local(host):
        by_port: dict[int | None, ProviderName] = {
            11434: "ollama",
            1234: "lmstudio",
            8080: "llamacpp",
            8000: "vllm",
        }
        if port in by_port:
            return by_port[port]
    return "compatible"


def plan_limits(
    profile: ProviderProfile,
    *,
    max_images: int | None,
    max_input_tokens: int | None,
    max_output_tokens: int,
) -> PlanLimits:
    """The per-request caps for a server: the user's settings (None = not set) over the
    profile's, over the API's own limits."""
    return PlanLimits(
        max_images_per_request=max_images or profile.max_images_per_request or API_MAX_IMAGES,
        max_input_tokens=max_input_tokens or profile.max_input_tokens,
        max_request_bytes=profile.max_request_bytes or API_MAX_BYTES,
        max_output_tokens=max_output_tokens,
    )
