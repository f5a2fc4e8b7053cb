"""Session: Settings -> what every input of one run shares, built once.

Takes validated Settings; gives StageOptions (the provider profile resolved once, and each stage's
option object built once: sampling, packing, plan, prompts, chat, images, speech, timeline) and,
for the commands that call a server, a Session (those options plus one client, the key for
redaction, the response cache and the speech backend, chosen on first use). The pipeline reads
only these, never Settings: this module is where a setting becomes a stage's option.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from .errors import ConfigError
from .media.images import ImageOptions
from .models import SamplingSpec, Usage
from .narration.backend import BackendChoice, BackendMode, choose_backend
from .narration.speech import CachedSpeech, SpeechOptions
from .narration.timeline import FitOptions
from .server.cache import ResponseCache, default_cache_dir
from .server.client import make_client
from .server.prices import PriceTable, load_prices
from .server.providers import (
    ProviderProfile,
    detect_provider,
    is_local_url,
    plan_limits,
    profile_for,
)
from .settings import Settings
from .vision.chat import ChatOptions, complete
from .vision.pack import PackOptions
from .vision.plan import PlanOptions
from .vision.prompts import PromptOptions

if TYPE_CHECKING:
    import openai

Report = Callable[[str], None]
T = TypeVar("T", bound=BaseModel)

NO_KEY = "not-needed"  # what the SDK is given for servers that ignore the key (it insists on one)


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class SpeechServer:
    """Where speech is made and how the backend is chosen (`--tts-backend`)."""

    base_url: str | None
    provider: str
    separate: bool  # --tts-base-url or --tts-api-key given: a client of its own
    key: str
    timeout: float
    max_retries: int
    backend: BackendMode
    realtime_model: str
    wer_threshold: float
    strict: bool


@dataclass(frozen=True)
class StageOptions:
    """Every stage's options for one run, built from Settings once (see `stage_options`)."""

    provider: str
    profile: ProviderProfile
    sampling: SamplingSpec
    pack: PackOptions
    plan: PlanOptions
    prompts: PromptOptions
    chat: ChatOptions
    images: ImageOptions
    voice: SpeechOptions  # model: the speech model asked for (the backend may speak another)
    fit: FitOptions
    speech_server: SpeechServer
    duck_db: float
    jobs: int
    max_cost: float | None


def sampling_spec(settings: Settings) -> SamplingSpec:
    """The frames stage's options."""
    return SamplingSpec(
        mode=settings.sample,
        stride=settings.stride,
        count=settings.frames,
        every_s=settings.every,
        max_frames=settings.max_frames,
        resize=settings.resize,
        jpeg_quality=settings.jpeg_quality,
        scene_threshold=settings.scene_threshold,
        exact_times=settings.exact_times,
    )


def _profile(settings: Settings) -> ProviderProfile:
    name = detect_provider(settings.base_url) if settings.provider == "auto" else settings.provider
    return profile_for(name)


def _chat_options(settings: Settings, profile: ProviderProfile) -> ChatOptions:
    token_field = settings.token_field
    structured = settings.structured
    return ChatOptions(
        model=settings.model,
        max_tokens=settings.max_completion_tokens,
        token_field=profile.token_field if token_field == "auto" else token_field,
        temperature=settings.temperature,
        reasoning_effort=settings.reasoning_effort,
        structured=profile.structured_output if structured == "auto" else structured,
        base_url=settings.base_url,
        provider=profile.name,
    )


def _plan_options(settings: Settings, profile: ProviderProfile, prices: PriceTable) -> PlanOptions:
    limits = plan_limits(
        profile,
        max_images=settings.max_images_per_request,
        max_input_tokens=settings.max_input_tokens,
        max_output_tokens=settings.max_completion_tokens,
    )
    return PlanOptions(
        model=settings.model,
        detail=settings.detail,
        limits=limits,
        prices=prices,
        provider=profile.name,
        free=profile.local,
        reasoning_effort=settings.reasoning_effort,
        speech_model=settings.tts_model,
        words_per_second=settings.words_per_second,
        segment_seconds=settings.segment_seconds,
    )


def _speech_server(settings: Settings, profile: ProviderProfile) -> SpeechServer:
    own_url = settings.tts_base_url
    return SpeechServer(
        base_url=own_url or settings.base_url,
        provider=detect_provider(own_url) if own_url else profile.name,
        separate=own_url is not None or settings.tts_api_key is not None,
        key=settings.secret("tts_api_key"),
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        backend=settings.tts_backend,
        realtime_model=settings.realtime_model,
        wer_threshold=settings.wer_threshold,
        strict=settings.strict,
    )


def stage_options(settings: Settings) -> StageOptions:
    """Every stage's options from Settings, with the provider resolved once. Offline: no key,
    no client (plan, frames and --dry-run need nothing more)."""
    profile = _profile(settings)
    cap = settings.max_images_per_request or profile.max_images_per_request
    return StageOptions(
        provider=profile.name,
        profile=profile,
        sampling=sampling_spec(settings),
        pack=PackOptions(
            mode=settings.pack,
            max_images=cap,
            detail=settings.detail,
            jpeg_quality=settings.jpeg_quality,
        ),
        plan=_plan_options(settings, profile, load_prices(settings.prices)),
        prompts=PromptOptions(
            preset=settings.preset,
            prompt=settings.prompt,
            language=settings.language,
            detail=settings.detail if profile.send_detail else None,
            style=settings.style,
            instructions=settings.instructions,
        ),
        chat=_chat_options(settings, profile),
        images=ImageOptions(
            detail=settings.detail,
            jpeg_quality=settings.jpeg_quality,
            image_urls=settings.image_urls,
            url_images_ok=profile.url_images_ok,
        ),
        voice=SpeechOptions(
            model=settings.tts_model,
            voice=settings.voice,
            speed=settings.speed,
            instructions=settings.tts_instructions,
        ),
        fit=FitOptions(max_speed=settings.max_speed, max_stretch=settings.max_stretch),
        speech_server=_speech_server(settings, profile),
        duck_db=settings.duck_db,
        jobs=settings.jobs,
        max_cost=settings.max_cost,
    )


def api_key(settings: Settings, profile: ProviderProfile) -> str:
    """The API key, or a stand-in for servers that need none (local servers, or any server on
    this machine or a private network); a ConfigError saying how to set one otherwise."""
    key = settings.secret("api_key")
    if key:
        return key
    if profile.dummy_key_ok or is_local_url(settings.base_url):
        return NO_KEY
    raise ConfigError(
        "no API key",
        hint="set OPENAI_API_KEY in the environment or in .env, or pass --api-key",
    )


def open_cache(settings: Settings, *secrets: str) -> ResponseCache:
    """The response cache the settings name (it may be disabled: --no-cache)."""
    root = settings.cache_dir or default_cache_dir()
    return ResponseCache(root, enabled=settings.cache, secrets=[s for s in secrets if s])


@dataclass
class Session:
    """What every input of one run shares: the stage options, one client, the key (for
    redaction), the response cache, where diagnostics go, and the speech backend."""

    options: StageOptions
    client: openai.OpenAI
    key: str
    cache: ResponseCache | None = None
    report: Report = _quiet
    _speech: BackendChoice | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def secrets(self) -> list[str]:
        """What must never be shown: the keys in use."""
        return [s for s in (self.key, self.options.speech_server.key) if s and s != NO_KEY]

    def chat(self, schema: type[T], messages: Sequence[dict[str, Any]]) -> tuple[T, Usage]:
        """One validated answer of type `schema` (from the cache when identical)."""
        return complete(
            self.client, schema, messages, self.options.chat, key=self.key, cache=self.cache
        )

    def speech(self) -> BackendChoice:
        """The speech backend (chosen once per run, on first use), why it was chosen, and the
        model it speaks with (a Realtime model when `auto` fell back to it)."""
        with self._lock:
            if self._speech is None:
                self._speech = self._choose_speech()
            return self._speech

    def _choose_speech(self) -> BackendChoice:
        server = self.options.speech_server
        client = self.client
        if server.separate:
            client = make_client(
                api_key=server.key or self.key or NO_KEY,
                base_url=server.base_url,
                timeout=server.timeout,
                max_retries=server.max_retries,
            )
        choice = choose_backend(
            server.backend,
            client,
            provider=server.provider,
            tts_model=self.options.voice.model,
            realtime_model=server.realtime_model,
            timeout_s=server.timeout,
            wer_threshold=server.wer_threshold,
            strict=server.strict,
            cache=self.cache,  # remembers today's model check: an identical rerun asks nothing
        )
        if self.cache is None:
            return choice
        cached = CachedSpeech(
            choice.backend, self.cache, provider=server.provider, base_url=server.base_url
        )
        return choice._replace(backend=cached)


def open_session(settings: Settings, *, report: Report = _quiet) -> Session:
    """One client for the whole run; fails early (exit 3) without a key where one is needed."""
    options = stage_options(settings)
    key = api_key(settings, options.profile)
    client = make_client(
        api_key=key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )
    secrets = [s for s in (key, settings.secret("tts_api_key")) if s != NO_KEY]
    cache = open_cache(settings, *secrets) if settings.cache else None
    return Session(options=options, client=client, key=key, cache=cache, report=report)
