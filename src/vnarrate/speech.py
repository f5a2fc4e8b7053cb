"""Speech stage: text -> mono 16-bit PCM at 24 kHz, behind a small backend interface.

Takes a segment's text and SpeechOptions; gives a Synthesis. Backends: the /v1/audio/speech
endpoint (here) and the Realtime API (`realtime.py`).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

SAMPLE_RATE = 24000  # what OpenAI's `pcm` format and the Realtime API's pcm16 deliver


class SpeechOptions(BaseModel):
    """What a backend needs to speak one text."""

    model: str
    voice: str
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    instructions: str | None = None  # tone; only some models honour it


class Synthesis(BaseModel):
    """One backend call's result: complete PCM audio (never partial) and what was said."""

    model_config = ConfigDict(frozen=True)

    pcm: bytes = Field(repr=False)
    sample_rate: int = SAMPLE_RATE
    transcript: str | None = None  # what the backend reports it spoke, when it can tell
    characters: int = 0  # billed input characters


class SpeechBackend(Protocol):
    """Anything that turns text into speech. Implementations must be safe to call from threads."""

    name: str

    def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
        """Speak `text`; raise ApiError (or a subclass) on failure, never return partial audio."""
        ...
