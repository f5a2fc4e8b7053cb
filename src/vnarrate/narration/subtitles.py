"""Subtitles stage: Placements (the real, post-fit timings) and what people say -> SRT and WebVTT
text people can read.

Takes where each narration line ended up on the timeline (and the video's duration) and, for
`--subtitles dialogue|both`, the transcribed lines of the soundtrack; gives subtitle files'
contents. With both, the two are told apart: narration in italics (WebVTT: the voice
`Narrator`), speech prefixed by its speaker when known (WebVTT: `<v Speaker>`); each track is
timed on its own, so a narration cue may overlap a dialogue cue (players stack them). Timing
follows following common subtitle practice: at most two lines of 42
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
from typing import Literal, Protocol

from ..media.timecode import format_ts
from ..models import Placement, Soundtrack, SpokenLine, SubtitleMode

MAX_LINE_CHARS = 42  # the common broadcast/Netflix guideline for Latin scripts
MAX_LINES = 2
MIN_CUE_S = 1.0  # shortest display: guidelines ask 5/6 s to 1 s (Netflix 5/6 s, BBC ~1 s)
MAX_CPS = 17.0  # reading speed: Netflix's 17 characters a second for adults (BBC 160-180 wpm)
CUE_GAP_S = 0.083  # two frames at 24 fps between consecutive cues, so each change is seen
SHORT_CUE_CHARS = 16  # a cue shorter than this (a word or two) is avoided when splitting

Cue = tuple[float, float, list[str]]
Track = Literal["narration", "dialogue"]
NARRATOR = "Narrator"  # the WebVTT voice of narration cues, beside the dialogue's speakers


class Timed(Protocol):
    """A line on the timeline: a narration Placement or a SpokenLine of the soundtrack."""

    @property
    def start_s(self) -> float: ...
    @property
    def end_s(self) -> float: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class TrackCue:
    """One cue of the subtitle file, and whose words it shows."""

    start: float
    end: float
    lines: list[str]
    track: Track = "narration"
    speaker: str | None = None


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


def subtitle_tracks(
    mode: SubtitleMode, placements: Sequence[Placement], soundtrack: Soundtrack | None
) -> tuple[list[Placement], list[SpokenLine]]:
    """What `--subtitles` shows: the narration's placements, the transcribed dialogue, or both."""
    narration = list(placements) if mode in ("narration", "both") else []
    said = soundtrack.lines if soundtrack is not None and mode in ("dialogue", "both") else []
    return narration, [line for line in said if line.text.strip()]


def dialogue_notes(mode: SubtitleMode, soundtrack: Soundtrack | None) -> list[str]:
    """Why dialogue subtitles asked for came out empty, if they did."""
    if mode not in ("dialogue", "both") or subtitle_tracks(mode, [], soundtrack)[1]:
        return []
    if soundtrack is None:
        return ["--subtitles " + mode + ": the video has no audio track, so no dialogue"]
    if not soundtrack.speech.regions:
        return ["--subtitles " + mode + ": nobody speaks in the video, so no dialogue"]
    return ["--subtitles " + mode + ": what is said was not transcribed, so no dialogue"]


def to_srt(
    placements: Sequence[Timed],
    duration_s: float | None = None,
    *,
    dialogue: Sequence[SpokenLine] = (),
) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, blank line between cues. With
    `dialogue` as well as narration, narration is in italics and speech carries its speaker."""
    both = bool(placements) and bool(dialogue)
    blocks = []
    for n, c in enumerate(track_cues(placements, duration_s, dialogue=dialogue), 1):
        lines = [line.replace("-->", "->") for line in c.lines]
        if both and c.track == "narration":
            lines = [f"<i>{line}</i>" for line in lines]
        elif c.speaker:
            lines[0] = f"{c.speaker}: {lines[0]}"
        text = "\n".join(lines)
        blocks.append(f"{n}\n{format_ts(c.start, 'srt')} --> {format_ts(c.end, 'srt')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(
    placements: Sequence[Timed],
    duration_s: float | None = None,
    *,
    dialogue: Sequence[SpokenLine] = (),
) -> str:
    """WebVTT: a `WEBVTT` header, then cues `HH:MM:SS.mmm --> HH:MM:SS.mmm` (text escaped).
    With `dialogue` as well as narration, each cue names its voice (`<v Narrator>`, the
    speaker's or `<v Speech>`), so players and styles can tell them apart."""
    both = bool(placements) and bool(dialogue)
    blocks = ["WEBVTT\n"]
    for c in track_cues(placements, duration_s, dialogue=dialogue):
        text = "\n".join(_vtt_escape(line) for line in c.lines)
        if both and c.track == "narration":
            text = f"<v {NARRATOR}><i>{text}</i></v>"
        elif both or c.speaker:
            text = f"<v {_vtt_escape(c.speaker or 'Speech')}>{text}</v>"
        blocks.append(f"{format_ts(c.start, 'vtt')} --> {format_ts(c.end, 'vtt')}\n{text}\n")
    return "\n".join(blocks)


def track_cues(
    placements: Sequence[Timed],
    duration_s: float | None = None,
    *,
    dialogue: Sequence[SpokenLine] = (),
) -> list[TrackCue]:
    """The narration's cues and the dialogue's, each track timed on its own (see `cues`), in
    time order (narration first at the same start)."""
    out = [TrackCue(d.start, d.end, wrap(d.text)) for d in _drafts(placements, duration_s)]
    out += [
        TrackCue(d.start, d.end, wrap(d.text), "dialogue", dialogue[d.source].speaker)
        for d in _drafts(dialogue, duration_s)
    ]
    return sorted(out, key=lambda c: (c.start, c.track != "narration"))


@dataclass
class _Draft:
    start: float
    end: float
    text: str
    source: int  # the index of the line it shows


def cues(placements: Sequence[Timed], duration_s: float | None = None) -> list[Cue]:
    """(start_s, end_s, lines) for every cue, in time order; empty lines are skipped. Cues never
    overlap and never run past `duration_s` (when given)."""
    return [(d.start, d.end, wrap(d.text)) for d in _drafts(placements, duration_s)]


def _drafts(placements: Sequence[Timed], duration_s: float | None) -> list[_Draft]:
    drafts: list[_Draft] = []
    order = sorted(range(len(placements)), key=lambda i: placements[i].start_s)
    for i in order:
        p = placements[i]
        text = " ".join(p.text.split())
        if not text or p.end_s <= p.start_s:
            continue
        chunks = split_cues(text)
        total = sum(len(c) for c in chunks)
        t = p.start_s
        for k, chunk in enumerate(chunks):
            last = k == len(chunks) - 1
            end = p.end_s if last else t + (p.end_s - p.start_s) * len(chunk) / total
            drafts.append(_Draft(t, end, chunk, i))
            t = end
    _readable(drafts, duration_s)
    return [d for d in drafts if d.end > d.start]


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
