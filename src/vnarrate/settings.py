"""Settings: the one place that reads the environment and `.env`, and where every default lives.

Precedence, highest first: command-line flag > environment variable > `.env` in the working
directory > default. Every option's env var is `VNARRATE_<NAME>`; the key and base URL also
honour `OPENAI_API_KEY` / `OPENAI_BASE_URL`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError, UsageError
from .models import Detail, SampleMode, SamplingSpec, check_resize

if TYPE_CHECKING:
    from .server.providers import ProviderProfile

Provider = Literal["auto", "openai", "ollama", "vllm", "llamacpp", "lmstudio", "compatible"]
TokenField = Literal["auto", "max_completion_tokens", "max_tokens"]
OutputFormat = Literal["markdown", "text", "json"]


def _env(name: str, *extra: str) -> AliasChoices:
    # Aliased fields lose the env prefix, so the VNARRATE_ name is listed explicitly; the field
    # name itself stays valid (populate_by_name) so that flags can be passed as keyword arguments.
    return AliasChoices(f"VNARRATE_{name.upper()}", *extra)


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
        default=None, validation_alias=_env("api_key", "OPENAI_API_KEY")
    )
    base_url: str | None = Field(default=None, validation_alias=_env("base_url", "OPENAI_BASE_URL"))
    provider: Provider = Field(default="auto")
    timeout: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)

    # --- vision / chat -----------------------------------------------------------------------
    # gpt-5.4-mini: served after gpt-4o/gpt-4.1 (2027-01-14) and gpt-5 (2026-12-11) shut down.
    model: str = Field(default="gpt-5.4-mini", min_length=1)
    detail: Detail = Field(default="auto")
    # Large enough for a reasoning model's hidden tokens plus the answer (see DESIGN.md).
    max_completion_tokens: int = Field(default=8000, ge=16)
    token_field: TokenField = "auto"
    structured: Literal["auto", "json_schema", "json_object", "none"] = "auto"
    pack: Literal["auto", "none", "grid"] = "auto"  # tile frames into sheets for 1-image servers
    image_urls: Literal["auto", "pass", "download"] = "auto"
    temperature: float | None = Field(default=None, ge=0, le=2)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = Field(
        default=None
    )
    prompt: str | None = Field(default=None)
    preset: str = Field(default="general")
    language: str | None = Field(default=None)

    # --- narration script --------------------------------------------------------------------
    style: str = "documentary"
    instructions: str | None = None  # for the script writer
    # ~150 words a minute: the usual rate of OpenAI's voices at speed 1.0 (not measurable here
    # without a key; tune with --words-per-second).
    words_per_second: float = Field(default=2.5, gt=0.2, le=8)
    segment_seconds: float = Field(default=6.0, ge=1, le=120)

    # --- speech --------------------------------------------------------------------------------
    tts_model: str = Field(default="gpt-4o-mini-tts", min_length=1)
    voice: str = Field(default="alloy", min_length=1)
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    tts_instructions: str | None = None  # tone, for models that take it
    tts_backend: Literal["auto", "speech", "realtime"] = "auto"
    realtime_model: str = "gpt-realtime-2.1-mini"
    wer_threshold: float = Field(default=0.15, ge=0, le=1)  # Realtime: how far speech may stray
    strict: bool = False  # Realtime: fail instead of reporting a segment spoken differently
    tts_base_url: str | None = None
    tts_api_key: SecretStr | None = None
    max_speed: float = Field(default=1.25, ge=1.0, le=4.0)
    max_stretch: float = Field(default=1.25, ge=1.0, le=2.0)
    duck_db: float = Field(default=-12.0, ge=-60, le=0)
    subtitles: bool = True
    jobs: int = Field(default=4, ge=1, le=64)

    # --- frames ------------------------------------------------------------------------------
    sample: SampleMode = Field(default="interval")
    stride: int = Field(default=50, ge=1)
    frames: int = Field(default=16, ge=1)
    every: float = Field(default=1.0, gt=0)
    max_frames: int = Field(default=48, ge=1, le=1500)
    resize: int = Field(default=768, ge=0, le=16384)
    jpeg_quality: int = Field(default=85, ge=1, le=100)
    scene_threshold: float = Field(default=0.3, gt=0, le=1)  # --sample scenes: cut sensitivity

    # --- soundtrack ----------------------------------------------------------------------------
    # Measured on the shared dialogue clips and generated mixes (BENCHMARKS.md, "Speech detection").
    speech_threshold: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="speech probability (0-1) at which a 32 ms window of the soundtrack counts as speech",
    )
    speech_min_s: float = Field(
        default=0.25,
        ge=0,
        le=5,
        description="seconds: shorter bursts of detected speech are ignored",
    )
    speech_min_silence_s: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description="seconds: shorter pauses do not split speech",
    )
    speech_pad_s: float = Field(
        default=0.2,
        ge=0,
        le=2,
        description="seconds added before and after each stretch of speech",
    )

    # --- plan, budget, limits ----------------------------------------------------------------
    max_cost: float | None = Field(default=None, ge=0)  # dollars; refuse runs estimated above it
    prices: Path | None = None  # a JSON file of prices over the packaged ones
    max_images_per_request: int | None = Field(default=None, ge=1, le=1500)  # None: provider's
    max_input_tokens: int | None = Field(default=None, ge=1000)  # None: provider's default

    # --- cache ---------------------------------------------------------------------------------
    cache: bool = True
    cache_dir: Path | None = None  # None: the user cache folder (~/.cache/vnarrate on Linux)

    # --- output ------------------------------------------------------------------------------
    format: OutputFormat = Field(default="markdown")
    force: bool = Field(default=False)
    out_dir: Path | None = Field(default=None)

    @field_validator("resize")
    @classmethod
    def _resize_sane(cls, v: int) -> int:
        return check_resize(v)

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
            chosen = [n for n in ("stride", "frames", "every") if n in self.model_fields_set]
            if len(chosen) > 1:
                raise ValueError(
                    f"{' and '.join('VNARRATE_' + n.upper() for n in chosen)} both choose "
                    "frames: set VNARRATE_SAMPLE to say which"
                )
            if chosen:
                mode = {"stride": "stride", "frames": "count", "every": "interval"}[chosen[0]]
                object.__setattr__(self, "sample", mode)
        return self

    def sampling(self) -> SamplingSpec:
        """The frames stage's options."""
        return SamplingSpec(
            mode=self.sample,
            stride=self.stride,
            count=self.frames,
            every_s=self.every,
            max_frames=self.max_frames,
            resize=self.resize,
            jpeg_quality=self.jpeg_quality,
            scene_threshold=self.scene_threshold,
        )

    def resolved_provider(self) -> str:
        """The provider, detected from the base URL when set to auto."""
        from .server.providers import detect_provider

        return detect_provider(self.base_url) if self.provider == "auto" else self.provider

    def profile(self) -> ProviderProfile:
        """What the configured server accepts (token field, detail, image cap, ...)."""
        from .server.providers import profile_for

        return profile_for(self.resolved_provider())

    def resolved_token_field(self) -> Literal["max_completion_tokens", "max_tokens"]:
        if self.token_field != "auto":
            return self.token_field
        return self.profile().token_field

    def resolved_structured(self) -> Literal["json_schema", "json_object", "none"]:
        if self.structured != "auto":
            return self.structured
        return self.profile().structured_output

    def require_key(self) -> str:
        """The API key, or a ConfigError saying how to set one. Local servers accept a dummy."""
        if self.api_key is not None and self.api_key.get_secret_value().strip():
            return self.api_key.get_secret_value().strip()
        if self.profile().dummy_key_ok:
            return "not-needed"  # local servers ignore the key, but the SDK insists on one
        raise ConfigError(
            "no API key",
            hint="set OPENAI_API_KEY in the environment or in .env, or pass --api-key",
        )


def _field_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def load_settings(**flags: Any) -> Settings:
    """Settings from flags (None means "not given"), the environment, `.env` and defaults.

    Raises ConfigError naming the setting, where it came from, and what is wrong.
    """
    given = {k: v for k, v in flags.items() if v is not None}
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
        source = _field_flag(field) if field in given else f"VNARRATE_{field.upper()}"
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
