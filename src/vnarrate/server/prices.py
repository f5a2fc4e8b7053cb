"""Prices (pure, data-driven): token usage or speech length -> US dollars, or None when unknown.

Takes the packaged table `data/prices.json` (dated, with its sources), optionally merged with a
user's JSON file of the same shape, and a Usage or a speech length; gives a cost in dollars.
A model missing from the table costs None ("unknown"): never a guessed number.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from ..models import Usage

PER_MILLION = 1_000_000
# Derived, not published: gpt-4o-mini-tts lists $12 per 1M audio output tokens and an estimated
# $0.015 per minute, i.e. 1,250 audio tokens per minute of speech. Used to estimate audio output
# tokens of token-priced speech models from the speech's length.
AUDIO_TOKENS_PER_MINUTE = 1250
# Characters per text token for speech input (English prose is ~4.7 on o200k_base).
CHARS_PER_TOKEN = 4.0
# Speaking rate used when only the character count is known: 150 words a minute of ~6 characters.
CHARS_PER_SECOND = 15.0

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
# The Batch API bills every request at half the normal price (OpenAI's Batch API guide).
BATCH_FACTOR = 0.5


class LongContext(BaseModel):
    """Whole-request surcharge when one request's input exceeds `threshold` tokens."""

    model_config = ConfigDict(extra="forbid")

    threshold: int = Field(gt=0)
    input_multiplier: float = Field(default=1.0, ge=0)
    output_multiplier: float = Field(default=1.0, ge=0)


class ChatPrice(BaseModel):
    """USD per 1M tokens of a chat model."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)  # None: cached tokens cost `input`
    output: float = Field(ge=0)
    long_context: LongContext | None = None
    note: str | None = None


class SpeechPrice(BaseModel):
    """A speech model's price: per 1M characters, or per 1M text/audio tokens."""

    model_config = ConfigDict(extra="forbid")

    per_1m_characters: float | None = Field(default=None, ge=0)
    text_input: float | None = Field(default=None, ge=0)  # per 1M text input tokens
    text_output: float | None = Field(default=None, ge=0)  # per 1M text output tokens
    audio_output: float | None = Field(default=None, ge=0)  # per 1M audio output tokens
    estimated_per_minute: float | None = Field(default=None, ge=0)  # OpenAI's own estimate
    note: str | None = None


class TranscriptionPrice(BaseModel):
    """A speech-to-text model's price: USD per minute of audio sent."""

    model_config = ConfigDict(extra="forbid")

    per_minute: float = Field(ge=0)
    note: str | None = None


class PriceTable(BaseModel):
    """The price table: dated, with where it came from."""

    model_config = ConfigDict(extra="forbid")

    as_of: str = ""
    currency: str = "USD"
    source: str = ""
    notes: list[str] = Field(default_factory=list)
    chat: dict[str, ChatPrice] = Field(default_factory=dict)
    speech: dict[str, SpeechPrice] = Field(default_factory=dict)
    transcription: dict[str, TranscriptionPrice] = Field(default_factory=dict)
    overrides: list[str] = Field(default_factory=list)  # user files merged in, in order
    user_chat: list[str] = Field(default_factory=list)  # models the user's files price
    user_speech: list[str] = Field(default_factory=list)
    user_transcription: list[str] = Field(default_factory=list)

    def only_user(self) -> PriceTable:
        """The entries the user's own price files gave: what prices a server that is not
        OpenAI (its models may share OpenAI's names, never its prices)."""
        return self.model_copy(
            update={
                "chat": {k: v for k, v in self.chat.items() if k in self.user_chat},
                "speech": {k: v for k, v in self.speech.items() if k in self.user_speech},
                "transcription": {
                    k: v for k, v in self.transcription.items() if k in self.user_transcription
                },
            },
            deep=True,
        )

    def chat_price(self, model: str) -> ChatPrice | None:
        key = _lookup(model, self.chat)
        return self.chat[key] if key else None

    def speech_price(self, model: str) -> SpeechPrice | None:
        key = _lookup(model, self.speech)
        return self.speech[key] if key else None

    def transcription_price(self, model: str) -> TranscriptionPrice | None:
        key = _lookup(model, self.transcription)
        return self.transcription[key] if key else None


def _lookup(model: str, table: Mapping[str, Any]) -> str | None:
    """The table key for `model`: exact, else without a router prefix or a -YYYY-MM-DD suffix.

    Deliberately no prefix matching: `gpt-5.4-pro` must not get gpt-5.4's price.
    """
    name = model.strip().lower()
    candidates = [name, name.rsplit("/", 1)[-1]]
    candidates += [_DATE_SUFFIX.sub("", c) for c in candidates]
    for candidate in candidates:
        if candidate in table:
            return candidate
    return None


@lru_cache(maxsize=1)
def _packaged() -> PriceTable:
    text = resources.files("vnarrate").joinpath("data/prices.json").read_text(encoding="utf-8")
    return PriceTable.model_validate_json(text)


def packaged_prices() -> PriceTable:
    """The table shipped with vnarrate (a copy: callers may not change the cached one)."""
    return _packaged().model_copy(deep=True)


_BOOKKEEPING = (
    "overrides",
    "user_chat",
    "user_speech",
    "user_transcription",
)  # never taken from a user's file


def merge_prices(base: PriceTable, override: Mapping[str, Any], *, origin: str = "") -> PriceTable:
    """`base` with `override`'s entries on top. An entry replaces the model's entry as a whole."""
    try:
        mine = {k: v for k, v in override.items() if k not in _BOOKKEEPING}
        extra = PriceTable.model_validate(mine)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"invalid price file {origin or '(given)'}: {where}: {err['msg']}",
            hint="see src/vnarrate/data/prices.json for the format",
        ) from None
    merged = base.model_copy(deep=True)
    merged.chat.update({k.lower(): v for k, v in extra.chat.items()})
    merged.speech.update({k.lower(): v for k, v in extra.speech.items()})
    merged.user_chat = sorted({*merged.user_chat, *(k.lower() for k in extra.chat)})
    merged.user_speech = sorted({*merged.user_speech, *(k.lower() for k in extra.speech)})
    merged.transcription.update({k.lower(): v for k, v in extra.transcription.items()})
    merged.user_transcription = sorted(
        {*merged.user_transcription, *(k.lower() for k in extra.transcription)}
    )
    if "as_of" in override:
        merged.as_of = extra.as_of
    if "source" in override:
        merged.source = extra.source
    merged.notes = [*merged.notes, *extra.notes]
    merged.overrides = [*merged.overrides, origin or "(given)"]
    return merged


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The packaged table, with the user's JSON file at `path` merged over it when given."""
    table = packaged_prices()
    if path is None or str(path) == "":
        return table
    file = Path(path).expanduser()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"price file {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read price file {file}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"price file {file} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"price file {file} must hold a JSON object")
    return merge_prices(table, data, origin=str(file))


def chat_cost(model: str, usage: Usage, prices: PriceTable | None = None) -> float | None:
    """Dollars for `usage` on `model`, or None when the model has no price.

    prompt_tokens include cached_tokens (as Chat Completions reports them); reasoning tokens are
    part of completion_tokens. The long-context surcharge is applied when the usage is of one
    request (usage.requests <= 1) whose prompt exceeds the threshold: a sum over several requests
    cannot say which one was long.
    """
    price = (prices or _packaged()).chat_price(model)
    if price is None:
        return None
    cached = min(max(0, usage.cached_tokens), max(0, usage.prompt_tokens))
    fresh = max(0, usage.prompt_tokens) - cached
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    in_mult = out_mult = 1.0
    lc = price.long_context
    if lc is not None and usage.requests <= 1 and usage.prompt_tokens > lc.threshold:
        in_mult, out_mult = lc.input_multiplier, lc.output_multiplier
    dollars = (
        fresh * price.input * in_mult
        + cached * cached_rate * in_mult
        + max(0, usage.completion_tokens) * price.output * out_mult
    )
    return dollars / PER_MILLION


def usage_cost(
    model: str, usage: Usage, prices: PriceTable | None = None, *, free: bool = False
) -> float | None:
    """What requests cost by the API's own usage figures: 0 when answered from the cache or by a
    free (local) server, None when the model has no price."""
    if usage.requests == 0 or free:
        return 0.0
    return chat_cost(model, usage, prices)


def speech_cost(
    model: str,
    characters: int,
    seconds: float | None = None,
    prices: PriceTable | None = None,
) -> float | None:
    """Dollars to synthesize `characters` of text lasting `seconds`, or None when unknown.

    Character-priced models (tts-1, tts-1-hd) need only the characters. Token-priced ones
    (gpt-4o-mini-tts, realtime models) are estimated: text input ~ characters / 4 tokens, audio
    output ~ AUDIO_TOKENS_PER_MINUTE per minute of speech (`seconds`, or characters at
    CHARS_PER_SECOND when not given); realtime models also bill the spoken text as text output.
    """
    price = (prices or _packaged()).speech_price(model)
    if price is None:
        return None
    chars = max(0, characters)
    if price.per_1m_characters is not None:
        return chars * price.per_1m_characters / PER_MILLION
    if price.audio_output is None and price.estimated_per_minute is None:
        return None
    secs = seconds if seconds is not None else chars / CHARS_PER_SECOND
    minutes = max(0.0, secs) / 60.0
    text_tokens = math.ceil(chars / CHARS_PER_TOKEN)
    dollars = text_tokens * (price.text_input or 0.0) / PER_MILLION
    dollars += text_tokens * (price.text_output or 0.0) / PER_MILLION
    if price.audio_output is not None:
        dollars += minutes * AUDIO_TOKENS_PER_MINUTE * price.audio_output / PER_MILLION
    else:
        dollars += minutes * (price.estimated_per_minute or 0.0)
    return dollars


def transcription_cost(
    model: str, seconds: float, prices: PriceTable | None = None
) -> float | None:
    """Dollars to transcribe `seconds` of audio with `model` (billed by the audio's length, to
    the second), or None when the model has no price."""
    price = (prices or _packaged()).transcription_price(model)
    if price is None:
        return None
    return max(0.0, seconds) / 60.0 * price.per_minute


def total_cost(*costs: float | None) -> float | None:
    """The sum of several costs; None (unknown) when any of them is."""
    return None if any(c is None for c in costs) else float(sum(c or 0.0 for c in costs))


def format_usd(dollars: float | None) -> str:
    """`$0.0123`, `$1.23`, or `unknown`: enough digits that small estimates are not $0.00."""
    if dollars is None:
        return "unknown"
    if dollars == 0:
        return "$0.00"
    if dollars < 0.0001:
        return "<$0.0001"
    if dollars < 0.01:
        return f"${dollars:.4f}"
    if dollars < 1:
        return f"${dollars:.3f}"
    return f"${dollars:,.2f}"


# --- which prices a server gets (issue 12: a local server is not priced as OpenAI) --------------

PriceBasis = Literal["table", "free", "unknown"]


def price_basis(*, openai: bool, local: bool) -> PriceBasis:
    """How a server's requests are priced: OpenAI's by the table; a local server kind (Ollama,
    vLLM, llama.cpp, LM Studio) is free; any other server (a hosted compatible API, a proxy, an
    unknown local server) is unknown, except for models the user's own price file names."""
    if openai:
        return "table"
    return "free" if local else "unknown"


def prices_for(table: PriceTable, basis: PriceBasis) -> PriceTable:
    """The table a server's costs are looked up in: all of it for OpenAI, the user's own
    entries elsewhere."""
    return table if basis == "table" else table.only_user()


def describe_cost(dollars: float | None, basis: PriceBasis = "table") -> str:
    """format_usd, except that a free server says "free" and an unpriced one says why."""
    if basis == "free" and not dollars:
        return "free"
    if dollars is None and basis == "unknown":
        return "unknown (no price for this server)"
    return format_usd(dollars)


# --- announced shutdowns (data/shutdowns.json, dated, with sources) -----------------------------


class Shutdowns(BaseModel):
    """OpenAI's announced shutdown dates, by model: the one place they are kept."""

    model_config = ConfigDict(extra="forbid")

    as_of: str
    sources: list[str]
    notes: list[str] = Field(default_factory=list)
    models: dict[str, datetime.date]


@lru_cache(maxsize=1)
def shutdowns() -> Shutdowns:
    text = resources.files("vnarrate").joinpath("data/shutdowns.json").read_text(encoding="utf-8")
    return Shutdowns.model_validate_json(text)


def shutdown_date(model: str) -> datetime.date | None:
    """When OpenAI stops serving `model` (a dated snapshot shares its model's date), or None."""
    table = shutdowns().models
    key = _lookup(model, table)
    return table[key] if key else None


def batch_price(dollars: float | None, batch: bool) -> float | None:
    """A chat cost at the Batch API's price when `batch` (None stays unknown)."""
    return dollars * BATCH_FACTOR if batch and dollars is not None else dollars
