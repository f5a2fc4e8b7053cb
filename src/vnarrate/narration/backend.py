"""Speech backend choice (`--tts-backend speech|realtime|auto`): settings -> the backend that
speaks, why, and with which model.

Takes the speech client, the provider and the models; gives a BackendChoice. Sits above both
backends (the speech endpoint in speech.py, the Realtime API in realtime.py) so neither knows of
the other. `auto` asks OpenAI whether the speech model still exists (remembered for the UTC day).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ConfigError
from ..models import SpeechBackendMode
from ..server.cache import request_key
from ..server.client import map_api_error
from .realtime import RealtimeBackend, is_realtime_model
from .speech import SpeechBackend, SpeechEndpointBackend

if TYPE_CHECKING:
    import openai

    from ..server.cache import ResponseCache

BackendMode = SpeechBackendMode


class BackendChoice(NamedTuple):
    """What `choose_backend` picked: the backend, why (for --verbose and the manifest), and the
    model it will speak with."""

    backend: SpeechBackend
    reason: str
    model: str


def choose_backend(
    mode: BackendMode,
    client: openai.OpenAI,
    *,
    provider: str,
    tts_model: str,
    realtime_model: str,
    realtime_client: openai.OpenAI | None = None,
    timeout_s: float = 60.0,
    wer_threshold: float = 0.15,
    strict: bool = False,
    cache: ResponseCache | None = None,
) -> BackendChoice:
    """Pick the speech backend for `--tts-backend`.

    `client` is the one that serves speech (the TTS server when it has its own base URL) and
    `provider` its kind ("openai", "vllm", "compatible", ...). `realtime_client` serves the
    Realtime API (default: `client`). `auto`:
    - a `tts_model` with "realtime" in its name -> Realtime, with that model;
    - a provider other than OpenAI -> the speech endpoint (compatible servers have no Realtime);
    - OpenAI: asks GET /models/{tts_model} (free, no audio): 404 -> Realtime with
      `realtime_model` (the speech models are shut down on 2027-01-06); found, or the check
      fails for another reason than the key -> the speech endpoint. With a `cache`, a clear
      answer (found or 404) is remembered for the rest of the UTC day, so an identical rerun
      makes no request at all.
    """

    def realtime(model: str, reason: str) -> BackendChoice:
        backend = RealtimeBackend(
            realtime_client or client,
            model=model,
            timeout_s=timeout_s,
            wer_threshold=wer_threshold,
            strict=strict,
        )
        return BackendChoice(backend, reason, model)

    def speech(reason: str) -> BackendChoice:
        return BackendChoice(SpeechEndpointBackend(client), reason, tts_model)

    rt_model = tts_model if is_realtime_model(tts_model) else realtime_model
    if mode == "speech":
        return speech(f"--tts-backend speech: /audio/speech with {tts_model!r}")
    if mode == "realtime":
        return realtime(rt_model, f"--tts-backend realtime: Realtime API with {rt_model!r}")
    if mode != "auto":
        raise ConfigError(f"unknown speech backend {mode!r}", hint="use speech, realtime or auto")

    if is_realtime_model(tts_model):
        return realtime(
            tts_model, f"auto: {tts_model!r} is a Realtime model, so the Realtime API speaks"
        )
    if provider != "openai":
        return speech(f"auto: {provider} server, so its /audio/speech endpoint with {tts_model!r}")
    available, why = _speech_model_checked(client, tts_model, cache)
    if available:
        return speech(f"auto: OpenAI serves {tts_model!r} on /audio/speech{why}")
    return realtime(
        realtime_model,
        f"auto: OpenAI no longer serves {tts_model!r} ({why}), "
        f"so the Realtime API speaks with {realtime_model!r}",
    )


def _speech_model_checked(
    client: openai.OpenAI, model: str, cache: ResponseCache | None
) -> tuple[bool, str]:
    """_speech_model_available, answered from the cache when today's answer is there."""
    if cache is None:
        return _speech_model_available(client, model)[:2]
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    key = request_key(
        "model-check",
        {"model": model, "date": today},
        provider="openai",
        base_url=str(client.base_url),
    )
    cached = cache.get_json(key)
    if cached is not None and isinstance(cached.get("available"), bool):
        return cached["available"], str(cached.get("why", ""))
    available, why, clear = _speech_model_available(client, model)
    if clear:  # a 403 or a network error says nothing about tomorrow's runs
        cache.put_json(key, {"available": available, "why": why})
    return available, why


def _speech_model_available(client: openai.OpenAI, model: str) -> tuple[bool, str, bool]:
    """(True, note, clear) unless OpenAI says the model does not exist; a rejected key is an
    error. `clear` is False when the check could not tell (then the model is assumed served)."""
    import openai

    try:
        client.models.retrieve(model)
    except openai.NotFoundError as exc:
        code = exc.code or "not found"
        return False, f"404 {code}", True
    except openai.AuthenticationError as exc:
        raise map_api_error(exc, model=model, key=client.api_key or "") from None
    except openai.OpenAIError as exc:
        # Cannot tell (403 on a restricted key, network...): keep the endpoint that the model
        # name asks for; if it is really gone, its 404 will say so.
        status = getattr(exc, "status_code", None)
        return True, f" (not checked: {status or type(exc).__name__})", False
    return True, "", True
