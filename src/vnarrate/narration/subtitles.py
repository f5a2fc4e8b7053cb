"""Subtitles stage: Placements (the real, post-fit timings) -> SRT and WebVTT text people can read.

Takes where each narration line ended up on the timeline (and the video's duration); gives
subtitle files' contents, following common subtitle practice: at most two lines of 42
characters a cue; a line too long for one cue is split at phrase boundaries (sentence ends,
then clause marks, then before a conjunction) into cues of even length, each shown for a share
of the line's time proportional to its length; a cue is shown at least MIN_CUE_S and long enough
to read at MAX_CPS characters a second, running on into the silence after its speech when
needed, but never into the next cue (CUE_GAP_S apart) nor past the end of the video.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from ..media.timecode import format_ts
from ..models import Placement

MAX_LINE_CHARS = 42  # the common broadcast/Netflix guideline for Latin scripts
MAX_LINES = 2
MIN_CUE_S = 1.0  # shortest display: guidelines ask 5/6 s to 1 s (Netflix 5/6 s, BBC ~1 s)
MAX_CPS = 17.0  # reading speed: Netflix's 17 characters a second for adults (BBC 160-180 wpm)
CUE_GAP_S = 0.083  # two frames at 24 fps between consecutive cues, so each change is seen
SHORT_CUE_CHARS = 16  # a cue shorter than this (a word or two) is avoided when splitting

Cue = tuple[float, float, list[str]]

# Costs of splitting a line after a word (lower: a better place to cut).
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’»)\]]*$")
_CLAUSE_END = re.compile(r"[,;:—–、，；：][\"'”’»)\]]*$")
_CONJUNCTIONS = frozenset(
    [
        "and",
        "but",
        "or",
        "so",
        "because",
        "which",
        "who",
        "that",
        "when",
        "while",
        "then",
        "as",
        "if",
        "though",
        "although",
        "where",
        "until",
        "after",
        "before",
        "since",
    ]
)
_DANGLING = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "my",
        "his",
        "her",
        "its",
        "their",
        "our",
    ]
)


def to_srt(placements: Sequence[Placement], duration_s: float | None = None) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, blank line between cues."""
    blocks = []
    for n, (start, end, lines) in enumerate(cues(placements, duration_s), 1):
        text = "\n".join(line.replace("-->", "->") for line in lines)
        blocks.append(f"{n}\n{format_ts(start, 'srt')} --> {format_ts(end, 'srt')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(placements: Sequence[Placement], duration_s: float | None = None) -> str:
    """WebVTT: a `WEBVTT` header, then cues `HH:MM:SS.mmm --> HH:MM:SS.mmm` (text escaped)."""
    blocks = ["WEBVTT\n"]
    for start, end, lines in cues(placements, duration_s):
        text = "\n".join(_vtt_escape(line) for line in lines)
        blocks.append(f"{format_ts(start, 'vtt')} --> {format_ts(end, 'vtt')}\n{text}\n")
    return "\n".join(blocks)


@dataclass
class _Draft:
    start: float
    end: float
    text: str


def cues(placements: Sequence[Placement], duration_s: float | None = None) -> list[Cue]:
    """(start_s, end_s, lines) for every cue, in time order; empty lines are skipped. Cues never
    overlap and never run past `duration_s` (when given)."""
    drafts: list[_Draft] = []
    for p in sorted(placements, key=lambda p: p.start_s):
        text = " ".join(p.text.split())
        if not text or p.end_s <= p.start_s:
            continue
        chunks = split_cues(text)
        total = sum(len(c) for c in chunks)
        t = p.start_s
        for k, chunk in enumerate(chunks):
            last = k == len(chunks) - 1
            end = p.end_s if last else t + (p.end_s - p.start_s) * len(chunk) / total
            drafts.append(_Draft(t, end, chunk))
            t = end
    _readable(drafts, duration_s)
    return [(d.start, d.end, wrap(d.text)) for d in drafts if d.end > d.start]


def _readable(drafts: list[_Draft], duration_s: float | None) -> None:
    """Each cue held at least MIN_CUE_S and long enough to read at MAX_CPS: its end moves on
    into the silence after it, up to CUE_GAP_S before the next cue and the video's end. Chained
    cues of one line (no silence between them) get a CUE_GAP_S pause carved out of the first."""
    for n, d in enumerate(drafts):
        wanted = d.start + max(MIN_CUE_S, len(d.text) / MAX_CPS)
        limit = drafts[n + 1].start - CUE_GAP_S if n + 1 < len(drafts) else math.inf
        if duration_s is not None:
            limit = min(limit, duration_s)
        end = min(max(d.end, wanted), limit)
        if end - d.start < 0.2 and n + 1 < len(drafts):  # no room for a pause: chain them
            end = min(drafts[n + 1].start, max(d.end, d.start + 0.2))
        d.end = end


def split_cues(text: str) -> list[str]:
    """`text` cut into cues that each fit two lines: as few cues as possible, of even length,
    cut where a reader pauses (a sentence end, then a clause mark, then before a conjunction),
    never leaving a word or two alone."""
    if _fits(text):
        return [text]
    words = _tokens(text)
    n = len(words)
    best: list[tuple[float, int]] = [(0.0, 0)] + [(math.inf, 0)] * n
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            piece = _join(words[i:j])
            if not _fits(piece) and i < j - 1:
                break  # longer pieces only get longer
            cost = best[i][0] + _cue_cost(piece, words, j)
            if cost < best[j][0]:
                best[j] = (cost, i)
    out: list[str] = []
    j = n
    while j > 0:
        i = best[j][1]
        out.append(_join(words[i:j]))
        j = i
    return out[::-1]


def _cue_cost(piece: str, words: Sequence[str], j: int) -> float:
    """How bad a cue is: one more cue, a short one, and where it was cut (after word j-1)."""
    cost = 4.0 + (6.0 if len(piece) < SHORT_CUE_CHARS else 0.0)
    if not _fits(piece):
        cost += 100.0  # one word too long for a cue: allowed only alone
    if j == len(words):
        return cost
    before, after = words[j - 1], words[j].lstrip(" ")
    if _SENTENCE_END.search(before):
        return cost
    if _CLAUSE_END.search(before):
        return cost + 1.0
    last = before.strip().lower()
    if last in _DANGLING or last in _CONJUNCTIONS:
        return cost + 9.0  # "the | heron", "and | then"
    return cost + (2.0 if after.lower() in _CONJUNCTIONS else 5.0)


def _tokens(text: str) -> list[str]:
    """Words, each with the space before it (" word"), the first without; a run of text with
    no spaces (Chinese, Japanese) longer than a line is cut after its punctuation, or every
    line's width, into pieces joined without a space."""
    out: list[str] = []
    for word in text.split(" "):
        glue = " " if out else ""
        if len(word) <= MAX_LINE_CHARS or not _is_cjk(word):
            out.append(glue + word)  # a long Latin "word" (a URL) stays whole
            continue
        pieces = [p for p in re.split(r"(?<=[。！？、，；：])", word) if p]
        for k, piece in enumerate(pieces):
            for m in range(0, len(piece), MAX_LINE_CHARS):
                out.append((glue if k == 0 and m == 0 else "") + piece[m : m + MAX_LINE_CHARS])
    return out


def _join(words: Sequence[str]) -> str:
    return "".join(words).strip()


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
    elif _is_cjk(text):  # written without spaces: cut anywhere, in even lines
        n = math.ceil(len(text) / width)
        size = math.ceil(len(text) / n)
        return [text[i : i + size] for i in range(0, len(text), size)]
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [text]


def _fits(text: str) -> bool:
    lines = wrap(text)
    return len(lines) <= MAX_LINES and all(len(line) <= MAX_LINE_CHARS for line in lines)


def _is_cjk(text: str) -> bool:
    return any(ord(ch) >= 0x2E80 for ch in text)


def _vtt_escape(line: str) -> str:
    # `-->` would end the cue's text early in some parsers; & and < start entities and tags.
    line = line.replace("-->", "->")
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
