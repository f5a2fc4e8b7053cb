"""Settings: the one place that reads the environment and `.env`, and where every default lives.

Takes command-line flags (None = not given), the environment, `.env` in the working directory and
the defaults below, in that order of precedence; gives one validated Settings. Every field's
description is its `--help` text and its bounds and Literal choices are the CLI's ranges and
choices (cli/options.py generates the options from these fields), so a default, a choice or a
range is written here once. Every option's env var is `VNARRATE_<NAME>`; the key and base URL
also honour `OPENAI_API_KEY` / `OPENAI_BASE_URL`. No provider logic: the session resolves the
server's profile.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    AliasChoices,
    Field,
    JsonValue,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .envfile import check_dotenv
from .errors import ConfigError, UsageError
from .models import (
    Detail,
    Effort,
    ImageUrlMode,
    PackMode,
    ProviderName,
    SampleMode,
    SpeechBackendMode,
    StructuredMode,
    SubtitleMode,
    TokenField,
)

Provider = Literal["auto", ProviderName]
OutputFormat = Literal["markdown", "text", "json"]
Preset = Literal["general", "youtube", "accessibility", "technical"]
Style = Literal["documentary", "audio-description", "promo", "tutorial"]

# --- speech models for `--tts-model auto` (issue 12: no default within 60 days of a shutdown) ---
# OpenAI shuts every /v1/audio/speech model down on 2027-01-06: `auto` speaks with --realtime-model
# there, and SPEECH_ENDPOINT_MODEL only when the speech endpoint is insisted on (until then).
# COMPATIBLE_SPEECH_MODEL: the name OpenAI-compatible speech servers accept (openedai-speech,
# Kokoro-FastAPI) or ignore (Piper); --tts-model for a server that wants its own.
SPEECH_ENDPOINT_MODEL = "gpt-4o-mini-tts"
COMPATIBLE_SPEECH_MODEL = "tts-1"

# Which of the sampling settings chooses the mode when --sample is not given.
SAMPLE_MODE_OF = {"stride": "stride", "frames": "count", "every": "interval"}


def _env(name: str, *extra: str) -> AliasChoices:
    # Aliased fields lose the env prefix, so the VNARRATE_ name is listed explicitly; the field
    # name itself stays valid (populate_by_name) so that flags can be passed as keyword arguments.
    return AliasChoices(f"VNARRATE_{name.upper()}", *extra)


# json_schema_extra: the setting names a folder or a file (the CLI checks which).
FOLDER: dict[str, JsonValue] = {"path": "folder"}
FILE: dict[str, JsonValue] = {"path": "file"}


class Settings(BaseSettings):
    """Every option of vnarrate, with its default. Build with `load_settings(**flags)`."""

    model_config = SettingsConfigDict(
        env_prefix="VNARRATE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # --- provider / client -------------------------------------------------------------------
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("api_key", "OPENAI_API_KEY"),
        description="API key [env: OPENAI_API_KEY or VNARRATE_API_KEY].",
    )
    base_url: str | None = Field(
        default=None,
        validation_alias=_env("base_url", "OPENAI_BASE_URL"),
        description="OpenAI-compatible server, e.g. http://localhost:11434/v1 "
        "[env: OPENAI_BASE_URL].",
    )
    provider: Provider = Field(
        default="auto", description="Server kind; decides request details (auto: from --base-url)."
    )
    timeout: float = Field(default=120.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(default=2, ge=0, le=10, description="SDK retries on 429/5xx/timeouts.")

    # --- vision / chat -----------------------------------------------------------------------
    # gpt-5.4-mini: served after gpt-4o/gpt-4.1 (2027-01-14) and gpt-5 (2026-12-11) shut down.
    model: str = Field(default="gpt-5.4-mini", min_length=1, description="Vision model.")
    detail: Detail = Field(default="auto", description="Image detail level sent with each frame.")
    # Large enough for a reasoning model's hidden tokens plus the answer (see DESIGN.md).
    max_completion_tokens: int = Field(
        default=8000, ge=16, description="Output token cap, reasoning included."
    )
    token_field: Literal["auto", TokenField] = Field(
        default="auto",
        description="Token-limit field the server understands (auto: by --provider).",
    )
    structured: Literal["auto", StructuredMode] = Field(
        default="auto",
        description="Structured output: json_schema, or JSON mode + validation (auto: by --provider).",
    )
    pack: PackMode = Field(
        default="auto", description="Tile frames into timestamped sheets for 1-image servers."
    )
    image_urls: ImageUrlMode = Field(
        default="auto",
        description="Image URLs: pass to the server, or download first (auto: by --provider).",
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature; sent only when given."
    )
    reasoning_effort: Effort | None = Field(
        default=None, description="For reasoning models; sent only when given."
    )
    prompt: str | None = Field(
        default=None, description="Your own question about the video, instead of the default task."
    )
    preset: Preset = Field(default="general", description="System prompt style.")
    language: str | None = Field(
        default=None, description="Language of the text, e.g. en, de, 'Brazilian Portuguese'."
    )

    # --- narration script --------------------------------------------------------------------
    style: Style = Field(default="documentary", description="Narration style.")
    instructions: str | None = Field(default=None, description="Extra guidance for the writer.")
    # Word budgets follow the voice's own measured pace (narration/pace.py, cached per server,
    # model, voice and speed); this value is used until the voice has been measured, and always
    # when it is given (flag, env or .env). 2.5 (~150 words a minute) is a common narration pace.
    words_per_second: float = Field(
        default=2.5,
        gt=0.2,
        le=8,
        description="The voice's pace for word budgets (when not given: measured from the voice, "
        "this value until it is).",
    )
    segment_seconds: float = Field(
        default=6.0, ge=1, le=120, description="Typical length of a narration slot."
    )

    # --- speech --------------------------------------------------------------------------------
    tts_model: str = Field(
        default="auto",
        min_length=1,
        description="Speech model (auto: --realtime-model on OpenAI, tts-1 on other servers).",
    )
    voice: str = Field(
        default="alloy", min_length=1, description="Voice, e.g. alloy, coral, sage, marin, cedar."
    )
    speed: float = Field(default=1.0, ge=0.25, le=4.0, description="Speaking speed.")
    tts_instructions: str | None = Field(
        default=None, description="Tone of voice (Realtime models, gpt-4o-mini-tts; not tts-1)."
    )
    tts_backend: SpeechBackendMode = Field(
        default="auto", description="Speech via /audio/speech or the Realtime API."
    )
    realtime_model: str = Field(
        default="gpt-realtime-2.1-mini", min_length=1, description="Realtime speech model."
    )
    wer_threshold: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="Word error rate above which a Realtime take is redone once; with --verify, "
        "the rate a line heard back may err at (recogniser included).",
    )
    strict: bool = Field(
        default=False,
        description="Fail if speech strays from the text (a Realtime take; --verify's verdict).",
    )
    tts_base_url: str | None = Field(
        default=None, description="A separate OpenAI-compatible server for speech."
    )
    tts_api_key: SecretStr | None = Field(
        default=None, description="Key for --tts-base-url [env: VNARRATE_TTS_API_KEY]."
    )
    max_speed: float = Field(
        default=1.25, ge=1.0, le=4.0, description="Re-speak overlong lines up to this speed."
    )
    max_stretch: float = Field(
        default=1.25, ge=1.0, le=2.0, description="Then time-stretch them up to this factor."
    )
    duck_db: float = Field(
        default=-12.0,
        ge=-60,
        le=0,
        description="With --mux: original audio level under speech, dB.",
    )
    subtitles: SubtitleMode = Field(
        default="narration",
        description="What the .srt and .vtt show: the narration, the dialogue (what people in "
        "the video say, transcribed), both (told apart), or off (no subtitle files).",
    )
    # Inputs go through the batch driver `jobs` at a time; chat requests share `jobs` slots per
    # run (session), speech and transcription send `jobs` at a time per input.
    jobs: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Inputs processed at once; for runs that call a server, also its requests "
        "in flight (chat per run, speech and transcription per input).",
    )

    # --- frames ------------------------------------------------------------------------------
    sample: SampleMode = Field(default="interval", description="How to choose frames.")
    stride: int = Field(default=50, ge=1, description="Every Nth frame (--sample stride).")
    frames: int = Field(default=16, ge=1, description="N frames spread evenly (--sample count).")
    every: float = Field(
        default=1.0, gt=0, description="A frame every S seconds (--sample interval)."
    )
    max_frames: int = Field(default=48, ge=1, description="Cap on frames, spread evenly.")
    resize: int = Field(
        default=768, ge=0, le=16384, description="Longest side in px; 0 = full size."
    )
    jpeg_quality: int = Field(default=85, ge=1, le=100, description="JPEG quality.")
    scene_threshold: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="--sample scenes: how different frames must be to count as a cut.",
    )
    exact_times: bool = Field(
        default=False,
        description="Decode the frame at each exact target time, not a keyframe near it "
        "(slower on long videos).",
    )

    # --- soundtrack ----------------------------------------------------------------------------
    # Measured on the shared dialogue clips and generated mixes (BENCHMARKS.md, "Speech detection").
    speech_threshold: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Speech probability at which 32 ms of the soundtrack count as speech.",
    )
    speech_min_s: float = Field(
        default=0.25,
        ge=0,
        le=5,
        description="Seconds: shorter bursts of detected speech are ignored.",
    )
    speech_min_silence_s: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description="Seconds: shorter pauses do not split speech.",
    )
    speech_pad_s: float = Field(
        default=0.2,
        ge=0,
        le=2,
        description="Seconds added before and after each stretch of speech.",
    )

    # --- transcription: what is said goes into the prompt (issue 11) --------------------------
    transcribe: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Transcribe what is said in the video (auto: when speech is found; a "
        "failure is then a warning).",
    )
    # gpt-transcribe: whisper-1 and the gpt-4o-*-transcribe models shut down on 2027-02-26.
    stt_model: str = Field(
        default="gpt-transcribe", min_length=1, description="Speech-to-text model."
    )
    stt_base_url: str | None = Field(
        default=None, description="A separate OpenAI-compatible server for speech-to-text."
    )
    stt_api_key: SecretStr | None = Field(
        default=None, description="Key for --stt-base-url [env: VNARRATE_STT_API_KEY]."
    )
    context: str | None = Field(
        default=None,
        description="What you know about the video (names, place, topic), given to the model.",
    )
    context_file: Path | None = Field(
        default=None,
        description="Read the context from FILE (else VIDEO.context.md beside a video is used).",
        json_schema_extra=FILE,
    )

    # --- --verify: the narration heard back (issue 11) ----------------------------------------
    verify: bool = Field(
        default=False,
        description="Hear the narration back with --stt-model: each line's word error rate and "
        "onset, in the manifest (costs a transcription of the narration).",
    )
    # Measured on a real voice (BENCHMARKS.md, "--verify"): a faithful line starts within 0.03 s.
    verify_onset: float = Field(
        default=0.2,
        ge=0.02,
        le=5,
        description="--verify: seconds a line's speech may start away from its placed start.",
    )

    # --- narration in the gaps ------------------------------------------------------------------
    # Measured on the shared dialogue clips and generated two-voice dialogues (BENCHMARKS.md,
    # "Narration in the gaps"): the detector pads speech by 0.2 s, yet once started a line 0.35 s
    # late (its first word under music at speech loudness), so 0.35 s more is kept before speech;
    # its ends came at least 0.13 s late, so 0.1 s after. Then no true speech lies in any room,
    # no pause under 1.2 s (inside a turn, or a 0.8 s speaker turn) makes one, and every pause of
    # 2 s or more does. A room of 1 s holds about three words.
    over_speech: Literal["avoid", "duck"] = Field(
        default="avoid",
        description="Narration where people speak: avoid (narrate in the gaps, drop what does "
        "not fit) or duck (lower them under it).",
    )
    min_gap: float = Field(
        default=1.0,
        ge=0.3,
        le=30,
        description="Seconds: shorter room between speech gets no narration.",
    )
    margin_before_speech: float = Field(
        default=0.35,
        ge=0,
        le=2,
        description="Seconds kept clear between narration and the speech after it.",
    )
    margin_after_speech: float = Field(
        default=0.1,
        ge=0,
        le=2,
        description="Seconds kept clear between speech and the narration after it.",
    )
    timeline: bool = Field(
        default=True,
        description="Write VIDEO.timeline.png: soundtrack, speech and narration at a glance.",
        json_schema_extra={"off": "No timeline picture."},
    )

    # --- plan, budget, limits ----------------------------------------------------------------
    max_cost: float | None = Field(
        default=None, ge=0, description="Refuse runs estimated above this many USD (exit 3)."
    )
    prices: Path | None = Field(
        default=None,
        description="Your prices JSON file, over the packaged table.",
        json_schema_extra=FILE,
    )
    max_images_per_request: int | None = Field(
        default=None,
        ge=1,
        le=1500,
        description="Split longer videos into requests of at most N frames (default: the "
        "provider's).",
    )
    max_input_tokens: int | None = Field(
        default=None,
        ge=1000,
        description="Split so no request exceeds N input tokens (default: the provider's).",
    )

    # --- cache ---------------------------------------------------------------------------------
    cache: bool = Field(
        default=True,
        description="Answer identical requests from the cache.",
        json_schema_extra={"off": "Bypass the cache."},
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Response cache folder (default: the user cache folder).",
        json_schema_extra=FOLDER,
    )

    # --- batch API -----------------------------------------------------------------------------
    batch: bool = Field(
        default=False,
        description="Chat requests through the Batch API, at half price: a run sends them in "
        "batches (answers within 24 h; a rerun resumes); plan and --dry-run price them so.",
    )
    batch_wait: bool = Field(
        default=True,
        description="With --batch: wait for the batches and finish the run.",
        json_schema_extra={
            "off": "With --batch: submit, print the batch ids, exit; rerun to collect."
        },
    )
    batch_poll: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="With --batch: longest pause between status checks, seconds.",
    )

    # --- output ------------------------------------------------------------------------------
    format: OutputFormat = Field(default="markdown", description="Output format.")
    force: bool = Field(default=False, description="Overwrite existing outputs.")
    out_dir: Path | None = Field(
        default=None, description="Output folder.", json_schema_extra=FOLDER
    )

    @field_validator("resize")
    @classmethod
    def _resize_sane(cls, v: int) -> int:
        # 0 keeps full size; anything smaller than 16 px is surely a mistake.
        if 0 < v < 16:
            raise ValueError("must be 0 (keep full size) or at least 16 pixels")
        return v

    @field_validator("base_url", "prompt", "language", "instructions", "tts_instructions",
                     "tts_base_url", "stt_base_url", "context")  # fmt: skip
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v if v and v.strip() else None

    @field_validator("subtitles", mode="before")
    @classmethod
    def _subtitles_switch(cls, v: object) -> object:
        # Before --subtitles took a mode it was a switch: VNARRATE_SUBTITLES=false still works.
        words = {"true": "narration", "1": "narration", "yes": "narration", "on": "narration",
                 "false": "off", "0": "off", "no": "off"}  # fmt: skip
        if isinstance(v, bool):
            return "narration" if v else "off"
        return words.get(v.strip().lower(), v.strip().lower()) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _sample_mode_from_what_was_set(self) -> Settings:
        # VNARRATE_FRAMES=8 alone (in the environment or .env) should mean "8 frames", as
        # --frames 8 does; VNARRATE_SAMPLE, when set, decides.
        if "sample" not in self.model_fields_set:
            chosen = [n for n in SAMPLE_MODE_OF if n in self.model_fields_set]
            if len(chosen) > 1:
                raise ValueError(
                    f"{' and '.join('VNARRATE_' + n.upper() for n in chosen)} both choose "
                    "frames: set VNARRATE_SAMPLE to say which"
                )
            if chosen:
                object.__setattr__(self, "sample", SAMPLE_MODE_OF[chosen[0]])
        return self

    def secret(self, name: Literal["api_key", "tts_api_key", "stt_api_key"]) -> str:
        """A key as text ("" when unset or blank)."""
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value().strip() if value is not None else ""


def flag_name(field: str) -> str:
    """The command-line flag of a setting: `max_frames` -> `--max-frames`."""
    return "--" + field.replace("_", "-")


@dataclass(frozen=True)
class OptionSpec:
    """What a command line needs to know of a setting to offer it as an option."""

    name: str
    kind: Any  # int, float, str, bool or Path
    choices: tuple[str, ...] | None  # from a Literal
    bounds: dict[str, Any]  # min / max / min_open / max_open, from ge / le / gt / lt
    default: Any
    help: str  # the description, with the default when there is one
    path: str | None  # "file" or "folder" for a Path setting
    off_help: str  # for a switch that is on by default: what --no-... does


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; SecretStr -> str."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            annotation = args[0]
    return str if annotation is SecretStr else annotation


_BOUNDS = {Ge: ("ge", "min", False), Gt: ("gt", "min", True), Le: ("le", "max", False)}
_BOUNDS[Lt] = ("lt", "max", True)


def option_spec(name: str) -> OptionSpec:
    """The setting `name` as an option: its type, choices, range, default and help."""
    field = Settings.model_fields[name]
    kind = _unwrap(field.annotation)
    bounds: dict[str, Any] = {}
    for meta in field.metadata:
        if type(meta) in _BOUNDS:
            attr, side, is_open = _BOUNDS[type(meta)]
            bounds[side] = getattr(meta, attr)
            if is_open:
                bounds[f"{side}_open"] = True
    choices = tuple(str(a) for a in get_args(kind)) if get_origin(kind) is Literal else None
    default = field.default
    shown = default is not None and not isinstance(default, bool)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return OptionSpec(
        name=name,
        kind=str if choices else kind,
        choices=choices,
        bounds=bounds,
        default=default,
        help=(field.description or "") + (f" [default: {default}]" if shown else ""),
        path=str(extra["path"]) if "path" in extra else None,
        off_help=str(extra.get("off", "")),
    )


def load_settings(**flags: Any) -> Settings:
    """Settings from flags (None means "not given"), the environment, `.env` and defaults.

    Two sampling flags at once (`--stride` and `--frames`) are a usage error (exit 2), and one
    alone chooses the mode. Raises ConfigError naming the setting, where it came from, and what
    is wrong (UsageError, exit 2, when it came from a flag).
    """
    given = {k: v for k, v in flags.items() if v is not None}
    chosen = [name for name in SAMPLE_MODE_OF if name in given]
    if len(chosen) > 1:
        raise UsageError(f"--{chosen[0]} and --{chosen[1]} both choose frames; give one")
    if chosen and "sample" not in given:
        given["sample"] = SAMPLE_MODE_OF[chosen[0]]
    check_dotenv(Path(".env"))
    try:
        return Settings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a rule across several settings
            raise ConfigError(f"invalid settings: {msg}") from None
        loc = str(err["loc"][0])
        field = loc.removeprefix("VNARRATE_").lower()
        source = flag_name(field) if field in given else f"VNARRATE_{field.upper()}"
        if field == "openai_api_key" or field == "openai_base_url":
            source = loc
        if field in given:
            raise UsageError(f"invalid value for {source}: {msg}") from None
        raise ConfigError(f"invalid setting {source}: {msg}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read .env: {exc.reason}") from None


# --- the groups of settings the commands share ---------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


CONNECTION = _names("api_key base_url provider model timeout max_retries")
SAMPLING = _names(
    "sample stride frames every max_frames resize jpeg_quality scene_threshold exact_times"
)
MODEL = _names(
    "detail max_completion_tokens token_field structured pack image_urls temperature "
    "reasoning_effort language max_images_per_request max_input_tokens max_cost prices"
)
OUTPUT = _names("out_dir jobs force cache cache_dir")
SCRIPT = _names(
    "style words_per_second segment_seconds over_speech min_gap margin_before_speech "
    "margin_after_speech"
)
SOUNDTRACK = _names("speech_threshold speech_min_s speech_min_silence_s speech_pad_s")
TRANSCRIPTION = _names("transcribe stt_model stt_base_url stt_api_key context context_file")
LISTEN = (*SOUNDTRACK, *TRANSCRIPTION)  # the commands that listen to the soundtrack
SPEECH: tuple[str | tuple[str, str], ...] = (
    *_names("duck_db subtitles tts_model voice speed"),
    ("tts_instructions", "--instructions"),
    ("instructions", "--script-instructions"),
    *_names("tts_backend realtime_model wer_threshold strict max_speed max_stretch"),
    *_names("tts_base_url tts_api_key"),
    "timeline",
    *_names("verify verify_onset"),  # the narration heard back (issue 11)
)
BATCH: tuple[str | tuple[str, str], ...] = ("batch", ("batch_wait", "--no-wait"), "batch_poll")
