"""Script checks (pure): a model's timed narration -> a valid Script, and what is over budget.

Takes a Script, the video's duration and the speaking rate; gives a repaired Script (sorted,
inside the video, no overlaps, no empty text) plus notes, and the segments whose text will not
fit its slot at the voice's pace. Also reads and writes `script.json`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ..errors import InputError
from ..models import Script, Segment

MIN_SEGMENT_S = 0.5  # shorter slots cannot hold even one spoken word
FILL = 0.9  # aim below the full slot: TTS pace varies and a little air sounds better


def word_count(text: str) -> int:
    """Spoken words; for scripts without spaces (Chinese, Japanese) ~2.5 characters a word."""
    words = text.split()
    if len(words) <= 1 and len(text) > 8:
        return math.ceil(len(text) / 2.5)
    return len(words)


# A sentence ends at . ! ? … (with closing quotes or brackets) before a space, or at a CJK stop.
_SENTENCE = re.compile(r"(?<=[.!?…][\"'”’»)\]])\s+|(?<=[.!?…])\s+|(?<=[。！？])")


def sentences(text: str) -> list[str]:
    """`text`'s sentences, in order, without the spaces between them. A part that goes on in
    lower case ("Is it?" he asked; e.g. this) belongs to the sentence before it."""
    out: list[str] = []
    for part in (p.strip() for p in _SENTENCE.split(text.strip())):
        if out and part[:1].islower():
            out[-1] = f"{out[-1]} {part}"
        elif part:
            out.append(part)
    return out


def word_budget(start_s: float, end_s: float, words_per_second: float) -> int:
    """How many words fit between start and end at the voice's pace (at least one)."""
    return max(1, math.floor((end_s - start_s) * words_per_second * FILL))


def suggest_slots(
    duration_s: float, *, target_s: float = 6.0, cuts_s: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """Slots of about `target_s` covering the video, starting at shot changes where known."""
    if duration_s <= 0:
        return []
    bounds = sorted({0.0, *[c for c in (cuts_s or []) if 0 < c < duration_s]})
    bounds.append(duration_s)
    slots: list[tuple[float, float]] = []
    for a, b in itertools.pairwise(bounds):
        n = max(1, round((b - a) / target_s))
        step = (b - a) / n
        slots.extend((a + i * step, a + (i + 1) * step) for i in range(n))
    return [(round(a, 2), round(b, 2)) for a, b in slots]


def repair(script: Script, duration_s: float) -> tuple[Script, list[str]]:
    """Sorted, inside [0, duration], no overlaps, no empty or too-short segments."""
    notes: list[str] = []
    kept: list[Segment] = []
    open_ends: set[float] = set()
    # Times are kept to the millisecond, never past the video: 14.9667 s ends at 14.966 s, so an
    # end rounded up (14.967 s) does not read as running past the video or overlapping its end.
    video_end = math.floor(duration_s * 1000 + 1e-6) / 1000
    for seg in script.segments:
        if not seg.text:
            notes.append(f"dropped an empty segment at {seg.start_s:.1f} s")
            continue
        if seg.start_s >= duration_s - MIN_SEGMENT_S / 2:
            notes.append(f"dropped a segment starting after the video ends ({seg.start_s:.1f} s)")
            continue
        end = min(round(seg.end_s, 3), video_end)
        if seg.end_s < seg.start_s:  # a typo in an edited script: the slot runs to the next line
            notes.append(f"the segment at {seg.start_s:.1f} s ended before it started "
                         f"(end_s {seg.end_s:g}): its slot runs to the next segment")  # fmt: skip
            open_ends.add(round(seg.start_s, 3))
            end = video_end
        kept.append(Segment(start_s=round(seg.start_s, 3), end_s=end, text=seg.text))
    if [s.start_s for s in kept] != sorted(s.start_s for s in kept):
        notes.append("sorted segments by start time")
    kept.sort(key=lambda s: (s.start_s, s.end_s))

    merged: list[Segment] = []
    for seg in kept:
        if merged and seg.start_s - merged[-1].start_s < MIN_SEGMENT_S:
            prev = merged.pop()
            notes.append(f"merged two segments starting at {prev.start_s:.1f} s")
            seg = Segment(
                start_s=prev.start_s,
                end_s=max(prev.end_s, seg.end_s),
                text=f"{prev.text} {seg.text}",
            )
        merged.append(seg)

    fixed: list[Segment] = []
    for i, seg in enumerate(merged):
        nxt = merged[i + 1].start_s if i + 1 < len(merged) else video_end
        end = seg.end_s
        if end > nxt:
            if seg.start_s not in open_ends:
                notes.append(f"trimmed the overlap after {seg.start_s:.1f} s")
            end = nxt
        if end - seg.start_s < MIN_SEGMENT_S:
            end = min(nxt, seg.start_s + MIN_SEGMENT_S)  # a sliver of a slot: widen it
        fixed.append(Segment(start_s=seg.start_s, end_s=round(end, 3), text=seg.text))
    return Script(title=script.title, language=script.language, segments=fixed), notes


def over_budget(script: Script, words_per_second: float) -> list[int]:
    """Indexes of segments with more words than their slot holds."""
    return [
        i
        for i, seg in enumerate(script.segments)
        if word_count(seg.text) > word_budget(seg.start_s, seg.end_s, words_per_second)
    ]


def load_script(path: Path) -> Script:
    """A script.json a person may have edited: one clear line naming what is wrong."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such script file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the script: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    try:
        script = Script.model_validate(data)
    except ValidationError as exc:
        # Every problem at once (a few), so one edit fixes them all; still one line.
        errors = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        ]
        more = f"; and {len(errors) - 4} more" if len(errors) > 4 else ""
        raise InputError(f"{path}: invalid script: {'; '.join(errors[:4])}{more}") from None
    return script


def dump_script(script: Script) -> str:
    return json.dumps(script.model_dump(), indent=2, ensure_ascii=False) + "\n"
