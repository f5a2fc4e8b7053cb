"""Speech backend choice (`--tts-backend speech|realtime|auto`): settings -> the backend that
speaks, why, and with which model.

Takes the speech client, the provider and the models; gives a BackendChoice. Sits above both
backends (the speech endpoint in speech.py, the Realtime API in realtime.py) so neither knows of
the other. `auto` asks OpenAI whether the speech model still exists (remembered for the UTC day).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ConfigError, UsageError
from ..models import SpeechBackendMode
from ..server.cache import request_key
from ..server.client import map_api_error
from .realtime import REALTIME_VOICES, SPEECH_ONLY_VOICES, RealtimeBackend, is_realtime_model
from .speech import SpeechBackend, SpeechEndpointBackend, SpeechOptions

if TYPE_CHECKING:
    import openai

    from ..server.cache import ResponseCache

BackendMode = SpeechBackendMode

# The Realtime voice nearest each voice only the speech endpoint has (register and accent), for
# `auto` falling back to the Realtime API once OpenAI stops serving the speech models: the
# users' own `--voice onyx` keeps working, with a notice, instead of failing.
CLOSEST_REALTIME_VOICE = {"onyx": "cedar", "nova": "marin", "fable": "ballad"}


class BackendChoice(NamedTuple):
    """What `choose_backend` picked: the backend, why (for --verbose and the manifest), the
    model it will speak with, and the voice (another than asked only when `auto` fell back to
    the Realtime API, which lacks it: `notice` then says so in one line)."""

    backend: SpeechBackend
    reason: str
    model: str
    voice: str = ""
    notice: str = ""

    def speaking(self, options: SpeechOptions) -> SpeechOptions:
        """The speech options as this backend really speaks them: its model and voice."""
        return options.model_copy(
            update={"model": self.model, "voice": self.voice or options.voice}
        )


def check_voice(voice: str, *, provider: str, mode: BackendMode, tts_model: str) -> None:
    """Refuse, before any request (exit 2), a voice the backend that will speak does not have.

    Only OpenAI's voices are known: other servers name their own (Piper's, Kokoro's), and a
    custom `voice_...` id is the account's own. Under `auto` the backend is not known yet, so a
    voice only the speech endpoint has passes (it is mapped if `auto` falls back)."""
    if provider != "openai" or voice.startswith("voice_"):
        return
    name = voice.strip().lower()
    if name not in REALTIME_VOICES and name not in SPEECH_ONLY_VOICES:
        every = sorted({*REALTIME_VOICES, *SPEECH_ONLY_VOICES})
        raise UsageError(f"OpenAI has no voice {voice!r}", hint=f"pick one of {', '.join(every)}")
    realtime = mode == "realtime" or (mode == "auto" and is_realtime_model(tts_model))
    if realtime and name in SPEECH_ONLY_VOICES:
        why = "--tts-backend realtime" if mode == "realtime" else f"{tts_model!r}"
        raise UsageError(
            f"the voice {voice!r} exists only on the speech endpoint, not on the Realtime API "
            f"({why})",
            hint=f"pick one of {', '.join(REALTIME_VOICES)}, or use --tts-backend speech",
        )


def choose_backend(
    mode: BackendMode,
    client: openai.OpenAI,
    *,
    provider: str,
    tts_model: str,
    realtime_model: str,
    voice: str = "alloy",
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

    def realtime(model: str, reason: str, *, fallback: bool = False) -> BackendChoice:
        backend = RealtimeBackend(
            realtime_client or client,
            model=model,
            timeout_s=timeout_s,
            wer_threshold=wer_threshold,
            strict=strict,
        )
        # Only `auto`'s fallback maps a voice: one asked of the Realtime API was checked before.
        closest = CLOSEST_REALTIME_VOICE.get(voice.strip().lower()) if fallback else None
        if closest is None:
            return BackendChoice(backend, reason, model, voice)
        notice = f"the Realtime API has no voice {voice!r}: {closest!r}, the closest, speaks"
        return BackendChoice(backend, f"{reason}; {notice}", model, closest, notice)

    def speech(reason: str) -> BackendChoice:
        return BackendChoice(SpeechEndpointBackend(client), reason, tts_model, voice)

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
        fallback=True,
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
