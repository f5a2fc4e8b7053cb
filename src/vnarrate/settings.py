"""Settings: the one place that reads the environment and `.env`, and where every default lives.

Takes command-line flags (None = not given), the environment, `.env` in the working directory and
the defaults below, in that order of precedence; gives one validated Settings. Every field's
description is its `--help` text and its bounds and Literal choices are the CLI's ranges and
choices (cli/options.py generates the options from these fields), so a default, a choice or a
range is written here once. Every option's env var is `VNARRATE_<NAME>`; the key and base URL
also honour `OPENAI_API_KEY` / `OPENAI_BASE_URL`. No provider logic: session.py resolves the
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

from .errors import ConfigError, UsageError
from .models import (
    Detail,
    ImageUrlMode,
    PackMode,
    ProviderName,
    SampleMode,
    SpeechBackendMode,
    StructuredMode,
    TokenField,
)

Provider = Literal["auto", ProviderName]
OutputFormat = Literal["markdown", "text", "json"]
Preset = Literal["general", "youtube", "accessibility", "technical"]
Style = Literal["documentary", "audio-description", "promo", "tutorial"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]

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
    # ~150 words a minute: the usual rate of OpenAI's voices at speed 1.0 (not measurable here
    # without a key; tune with --words-per-second).
    words_per_second: float = Field(
        default=2.5, gt=0.2, le=8, description="The voice's pace at speed 1.0, for word budgets."
    )
    segment_seconds: float = Field(
        default=6.0, ge=1, le=120, description="Typical length of a narration slot."
    )

    # --- speech --------------------------------------------------------------------------------
    tts_model: str = Field(default="gpt-4o-mini-tts", min_length=1, description="Speech model.")
    voice: str = Field(
        default="alloy", min_length=1, description="Voice, e.g. onyx, nova, coral, sage, echo."
    )
    speed: float = Field(default=1.0, ge=0.25, le=4.0, description="Speaking speed.")
    tts_instructions: str | None = Field(
        default=None, description="Tone of voice (gpt-4o-mini-tts; ignored by tts-1)."
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
        description="Realtime: word error rate above which a take is redone once.",
    )
    strict: bool = Field(
        default=False, description="Realtime: fail if speech strays from the text."
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
    subtitles: bool = Field(default=True, description="Write .srt and .vtt subtitles.")
    jobs: int = Field(default=4, ge=1, le=64, description="Inputs (and speech requests) at once.")

    # --- frames ------------------------------------------------------------------------------
    sample: SampleMode = Field(default="interval", description="How to choose frames.")
    stride: int = Field(default=50, ge=1, description="Every Nth frame (--sample stride).")
    frames: int = Field(default=16, ge=1, description="N frames spread evenly (--sample count).")
    every: float = Field(
        default=1.0, gt=0, description="A frame every S seconds (--sample interval)."
    )
    max_frames: int = Field(default=48, ge=1, le=1500, description="Cap on frames, spread evenly.")
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
    cache: bool = Field(default=True, description="Answer identical requests from the cache.")
    cache_dir: Path | None = Field(
        default=None,
        description="Response cache folder (default: the user cache folder).",
        json_schema_extra=FOLDER,
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

    @field_validator(
        "base_url", "prompt", "language", "instructions", "tts_instructions", "tts_base_url"
    )
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v if v and v.strip() else None

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

    def secret(self, name: Literal["api_key", "tts_api_key"]) -> str:
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
    _check_dotenv(Path(".env"))
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


def _check_dotenv(path: Path) -> None:
    """A `.env` that python-dotenv cannot fully parse is a configuration error naming the lines
    (not the library's log warnings followed by a run with some settings silently missing). The
    lines' text is never shown: it may hold a key."""
    if not path.is_file():
        return
    from dotenv.parser import parse_stream

    try:
        with open(path, encoding="utf-8") as fh:
            bad = []
            for binding in parse_stream(fh):
                if binding.error:
                    text = binding.original.string
                    blank = text[: len(text) - len(text.lstrip())]  # lines before the statement
                    bad.append(binding.original.line + blank.count("\n"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read .env: {exc.reason}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read .env: {exc.strerror or exc}") from None
    if bad:
        where = ", ".join(str(n) for n in bad[:5]) + (" …" if len(bad) > 5 else "")
        raise ConfigError(
            f"{path}: cannot parse line{'s' if len(bad) > 1 else ''} {where}",
            hint="each line must be NAME=VALUE, a comment (#) or blank; quotes must be closed",
        )


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
SCRIPT = _names("style words_per_second segment_seconds")
SPEECH: tuple[str | tuple[str, str], ...] = (
    *_names("duck_db subtitles tts_model voice speed"),
    ("tts_instructions", "--instructions"),
    ("instructions", "--script-instructions"),
    *_names("tts_backend realtime_model wer_threshold strict max_speed max_stretch"),
    *_names("tts_base_url tts_api_key"),
)
