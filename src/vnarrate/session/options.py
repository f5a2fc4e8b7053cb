"""Stage options: Settings -> what every input of one run shares, built once.

Takes validated Settings; gives StageOptions (the provider profile resolved once, and each stage's
option object built once: sampling, packing, plan, prompts, chat, images, speech, timeline,
soundtrack), the keys each server needs (a ConfigError saying how to set one otherwise) and the
response cache. This module is where a setting becomes a stage's option; the pipeline reads only
these, never Settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from ..errors import ConfigError
from ..media.images import ImageOptions
from ..models import SamplingSpec, SubtitleMode, VadOptions
from ..narration.backend import BackendMode, check_voice
from ..narration.gaps import GapOptions
from ..narration.pace import PaceOptions, cached_pace, find_pace, pace_key
from ..narration.realtime import SPEECH_ONLY_VOICES
from ..narration.speech import SpeechOptions
from ..narration.timeline import FitOptions
from ..narration.verify import VerifyOptions
from ..server.cache import ResponseCache, default_cache_dir
from ..server.memory import ServerMemory
from ..server.prices import PriceBasis, PriceTable, load_prices, price_basis, prices_for
from ..server.providers import (
    ProviderProfile,
    detect_provider,
    is_local_url,
    plan_limits,
    profile_for,
)
from ..settings import COMPATIBLE_SPEECH_MODEL, SPEECH_ENDPOINT_MODEL, Settings
from ..soundtrack.transcribe import (
    TranscribeOptions,
)
from ..vision.chat import ChatOptions
from ..vision.context import read_context_file
from ..vision.pack import PackOptions
from ..vision.plan import PlanOptions
from ..vision.prompts import PromptOptions

if TYPE_CHECKING:
    pass

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
    gaps: GapOptions  # where narration may go when people speak in the video
    pace: PaceOptions  # how the voice's words per second are found
    speech_server: SpeechServer
    duck_db: float
    subtitles: SubtitleMode  # dialogue or both: what people say is transcribed for them too
    jobs: int
    max_cost: float | None
    # the soundtrack: transcription, and what the user knows about the video (issue 11)
    transcription: TranscribeOptions
    stt_server: SttServer
    context: str | None  # --context, else --context-file's text (else VIDEO.context.md, per input)
    verify: VerifyOptions | None  # --verify: the narration heard back (None: not asked)
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
        exact_times=settings.exact_times,
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
    """How chat and speech are priced: by OpenAI's table only on OpenAI (its URL, or a gateway
    or proxy the user declares with --provider openai); free on a local server kind; unknown
    elsewhere (unless the user's prices file names the model)."""
    chat = price_basis(openai=profile.name == "openai", local=profile.local)
    return chat, _basis_of(settings.tts_base_url, chat)


def _basis_of(own_url: str | None, chat: PriceBasis) -> PriceBasis:
    """The pricing of a separate server (--tts-base-url, --stt-base-url): by its kind; the
    chat server's when there is none."""
    if own_url is None:
        return chat
    kind = detect_provider(own_url)
    return price_basis(openai=kind == "openai", local=profile_for(kind).local)


def _plan_options(
    settings: Settings,
    profile: ProviderProfile,
    prices: PriceTable,
    learned: ServerMemory,
    pace: PaceOptions,
) -> PlanOptions:
    offline = find_pace(pace, measure=False)
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
        # Offline: the user's pace, else this voice's measure from an earlier run, else the
        # default (`vnarrate plan` says which).
        words_per_second=offline.words_per_second,
        pace_source=offline.source,
        segment_seconds=settings.segment_seconds,
        learned_image_tokens=learned.image_tokens(settings.base_url, settings.model),
        batch=settings.batch,
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


def _transcription(
    settings: Settings, profile: ProviderProfile, prices: PriceTable
) -> TranscribeOptions:
    """Priced by the server that transcribes (--stt-base-url, else the chat server), as chat
    and speech are: an unknown server on this machine is not assumed free."""
    own = settings.stt_base_url
    basis = _basis_of(own, pricing(settings, profile)[0])
    return TranscribeOptions(
        mode=settings.transcribe,
        model=settings.stt_model,
        provider=detect_provider(own) if own else profile.name,
        base_url=own or settings.base_url,
        pricing=basis,
        prices=prices_for(prices, basis),
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


def _verify(settings: Settings, stt: TranscribeOptions) -> VerifyOptions | None:
    if not settings.verify:
        return None
    return VerifyOptions(
        stt=stt,
        wer_threshold=settings.wer_threshold,
        onset_tolerance_s=settings.verify_onset,
        strict=settings.strict,
    )


def _context(settings: Settings) -> str | None:
    if settings.context is not None or settings.context_file is None:
        return settings.context
    return read_context_file(settings.context_file)


def _pace_options(settings: Settings, server: SpeechServer, voice: SpeechOptions) -> PaceOptions:
    """The user's --words-per-second wins; else this voice's measure, if an earlier run left one
    in the cache (read here, offline), else a measure when the run speaks."""
    given = "words_per_second" in settings.model_fields_set
    where = {"base_url": server.base_url, "backend": server.backend}
    key = pace_key(where, voice, provider=server.provider)
    known = None
    if not given and settings.cache:
        known = cached_pace(open_cache(settings), key)
    return PaceOptions(
        override=settings.words_per_second if given else None,
        default=settings.words_per_second,
        key=key,
        known=known,
    )


def stage_options(settings: Settings) -> StageOptions:
    """Every stage's options from Settings, with the provider resolved once. Offline: no key,
    no client (plan, frames and --dry-run need nothing more)."""
    profile = _profile(settings)
    cap = settings.max_images_per_request or profile.max_images_per_request
    learned = memory(settings)
    remembered = learned.fixes(settings.base_url, settings.model)
    send_detail = profile.send_detail and remembered.get("send_detail", True)
    server = _speech_server(settings, profile)
    voice = SpeechOptions(
        model=speech_model(settings, server.provider),
        voice=settings.voice,
        speed=settings.speed,
        instructions=settings.tts_instructions,
    )
    pace = _pace_options(settings, server, voice)
    prices = load_prices(settings.prices)
    plan = _plan_options(settings, profile, prices, learned, pace)
    transcription = _transcription(settings, profile, prices)
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
        plan=plan,
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
        voice=voice,
        fit=FitOptions(max_speed=settings.max_speed, max_stretch=settings.max_stretch),
        gaps=GapOptions(
            over_speech=settings.over_speech,
            min_gap_s=settings.min_gap,
            before_s=settings.margin_before_speech,
            after_s=settings.margin_after_speech,
        ),
        pace=pace,
        speech_server=server,
        duck_db=settings.duck_db,
        subtitles=settings.subtitles,
        jobs=settings.jobs,
        max_cost=settings.max_cost,
        remembered=remembered,
        transcription=transcription,
        stt_server=_stt_server(settings),
        context=_context(settings),
        verify=_verify(settings, transcription),
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


def check_speech(options: StageOptions) -> None:
    """Refuse a voice the speech backend that will speak does not have (exit 2), before any
    request is made or paid for (narration/backend.check_voice)."""
    server = options.speech_server
    check_voice(
        options.voice.voice,
        provider=server.provider,
        mode=server.backend,
        tts_model=options.voice.model,
    )


def stt_key(options: StageOptions, chat_key: str) -> None:
    """--verify must be able to ask its speech-to-text server: a ConfigError (exit 3) before
    anything is paid for when that server needs a key and has none (a separate --stt-base-url
    never gets the main key)."""
    server = options.stt_server
    key = server.key if server.separate else chat_key
    if options.verify is None or (key and key != NO_KEY) or is_local_url(server.base_url):
        return
    if server.base_url and profile_for(detect_provider(server.base_url)).dummy_key_ok:
        return
    raise ConfigError(
        "no API key for --verify's speech-to-text server",
        hint="set OPENAI_API_KEY, or --stt-api-key (VNARRATE_STT_API_KEY) for --stt-base-url; "
        "or drop --verify",
    )
