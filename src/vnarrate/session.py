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

from .errors import ConfigError, VnarrateError
from .media.images import ImageOptions
from .models import SamplingSpec, Soundtrack, SpeechMap, Usage, VadOptions
from .narration.backend import BackendChoice, BackendMode, choose_backend
from .narration.realtime import SPEECH_ONLY_VOICES
from .narration.speech import CachedSpeech, SpeechOptions
from .narration.timeline import FitOptions
from .server.cache import ResponseCache, default_cache_dir
from .server.client import make_client
from .server.memory import ServerMemory
from .server.prices import PriceBasis, PriceTable, load_prices, price_basis, prices_for
from .server.providers import (
    ProviderProfile,
    detect_provider,
    is_local_url,
    plan_limits,
    profile_for,
)
from .settings import COMPATIBLE_SPEECH_MODEL, SPEECH_ENDPOINT_MODEL, Settings
from .soundtrack.transcribe import (
    NoTranscriptionEndpoint,
    TranscribeOptions,
    Transcript,
    transcribe,
    with_transcript,
)
from .vision.chat import ChatOptions, complete
from .vision.context import read_context_file
from .vision.pack import PackOptions
from .vision.plan import PlanOptions
from .vision.prompts import PromptOptions
from .vision.tokens import image_tokens_from_usage, resolve_model

if TYPE_CHECKING:
    import openai

Report = Callable[[str], None]
T = TypeVar("T", bound=BaseModel)

# The chat options a server's 400 may fix and a run remembers (server/memory.py).
FIX_FIELDS = ("token_field", "structured", "temperature", "reasoning_effort", "send_detail")

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
class SttServer:
    """Where speech is transcribed: the vision server, or `--stt-base-url` with its own key
    (the main key is never sent to another server)."""

    base_url: str | None
    separate: bool  # --stt-base-url or --stt-api-key given: a client of its own
    key: str
    timeout: float
    max_retries: int


@dataclass(frozen=True)
class StageOptions:
    """Every stage's options for one run, built from Settings once (see `stage_options`)."""

    provider: str
    profile: ProviderProfile
    sampling: SamplingSpec
    vad: VadOptions
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
    # the soundtrack: transcription, and what the user knows about the video (issue 11)
    transcription: TranscribeOptions
    stt_server: SttServer
    context: str | None  # --context, else --context-file's text (else VIDEO.context.md, per input)
    # What earlier runs learned about this server and model (see server/memory.py).
    remembered: dict[str, Any] = field(default_factory=dict)  # request fixes applied


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
    )


def _profile(settings: Settings) -> ProviderProfile:
    name = detect_provider(settings.base_url) if settings.provider == "auto" else settings.provider
    return profile_for(name)


def _chat_options(
    settings: Settings, profile: ProviderProfile, remembered: dict[str, Any]
) -> ChatOptions:
    token_field = settings.token_field
    structured = settings.structured
    options = ChatOptions(
        model=settings.model,
        max_tokens=settings.max_completion_tokens,
        token_field=profile.token_field if token_field == "auto" else token_field,
        temperature=settings.temperature,
        reasoning_effort=settings.reasoning_effort,
        structured=profile.structured_output if structured == "auto" else structured,
        base_url=settings.base_url,
        provider=profile.name,
    )
    # A server that rejected a setting before has taught its fix: start with it.
    return options.model_copy(update=remembered)


def memory(settings: Settings) -> ServerMemory:
    """What vnarrate learned about servers, kept beside the response cache."""
    return ServerMemory(settings.cache_dir or default_cache_dir())


def speech_model(settings: Settings, provider: str) -> str:
    """The speech model: --tts-model, or for `auto` the Realtime model on OpenAI (its
    /audio/speech models shut down on 2027-01-06; with --tts-backend speech or a voice only the
    speech endpoint has, the last of them), and elsewhere the name OpenAI-compatible speech
    servers accept or ignore."""
    if settings.tts_model != "auto":
        return settings.tts_model
    if provider != "openai":
        return COMPATIBLE_SPEECH_MODEL
    if settings.tts_backend == "speech" or settings.voice.strip().lower() in SPEECH_ONLY_VOICES:
        # Asked for the speech endpoint, or a voice only it has (onyx, nova, fable): its model,
        # while OpenAI serves it; `auto` then falls back to Realtime and says why.
        return SPEECH_ENDPOINT_MODEL
    return str(settings.realtime_model)


def pricing(settings: Settings, profile: ProviderProfile) -> tuple[PriceBasis, PriceBasis]:
    """How chat and speech are priced: by OpenAI's table only on OpenAI itself; free on a
    local server kind; unknown elsewhere (unless the user's prices file names the model)."""
    on_openai = profile.name == "openai" and detect_provider(settings.base_url) == "openai"
    chat = price_basis(openai=on_openai, local=profile.local)
    if settings.tts_base_url is None:
        return chat, chat
    kind = detect_provider(settings.tts_base_url)
    return chat, price_basis(openai=kind == "openai", local=profile_for(kind).local)


def _plan_options(
    settings: Settings, profile: ProviderProfile, prices: PriceTable, learned: ServerMemory
) -> PlanOptions:
    limits = plan_limits(
        profile,
        max_images=settings.max_images_per_request,
        max_input_tokens=settings.max_input_tokens,
        max_output_tokens=settings.max_completion_tokens,
    )
    chat_pricing, speech_pricing = pricing(settings, profile)
    speech_kind = detect_provider(settings.tts_base_url) if settings.tts_base_url else profile.name
    return PlanOptions(
        model=settings.model,
        detail=settings.detail,
        limits=limits,
        prices=prices_for(prices, chat_pricing),
        provider=profile.name,
        chat_pricing=chat_pricing,
        reasoning_effort=settings.reasoning_effort,
        speech_model=speech_model(settings, speech_kind),
        speech_prices=prices_for(prices, speech_pricing),
        speech_pricing=speech_pricing,
        words_per_second=settings.words_per_second,
        segment_seconds=settings.segment_seconds,
        learned_image_tokens=learned.image_tokens(settings.base_url, settings.model),
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


def _transcription(settings: Settings, profile: ProviderProfile) -> TranscribeOptions:
    own = settings.stt_base_url
    return TranscribeOptions(
        mode=settings.transcribe,
        model=settings.stt_model,
        provider=detect_provider(own) if own else profile.name,
        base_url=own or settings.base_url,
        free=is_local_url(own) if own else profile.local or is_local_url(settings.base_url),
    )


def _stt_server(settings: Settings) -> SttServer:
    own = settings.stt_base_url
    return SttServer(
        base_url=own or settings.base_url,
        separate=own is not None or settings.stt_api_key is not None,
        key=settings.secret("stt_api_key"),
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )


def _context(settings: Settings) -> str | None:
    if settings.context is not None or settings.context_file is None:
        return settings.context
    return read_context_file(settings.context_file)


def stage_options(settings: Settings) -> StageOptions:
    """Every stage's options from Settings, with the provider resolved once. Offline: no key,
    no client (plan, frames and --dry-run need nothing more)."""
    profile = _profile(settings)
    cap = settings.max_images_per_request or profile.max_images_per_request
    learned = memory(settings)
    remembered = learned.fixes(settings.base_url, settings.model)
    send_detail = profile.send_detail and remembered.get("send_detail", True)
    server = _speech_server(settings, profile)
    return StageOptions(
        provider=profile.name,
        profile=profile,
        sampling=sampling_spec(settings),
        vad=VadOptions(
            threshold=settings.speech_threshold,
            min_speech_s=settings.speech_min_s,
            min_silence_s=settings.speech_min_silence_s,
            pad_s=settings.speech_pad_s,
        ),
        pack=PackOptions(
            mode=settings.pack,
            max_images=cap,
            detail=settings.detail,
            jpeg_quality=settings.jpeg_quality,
        ),
        plan=_plan_options(settings, profile, load_prices(settings.prices), learned),
        prompts=PromptOptions(
            preset=settings.preset,
            prompt=settings.prompt,
            language=settings.language,
            detail=settings.detail if send_detail else None,
            style=settings.style,
            instructions=settings.instructions,
        ),
        chat=_chat_options(settings, profile, remembered),
        images=ImageOptions(
            detail=settings.detail,
            jpeg_quality=settings.jpeg_quality,
            image_urls=settings.image_urls,
            url_images_ok=profile.url_images_ok,
        ),
        voice=SpeechOptions(
            model=speech_model(settings, server.provider),
            voice=settings.voice,
            speed=settings.speed,
            instructions=settings.tts_instructions,
        ),
        fit=FitOptions(max_speed=settings.max_speed, max_stretch=settings.max_stretch),
        speech_server=server,
        duck_db=settings.duck_db,
        jobs=settings.jobs,
        max_cost=settings.max_cost,
        remembered=remembered,
        transcription=_transcription(settings, profile),
        stt_server=_stt_server(settings),
        context=_context(settings),
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
    report: Report = _quiet  # what happens (--verbose)
    warn: Report = _quiet  # what the user should know
    memory: ServerMemory | None = None  # remembered fixes and learned image tokens
    _speech: BackendChoice | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _chat: ChatOptions | None = field(default=None, repr=False)  # after a fix worked this run
    _learned: set[str] = field(default_factory=set, repr=False)
    # At most --jobs chat requests in flight for the whole run, whether they come from several
    # inputs or from the chunks of one long video.
    _slots: threading.BoundedSemaphore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(max(1, self.options.jobs))

    _stt: openai.OpenAI | None = field(default=None, repr=False)
    _stt_gone: NoTranscriptionEndpoint | None = field(default=None, repr=False)

    @property
    def secrets(self) -> list[str]:
        """What must never be shown: the keys in use."""
        keys = (self.key, self.options.speech_server.key, self.options.stt_server.key)
        return [s for s in keys if s and s != NO_KEY]

    @property
    def chat_options(self) -> ChatOptions:
        """The chat options now: the run's, with any fix a server taught during the run."""
        with self._lock:
            return self._chat or self.options.chat

    def chat(self, schema: type[T], messages: Sequence[dict[str, Any]]) -> tuple[T, Usage]:
        """One validated answer of type `schema` (from the cache when identical); a request a
        server rejects with a known fix is retried once with it (see vision/chat.py). At most
        --jobs requests are in flight at once."""
        assert self._slots is not None
        with self._slots:
            return complete(
                self.client,
                schema,
                messages,
                self.chat_options,
                key=self.key,
                cache=self.cache,
                report=self.report,
                fixed=self._fixed,
                observe=self._observe if self.memory is not None else None,
            )

    def _fixed(self, better: ChatOptions, changes: list[str]) -> None:
        """A fix worked: the rest of the run uses it, and later runs start with it."""
        with self._lock:
            before = self._chat or self.options.chat
            self._chat = better
        fixes = {
            name: getattr(better, name)
            for name in FIX_FIELDS
            if getattr(better, name) != getattr(before, name)
        }
        stored = self.memory is not None and self.memory.remember_fixes(
            better.base_url, better.model, fixes
        )
        where = f"; remembered in {self.memory.root}" if stored and self.memory else ""
        self.report(f"{better.model}: the retry with {', '.join(changes)} worked{where}")

    def _observe(self, messages: Sequence[dict[str, Any]], usage: Usage, schema: str) -> None:
        """Learn tokens per image from the API's usage, for a model whose rule is unpublished."""
        model = self.options.chat.model
        if self.memory is None or resolve_model(model).known or usage.prompt_tokens <= 0:
            return
        found = image_tokens_from_usage(model, messages, usage.prompt_tokens, extra_text=schema)
        if found is None:
            return
        size, tokens = found
        base_url = self.options.chat.base_url
        if (
            self.memory.learn_image_tokens(base_url, model, size, tokens)
            and size not in self._learned
        ):
            self._learned.add(size)
            count, mean = self.memory.image_tokens(base_url, model).get(size, (0, tokens))
            self.report(
                f"{model}: images at {size} cost ~{mean:.0f} tokens each by the API's usage "
                f"(learned from {count} request{'s' if count != 1 else ''})"
            )

    def hear(self, path: str, heard: Soundtrack | None) -> Soundtrack | None:
        """What is said in each speech region, when transcription is asked for and there is
        speech. Under `--transcribe auto` a failure is a warning and the soundtrack keeps its
        speech regions only; under `on` it fails the run."""
        o = self.options.transcription
        if heard is None or o.mode == "off" or not heard.speech.regions:
            return heard
        regions = len(heard.speech.regions)
        self.report(f"{path}: transcribing {regions} stretch(es) of speech with {o.model}")
        try:
            said = self.transcribe(path, heard.speech)
        except VnarrateError as exc:
            if o.mode == "on":
                raise
            note = f"no transcript: {exc}; going on with where people speak only"
            self.warn(f"{path}: {note}")
            return heard.model_copy(update={"warnings": [*heard.warnings, note]})
        for note in said.warnings:
            self.warn(f"{path}: {note}")
        return with_transcript(heard, said, o, self.options.plan.prices)

    def transcribe(self, path: str, speech: SpeechMap) -> Transcript:
        """What is said in each speech region (soundtrack/transcribe.py). A server found to
        have no transcription endpoint is not asked again in this run."""
        if self._stt_gone is not None:
            raise self._stt_gone
        server = self.options.stt_server
        with self._lock:
            if self._stt is None:
                self._stt = self.client
                if server.separate:  # the main key stays with the main server
                    self._stt = make_client(
                        api_key=server.key or NO_KEY,
                        base_url=server.base_url,
                        timeout=server.timeout,
                        max_retries=server.max_retries,
                    )
            client = self._stt
        try:
            return transcribe(
                path,
                speech,
                self.options.transcription,
                client=client,
                cache=self.cache,
                key=server.key if server.separate else self.key,
                jobs=self.options.jobs,
            )
        except NoTranscriptionEndpoint as exc:
            self._stt_gone = exc
            raise

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
                api_key=server.key or (self.key if self.key != NO_KEY else "") or NO_KEY,
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


def speech_key(settings: Settings, options: StageOptions, chat_key: str) -> str:
    """The key for the speech server: --tts-api-key, else the chat key (the same account), else
    none where the speech server needs none (local or private address, a keyless kind); a
    ConfigError saying how to set one otherwise."""
    server = options.speech_server
    if server.key:
        return server.key
    if chat_key and chat_key != NO_KEY:
        return chat_key
    keyless = profile_for(server.provider).dummy_key_ok or is_local_url(server.base_url)
    if keyless:
        return NO_KEY
    raise ConfigError(
        "no API key for the speech server",
        hint="set OPENAI_API_KEY (or VNARRATE_TTS_API_KEY / --tts-api-key for --tts-base-url)",
    )


def open_session(
    settings: Settings,
    *,
    report: Report = _quiet,
    warn: Report = _quiet,
    chat: bool = True,
    speech: bool = False,
) -> Session:
    """One client for the whole run; fails early (exit 3) without a key where one is needed.

    `chat` False (voiceover --script) asks no key of the chat server; `speech` True checks the
    speech server's key too (a separate --tts-base-url on a local address needs none)."""
    options = stage_options(settings)
    key = api_key(settings, options.profile) if chat else settings.secret("api_key") or NO_KEY
    if speech:
        speech_key(settings, options, key)
    client = make_client(
        api_key=key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )
    extra = (settings.secret("tts_api_key"), settings.secret("stt_api_key"))
    secrets = [s for s in (key, *extra) if s != NO_KEY]
    cache = open_cache(settings, *secrets) if settings.cache else None
    if options.remembered:
        said = ", ".join(f"{k}={v}" for k, v in sorted(options.remembered.items()))
        report(f"{settings.model}: using what this server taught an earlier run: {said}")
    return Session(
        options=options,
        client=client,
        key=key,
        cache=cache,
        report=report,
        warn=warn,
        memory=memory(settings),
    )
