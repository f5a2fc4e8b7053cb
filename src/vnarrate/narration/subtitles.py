"""Subtitles stage: Placements (the real, post-fit timings) -> SRT and WebVTT text.

Takes where each narration line ended up on the timeline; gives subtitle files' contents. A line
too long for one cue of two ~42-character lines is split into several cues, at sentence ends
where possible, each shown for a share of the line's time proportional to its length.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from ..media.timecode import format_ts
from ..models import Placement

MAX_LINE_CHARS = 42  # the common broadcast/Netflix guideline for Latin scripts
MAX_LINES = 2

Cue = tuple[float, float, list[str]]

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")


def to_srt(placements: Sequence[Placement]) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, blank line between cues."""
    blocks = []
    for n, (start, end, lines) in enumerate(cues(placements), 1):
        text = "\n".join(line.replace("-->", "->") for line in lines)
        blocks.append(f"{n}\n{format_ts(start, 'srt')} --> {format_ts(end, 'srt')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(placements: Sequence[Placement]) -> str:
    """WebVTT: a `WEBVTT` header, then cues `HH:MM:SS.mmm --> HH:MM:SS.mmm` (text escaped)."""
    blocks = ["WEBVTT\n"]
    for start, end, lines in cues(placements):
        text = "\n".join(_vtt_escape(line) for line in lines)
        blocks.append(f"{format_ts(start, 'vtt')} --> {format_ts(end, 'vtt')}\n{text}\n")
    return "\n".join(blocks)


def cues(placements: Sequence[Placement]) -> list[Cue]:
    """(start_s, end_s, lines) for every cue, in time order; empty lines are skipped."""
    out: list[Cue] = []
    for p in sorted(placements, key=lambda p: p.start_s):
        text = " ".join(p.text.split())
        if not text or p.end_s <= p.start_s:
            continue
        chunks = _chunks(text)
        total = sum(len(c) for c in chunks)
        t = p.start_s
        for k, chunk in enumerate(chunks):
            end = (
                p.end_s if k == len(chunks) - 1 else t + (p.end_s - p.start_s) * len(chunk) / total
            )
            out.append((t, end, wrap(chunk)))
            t = end
    return out


def wrap(text: str, width: int = MAX_LINE_CHARS) -> list[str]:
    """One line if it fits, else two lines as even as possible (broken at a space); more lines
    only when two cannot hold the text."""
    if len(text) <= width:
        return [text]
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    if spaces:
        best = min(spaces, key=lambda i: max(i, len(text) - i - 1))
        first, second = text[:best], text[best + 1 :]
        if max(len(first), len(second)) <= width:
            return [first, second]
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [text]


def _fits(text: str) -> bool:
    return len(wrap(text)) <= MAX_LINES


def _chunks(text: str) -> list[str]:
    """`text` cut into pieces that each fit one cue: whole sentences where they fit, else words;
    then neighbours merged back while the result still fits."""
    if _fits(text):
        return [text]
    units: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if _fits(sentence):
            units.append(sentence)
            continue
        current = ""
        for word in sentence.split(" "):
            candidate = f"{current} {word}" if current else word
            if current and not _fits(candidate):
                units.append(current)
                current = word
            else:
                current = candidate
        if current:
            units.append(current)
    merged: list[str] = []
    for unit in units:
        if merged and _fits(f"{merged[-1]} {unit}"):
            merged[-1] = f"{merged[-1]} {unit}"
        else:
            merged.append(unit)
    return merged


def _vtt_escape(line: str) -> str:
    # `-->` would end the cue's text early in some parsers; & and < start entities and tags.
    line = line.replace("-->", "->")
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
