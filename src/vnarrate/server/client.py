"""Client: the one place that builds `OpenAI(...)` and turns SDK exceptions into ours.

Takes a key, base URL, timeout and retry count; gives an `openai.OpenAI`. Retries are the SDK's
own (connection errors, timeouts, 408/409/429/5xx, honouring Retry-After): no loop of ours.
"""

from __future__ import annotations

import functools
import platform
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from ..errors import ApiError, ConfigError, redact
from .advice import explain_bad_request

if TYPE_CHECKING:
    import openai


def make_client(
    *, api_key: str, base_url: str | None, timeout: float, max_retries: int
) -> openai.OpenAI:
    """An OpenAI client; `base_url` None means OpenAI itself."""
    import openai  # imported here so that `vnarrate --help` stays fast

    try:
        return _client_class()(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
    except openai.OpenAIError as exc:  # e.g. missing credentials
        raise ConfigError(
            redact(str(exc), api_key),
            hint="set OPENAI_API_KEY in the environment or in .env, or pass --api-key",
        ) from None


OsName = Literal["MacOS", "Linux", "Windows", "FreeBSD", "OpenBSD", "Unknown"]


def _os_name() -> OsName:
    """The SDK's X-Stainless-OS value, from os.uname() (no subprocess)."""
    names: dict[str, OsName] = {
        "darwin": "MacOS",
        "linux": "Linux",
        "windows": "Windows",
        "freebsd": "FreeBSD",
        "openbsd": "OpenBSD",
    }
    return names.get(platform.system().lower(), "Unknown")


@functools.cache
def _client_class() -> type[openai.OpenAI]:
    import openai

    class OpenAI(openai.OpenAI):  # same name, so the User-Agent stays "OpenAI/Python x.y"
        """openai.OpenAI that starts no process: the SDK guesses the OS for a telemetry header
        with platform.platform(), which on Linux runs `uname -p` in a subprocess. Copies made by
        `with_options` are of this class too."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._platform = _os_name()

    return OpenAI


def _public_url(url: str) -> str:
    """`url` without user:password@ (a URL may carry credentials)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a server's message fits one line of stderr."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


MAX_SDK_WAIT_S = 120  # the SDK does not retry when Retry-After asks for longer


def _retry_after_s(exc: openai.APIStatusError) -> float | None:
    """The server's Retry-After (or retry-after-ms) in seconds, when it is a number."""
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers[name]) / scale
        except (KeyError, ValueError):
            continue
    return None


def server_message(exc: openai.APIStatusError) -> str:
    """The server's own words in an error answer (its `error.message`, or the body)."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body
    return exc.message


def map_api_error(
    exc: BaseException,
    *,
    model: str | None = None,
    base_url: str | None = None,
    key: str = "",
    provider: str | None = None,
) -> ApiError:
    """One clear ApiError (exit 5) for any SDK failure, naming the cause and what to do."""
    import openai

    where = redact(_public_url(base_url), key) if base_url else "api.openai.com"
    if isinstance(exc, openai.APITimeoutError):
        return ApiError(
            f"the request to {where} timed out after the SDK's retries",
            hint="raise --timeout or --max-retries, or send fewer frames",
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {one_line(redact(str(cause), key), 120)}" if cause and str(cause) else ""
        return ApiError(
            f"cannot reach {where}{detail}",
            hint="check the network and --base-url; the SDK already retried",
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        msg = one_line(redact(server_message(exc), key))
        if isinstance(exc, openai.AuthenticationError):
            return ApiError(
                f"the API key was rejected (401): {msg}",
                hint="check OPENAI_API_KEY / --api-key",
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return ApiError(f"permission denied (403): {msg}")
        if isinstance(exc, openai.NotFoundError):
            what = f"model {model!r}" if model else "the resource"
            return ApiError(
                f"{what} was not found (404): {msg}",
                hint="pick another --model, or run `vnarrate models` to list what the server has",
            )
        if isinstance(exc, openai.RateLimitError):
            wait = _retry_after_s(exc)
            if wait is not None and wait > MAX_SDK_WAIT_S:
                return ApiError(
                    f"rate limited (429): the server asks to wait {wait:.0f} s, longer than "
                    f"the SDK waits between retries ({MAX_SDK_WAIT_S} s): {msg}",
                    hint="try again later, or lower --jobs",
                )
            quota = "quota" in msg.lower() or "billing" in msg.lower()
            return ApiError(
                f"rate limited (429) after {'no' if quota else 'the SDK'} retries: {msg}",
                hint="check your plan and billing"
                if quota
                else "lower --jobs, raise --max-retries, or try later",
            )
        if isinstance(exc, openai.BadRequestError):
            advice = explain_bad_request(msg, provider) if provider else None
            return ApiError(f"the server rejected the request (400): {msg}", hint=advice)
        if status >= 500:
            return ApiError(f"server error ({status}) after the SDK's retries: {msg}")
        return ApiError(f"the API answered {status}: {msg}")
    if isinstance(exc, openai.APIResponseValidationError):
        return ApiError("the server's answer did not have the expected shape")
    if isinstance(exc, openai.OpenAIError):
        return ApiError(one_line(redact(str(exc), key)))
    return ApiError(one_line(redact(f"{type(exc).__name__}: {exc}", key)))
