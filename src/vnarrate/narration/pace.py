"""Pace: a voice -> how many words a second it really speaks, measured once and remembered.

Takes a speech backend and the voice's SpeechOptions; gives the words per second of the voice's
own output (a fixed sentence spoken once, its leading and trailing silence trimmed), which the
word budgets use instead of a guess. The measure is kept in the response cache under the speech
server, backend, model, voice, speed and instructions, so a rerun (and the offline `plan`) knows
it without a request. A value the user gives (`--words-per-second`) always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..media.audio import clip_samples, seconds, trim_silence
from ..models import Clip
from ..server.cache import request_key
from .script import word_count
from .speech import SpeechBackend, SpeechOptions

if TYPE_CHECKING:
    from ..server.cache import ResponseCache

# A plain narration sentence (18 words, one comma): the pauses and word lengths of a real line.
CALIBRATION_TEXT = (
    "A small boat drifts across the quiet harbour at dawn, while the gulls circle slowly above "
    "the water."
)
CALIBRATION_WORDS = word_count(CALIBRATION_TEXT)
# Outside these a measure is surely wrong (a server that answered silence or something else).
PLAUSIBLE = (0.8, 8.0)


class ImplausiblePace(ApiError):
    """The calibration sentence came back as something no voice reading it would make."""


@dataclass(frozen=True)
class Pace:
    """The pace the word budgets assume, and where it came from (for -v and the manifest)."""

    words_per_second: float
    source: str
    characters: int = 0  # billed by measuring it now (0: known, or from the cache)


@dataclass(frozen=True)
class PaceOptions:
    """How the pace is found (session/options.py builds it): the user's value wins, then a measure of
    this voice from the cache, then a new measure (when the run speaks), then `default`."""

    override: float | None  # --words-per-second (flag, env or .env)
    default: float  # until the voice is measured
    key: str  # the cache key of this voice's measure
    known: float | None  # this voice's measure found in the cache when the run started


def pace_key(server: dict[str, Any], voice: SpeechOptions, *, provider: str) -> str:
    """The cache key of a voice's measure: the speech server (`base_url`, `backend`) and every
    option that shapes the audio's pace."""
    request = {
        "backend": server.get("backend"),
        "model": voice.model,
        "voice": voice.voice,
        "speed": voice.speed,
        "instructions": voice.instructions,
        "text": CALIBRATION_TEXT,
    }
    return request_key("voice-pace", request, provider=provider, base_url=server.get("base_url"))


def cached_pace(cache: ResponseCache | None, key: str) -> float | None:
    """A measure stored earlier, if it is there and plausible."""
    entry = cache.get_json(key) if cache is not None else None
    value = entry.get("words_per_second") if entry else None
    if isinstance(value, int | float) and PLAUSIBLE[0] <= value <= PLAUSIBLE[1]:
        return float(value)
    return None


def measure_pace(backend: SpeechBackend, voice: SpeechOptions) -> tuple[float, int]:
    """Words per second of the voice's own output (the calibration sentence spoken once, its
    silence before and after trimmed), and the characters billed. ImplausiblePace when the
    answer cannot be a voice reading it."""
    syn = backend.synthesize(CALIBRATION_TEXT, voice)
    clip = Clip(segment=0, text=CALIBRATION_TEXT, pcm=syn.pcm, sample_rate=syn.sample_rate)
    spoken = seconds(trim_silence(clip_samples(clip)))
    wps = CALIBRATION_WORDS / spoken if spoken > 0 else 0.0
    if not PLAUSIBLE[0] <= wps <= PLAUSIBLE[1]:
        raise ImplausiblePace(
            f"measuring the voice's pace: {spoken:.2f} s of speech for {CALIBRATION_WORDS} "
            "words is not a voice reading them",
            hint="check the speech server, or give --words-per-second",
        )
    return round(wps, 3), syn.characters


def find_pace(
    options: PaceOptions,
    *,
    measure: bool,
    backend: SpeechBackend | None = None,
    voice: SpeechOptions | None = None,
    cache: ResponseCache | None = None,
) -> Pace:
    """The pace to budget with: the user's, the voice's known measure, a new measure (only
    when `measure` and a backend are given; stored in `cache`), else the default."""
    if options.override is not None:
        return Pace(options.override, "--words-per-second")
    known = options.known if options.known is not None else cached_pace(cache, options.key)
    if known is not None:
        return Pace(known, "measured from this voice earlier")
    if measure and backend is not None and voice is not None:
        try:
            wps, characters = measure_pace(backend, voice)
        except ImplausiblePace as exc:  # the run can go on: the fitting ladder copes
            return Pace(options.default, f"the default: {exc}")
        if cache is not None:
            cache.put_json(options.key, {"words_per_second": wps, "model": voice.model})
        return Pace(wps, "measured from this voice now", characters)
    return Pace(options.default, "the default: this voice has not been measured yet")
