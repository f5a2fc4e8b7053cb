"""Providers: what differs between OpenAI and the OpenAI-compatible servers, and a server check.

Takes a provider name or a base URL; gives a ProviderProfile (token-limit field, `detail`, images
per request, structured output, image URLs, key) that the prompts and chat stages obey. Also turns
a server's 400 message into advice naming the `--provider` or setting to use, and checks a server
(GET /models, key, model) for `vnarrate models` / `doctor`.

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

import difflib
import ipaddress
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError

if TYPE_CHECKING:
    import openai

TokenField = Literal["max_completion_tokens", "max_tokens"]
StructuredMode = Literal["json_schema", "json_object", "none"]
ProviderName = Literal["openai", "ollama", "vllm", "llamacpp", "lmstudio", "compatible"]

PROVIDERS: tuple[str, ...] = ("openai", "ollama", "vllm", "llamacpp", "lmstudio", "compatible")
MB = 1024 * 1024


class ProviderProfile(BaseModel):
    """What one kind of server accepts. Settings may override single fields (see the report)."""

    model_config = ConfigDict(frozen=True)

    name: str
    label: str  # for messages: "Ollama"
    token_field: TokenField
    send_detail: bool  # False: `detail` is left out of image parts (the server ignores it)
    max_images_per_request: int | None  # None: no documented cap
    max_request_bytes: int | None  # None: no documented cap
    structured_output: StructuredMode  # best mode the server supports for the chat stage
    json_object_ok: bool  # whether response_format {"type": "json_object"} is accepted
    url_images_ok: bool  # False: http(s) image URLs must be downloaded and sent as data URLs
    image_mimes: frozenset[str]  # data URL types the server decodes
    dummy_key_ok: bool  # the server ignores the key (the SDK still needs a non-empty one)
    default_base_url: str | None
    sources: tuple[str, ...] = Field(default=(), repr=False)


_COMMON_MIMES = frozenset({"image/jpeg", "image/png"})


def _server(name: str, label: str, **differences: Any) -> ProviderProfile:
    """A profile that differs from a typical OpenAI-compatible server only where stated."""
    typical: dict[str, Any] = {
        "token_field": "max_tokens",  # the field every compatible server knows
        "send_detail": False,  # local servers ignore it; some strict validators reject it
        "max_images_per_request": None,
        "max_request_bytes": None,
        "structured_output": "json_schema",
        "json_object_ok": True,
        "url_images_ok": True,
        "image_mimes": _COMMON_MIMES,
        "dummy_key_ok": True,
        "default_base_url": None,
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
        image_mimes=frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"}),
        dummy_key_ok=False,
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
        sources=("https://github.com/ggml-org/llama.cpp/tree/master/tools/server",),
    ),
    "lmstudio": _server(
        "lmstudio",
        "LM Studio",
        json_object_ok=False,  # "'response_format.type' must be 'json_schema'"
        url_images_ok=False,  # base64 data URLs only, and not WebP ones
        default_base_url="http://localhost:1234/v1",
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
    "compatible": _server("compatible", "OpenAI-compatible server", dummy_key_ok=False),
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


def detect_provider(base_url: str | None) -> str:
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
    raw = base_url.strip()
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
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
        by_port = {11434: "ollama", 1234: "lmstudio", 8080: "llamacpp", 8000: "vllm"}
        if port in by_port:
            return by_port[port]
    return "compatible"


# --- a server's 400, explained --------------------------------------------------------------


class BadRequestAdvice(BaseModel):
    """What to tell the user about a rejected request, and the setting change that would fix it.

    `fix` names Settings fields (token_field, structured_output, max_images, image_urls,
    send_detail, temperature, reasoning_effort) with the value to use, so a caller may retry once.
    """

    advice: str
    fix: dict[str, Any] = Field(default_factory=dict)


_REJECT_WORDS = re.compile(
    r"unsupported|unrecogni[sz]ed|unknown|not supported|not permitted|not allowed|extra (?:inputs|"
    r"fields)|unexpected|invalid|not a valid|does not support|must be",
    re.I,
)
_IMAGE_LIMIT = re.compile(
    r"at most (\d+) image|max(?:imum)?(?: number of)?(?: images)?(?: is| of|:)?\s*(\d+)\s*image|"
    r"too many images[^0-9]*(?:max(?:imum)?(?: is| of)?:?\s*)?(\d+)?|"
    r"images? (?:limit|per (?:request|prompt))[^0-9]*(\d+)",
    re.I,
)
_USE_INSTEAD = re.compile(r"use '?\"?(max_completion_tokens|max_tokens)'?\"? instead", re.I)


def parse_image_limit(message: str) -> int | None:
    """The image count a server says it allows per request, from its error message, or None."""
    m = _IMAGE_LIMIT.search(message)
    if not m:
        return None
    for group in m.groups():
        if group is not None:
            return int(group)
    return None


def advise_bad_request(message: str, provider: str) -> BadRequestAdvice | None:
    """Advice for a 400 that names a parameter this tool sets, or None when it names none."""
    text = " ".join(message.split())
    low = text.lower()
    label = PROFILES[provider].label if provider in PROFILES else provider
    rejects = bool(_REJECT_WORDS.search(text))

    # Too many images (vLLM: "At most 1 image(s) may be provided in one request.").
    limit = parse_image_limit(text)
    if limit is not None or "too many images" in low:
        if limit == 0:
            return BadRequestAdvice(
                advice="the model on this server does not take images: pick a vision model "
                "with --model (run `vnarrate models` to list them)",
            )
        n = limit if limit is not None else 1
        return BadRequestAdvice(
            advice=f"this server takes at most {n} image(s) per request: pass --pack grid to "
            f"tile the frames into {n} contact sheet(s), or --max-images-per-request {n}"
            + ("" if provider == "vllm" else " (or --provider vllm)")
            + "; a vLLM server started with --limit-mm-per-prompt '{\"image\":16}' takes more",
            fix={"max_images": n, "pack": "grid"},
        )

    # Token-limit field: a value too large for the model, or the wrong field name.
    if re.search(r"max_(?:completion_)?tokens", low) and re.search(
        r"too large|at most \d+|maximum (?:value|is)|must be (?:less|<=)", low
    ):
        return BadRequestAdvice(
            advice="the token limit is more than this model allows: lower "
            "--max-completion-tokens (the message above says how far)",
        )
    wanted = _USE_INSTEAD.search(text)
    if wanted:
        field = wanted.group(1).lower()
        return _token_advice(field, provider)
    if rejects and "max_completion_tokens" in low:
        return _token_advice("max_tokens", provider)
    if rejects and re.search(r"\bmax_tokens\b", low):
        return _token_advice("max_completion_tokens", provider)

    # Structured output.
    if "response_format" in low or "json_schema" in low or "json_object" in low:
        if re.search(r"must be '?json_schema'?", low) or (
            "json_object" in low and "json_schema" in low and "must be" in low
        ):
            return BadRequestAdvice(
                advice="this server takes only json_schema structured output (LM Studio does): "
                "pass --provider lmstudio or --structured json_schema",
                fix={"structured_output": "json_schema"},
            )
        if rejects or "not support" in low:
            return BadRequestAdvice(
                advice=f"{label} rejected structured output (response_format): pass "
                "--structured json_object (JSON mode) or --structured none (the schema goes in "
                "the prompt and the answer is validated and repaired once)",
                fix={"structured_output": "none" if "json_object" in low else "json_object"},
            )

    # Images.
    if "image urls are not" in low or "use base64" in low or "must be a base64" in low:
        return BadRequestAdvice(
            advice="this server takes images only as base64 data URLs: pass "
            + ("--provider ollama or --provider lmstudio, or " if provider == "compatible" else "")
            + "--image-urls download (vnarrate then downloads and embeds them)",
            fix={"image_urls": "download"},
        )
    if "failed to download image" in low or "error while downloading" in low:
        return BadRequestAdvice(
            advice="the server could not download the image URL itself: pass --image-urls "
            "download (vnarrate then downloads it and sends the data)",
            fix={"image_urls": "download"},
        )
    if (
        "image input is not supported" in low
        or "does not support image" in low
        or "not a multimodal model" in low
        or "image_url is only supported by certain models" in low
    ):
        hint = " (llama.cpp: start llama-server with --mmproj)" if provider == "llamacpp" else ""
        return BadRequestAdvice(
            advice="the model on this server does not take images: pick a vision model with "
            f"--model{hint}; `vnarrate models` lists what the server offers",
        )
    if "invalid image input" in low or "invalid image" in low:
        return BadRequestAdvice(
            advice="this server could not read an image's format: pass "
            + ("--provider ollama (JPEG/PNG/WebP only) " if provider != "ollama" else "")
            + "so images are sent as JPEG or PNG data URLs, or convert the image",
            fix={"image_urls": "download"},
        )
    if rejects and re.search(r"\bdetail\b", low):
        return BadRequestAdvice(
            advice="this server rejects the image `detail` field: pass --provider compatible "
            "(or the server's own --provider), which leaves it out",
            fix={"send_detail": False},
        )

    # Sampling and reasoning options.
    if re.search(r"\btemperature\b", low) and (rejects or "only the default" in low):
        return BadRequestAdvice(
            advice="this model does not take --temperature (reasoning models allow only the "
            "default): leave it unset",
            fix={"temperature": None},
        )
    if "reasoning" in low and rejects:
        return BadRequestAdvice(
            advice=f"{label} does not take --reasoning-effort with this model: leave it unset",
            fix={"reasoning_effort": None},
        )

    # Too much for the context or the request size.
    if "context length" in low or "context size" in low or "too large" in low or "413" in low:
        return BadRequestAdvice(
            advice="the request is too large for this model: send fewer or smaller images "
            "(--max-frames, --detail low) or tile them (--pack grid)",
        )
    return None


def _token_advice(field: str, provider: str) -> BadRequestAdvice:
    if field == "max_completion_tokens":
        return BadRequestAdvice(
            advice="this server wants max_completion_tokens: pass --provider openai or "
            "--token-field max_completion_tokens",
            fix={"token_field": "max_completion_tokens"},
        )
    suggest = provider if provider in ("ollama", "lmstudio", "vllm", "llamacpp") else "ollama"
    return BadRequestAdvice(
        advice=f"this server wants max_tokens: pass --provider {suggest} or "
        "--token-field max_tokens",
        fix={"token_field": "max_tokens"},
    )


def explain_bad_request(message: str, provider: str) -> str | None:
    """One line of advice for a 400 naming a parameter (which --provider or setting to use)."""
    advice = advise_bad_request(message, provider)
    return advice.advice if advice else None


# --- checking a server ------------------------------------------------------------------------

Verdict = Literal[
    "ok", "model_missing", "no_models", "bad_key", "unreachable", "wrong_url", "error"
]


class ServerReport(BaseModel):
    """What `vnarrate models` / `doctor` found out about the configured server."""

    base_url: str
    provider: str
    model: str
    verdict: Verdict
    ok: bool  # the configured model can be asked (or the server does not say it cannot)
    reachable: bool
    key_ok: bool | None  # None: not known (the server could not be reached)
    models: list[str] = Field(default_factory=list)
    model_listed: bool | None = None  # None: the list could not be read
    message: str
    hint: str | None = None
    notes: list[str] = Field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as the CLI prints it (stdout), one fact a line."""
        out = [
            f"server:   {self.base_url} ({PROFILES.get(self.provider, PROFILES['compatible']).label})",
            f"reached:  {'yes' if self.reachable else 'no'}",
        ]
        if self.key_ok is not None:
            out.append(f"key:      {'accepted' if self.key_ok else 'rejected'}")
        if self.models:
            out.append(f"models:   {len(self.models)}")
            out.extend(f"  {'*' if m == self._listed_as() else ' '} {m}" for m in self.models)
        if self.model_listed is not None:
            out.append(
                f"model:    {self.model} ({'listed' if self.model_listed else 'NOT listed'})"
            )
        out.append(f"verdict:  {'OK' if self.ok else 'PROBLEM'}: {self.message}")
        if self.hint:
            out.append(f"hint:     {self.hint}")
        out.extend(f"note:     {n}" for n in self.notes)
        return out

    def _listed_as(self) -> str | None:
        return _find_model(self.model, self.models)


def _find_model(model: str, models: list[str]) -> str | None:
    """The listed id the configured model refers to. Ollama serves `llava` as `llava:latest`."""
    if model in models:
        return model
    for m in models:
        if ":" not in model and m == f"{model}:latest":
            return m
        if m.lower() == model.lower():
            return m
    return None


def _pull_hint(provider: str, model: str, models: list[str]) -> str:
    close = difflib.get_close_matches(model, models, n=3, cutoff=0.5)
    did_you_mean = f"did you mean {', '.join(close)}? " if close else ""
    how = {
        "ollama": f"`ollama pull {model}`, or ",
        "lmstudio": f"`lms load {model}` (or load it in LM Studio), or ",
    }.get(provider, "")
    return f"{did_you_mean}{how}pick one of the listed models with --model"


_START = {
    "ollama": "start it with `ollama serve`",
    "lmstudio": "start it with `lms server start`",
    "llamacpp": "start `llama-server -m model.gguf --mmproj mmproj.gguf`",
    "vllm": "start it with `vllm serve MODEL`",
}


def _failure(exc: Exception, base_url: str, profile: ProviderProfile) -> tuple[Verdict, str, str]:
    """(verdict, message, hint) for a failed GET /models."""
    import openai

    if isinstance(exc, openai.AuthenticationError):
        if profile.dummy_key_ok:
            return (
                "bad_key",
                "the API key was rejected (401)",
                ("this server was started with an API key: pass the same one with --api-key"),
            )
        return "bad_key", "the API key was rejected (401)", "check OPENAI_API_KEY / --api-key"
    if isinstance(exc, openai.PermissionDeniedError):
        return (
            "bad_key",
            "the key may not list models (403)",
            ("check the key's permissions, or the project it belongs to"),
        )
    if isinstance(exc, openai.APITimeoutError):
        return (
            "unreachable",
            f"{base_url} did not answer in time",
            ("is the server running and loaded? check --base-url"),
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        why = f": {' '.join(str(cause).split())[:120]}" if cause and str(cause) else ""
        start = f" ({_START[profile.name]})" if profile.name in _START else ""
        default = profile.default_base_url
        hint = f"is the server running{start}? check --base-url" + (
            f" (default for {profile.label}: {default})" if default else ""
        )
        return "unreachable", f"cannot connect to {base_url}{why}", hint
    if isinstance(exc, openai.NotFoundError):
        return (
            "wrong_url",
            f"{base_url}/models does not exist (404)",
            ("the base URL usually ends in /v1"),
        )
    if isinstance(exc, openai.APIStatusError):
        return (
            "error",
            f"the server answered {exc.status_code} to GET /models",
            ("try again; if it persists, look at the server's log"),
        )
    # A web page or another API at this URL (the SDK hands back text, not a model list).
    return (
        "wrong_url",
        f"{base_url} answered, but not with an OpenAI model list",
        ("check --base-url: it usually ends in /v1"),
    )


def check_server(client: openai.OpenAI, *, model: str, provider: str | None = None) -> ServerReport:
    """GET /models once (no retries, short timeout) and judge the key, the URL and the model.

    Never raises for a server problem: every outcome is a ServerReport with a verdict.
    """
    import openai

    base_url = str(client.base_url).rstrip("/")
    name = provider if provider in PROFILES else detect_provider(base_url)
    profile = PROFILES[name]

    def report(verdict: Verdict, message: str, **kw: Any) -> ServerReport:
        known_key = verdict in ("ok", "model_missing", "no_models")
        fields: dict[str, Any] = {
            "ok": verdict == "ok",
            "reachable": verdict != "unreachable",
            "key_ok": True if known_key else (False if verdict == "bad_key" else None),
            **kw,
        }
        return ServerReport(
            base_url=base_url,
            provider=name,
            model=model,
            verdict=verdict,
            message=message,
            **fields,
        )

    try:
        # One quick try: a doctor that waits through the SDK's retries looks hung.
        page = client.with_options(max_retries=0, timeout=10.0).models.list()
        models = sorted({str(m.id) for m in page.data})
    except (openai.OpenAIError, AttributeError, TypeError, ValueError) as exc:
        verdict, message, hint = _failure(exc, base_url, profile)
        return report(verdict, message, hint=hint)

    if not models:
        how = {"ollama": f"`ollama pull {model}`", "lmstudio": "load a model in LM Studio"}
        return report(
            "no_models",
            "the server lists no models",
            models=models,
            model_listed=False,
            hint=how.get(name, "load a model on the server"),
        )
    if _find_model(model, models) is not None:
        notes = [f"{profile.label} ignores the key unless it was started with one"]
        return report(
            "ok",
            f"{model} is available",
            models=models,
            model_listed=True,
            notes=notes if profile.dummy_key_ok else [],
        )
    if name == "llamacpp":
        # A single-model llama-server answers whatever `model` says with the model it loaded.
        return report(
            "ok",
            f"{model} is not listed, but llama-server serves its loaded model whatever the name",
            models=models,
            model_listed=False,
        )
    return report(
        "model_missing",
        f"{model} is not among the server's {len(models)} models",
        models=models,
        model_listed=False,
        hint=_pull_hint(name, model, models),
    )
