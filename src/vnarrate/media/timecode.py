"""Timecodes (pure): seconds -> the one text form each reader needs.

Takes a time in seconds; gives `m:ss.s` (`h:mm:ss.s` past an hour) for prompts, plans, sheets and
people, or `HH:MM:SS,mmm` / `HH:MM:SS.mmm` for SRT and WebVTT. Every form rounds once, in whole
units of its last digit, so 59.96 s reads 1:00.0, never 0:60.0.
"""

from __future__ import annotations

import math
from typing import Literal

Style = Literal["short", "srt", "vtt"]


def format_ts(seconds: float, style: Style = "short") -> str:
    """`seconds` as a timecode: "short" m:ss.s (tenths; h:mm:ss.s past an hour), "srt"
    HH:MM:SS,mmm or "vtt" HH:MM:SS.mmm. Negative times read as 0."""
    per_second = 10 if style == "short" else 1000
    units = max(0, math.floor(max(0.0, seconds) * per_second + 0.5))
    whole, frac = divmod(units, per_second)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if style == "short":
        if hours:
            return f"{hours}:{minutes:02d}:{secs:02d}.{frac}"
        return f"{minutes}:{secs:02d}.{frac}"
    sep = "," if style == "srt" else "."
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{frac:03d}"
