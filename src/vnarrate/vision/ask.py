"""Asking: the planned chunks of frames -> one validated answer for the whole video.

Takes the frames of each planned request (in time order), the prompt options and `ask` (the
session's chat call: a schema and messages in, a validated answer and its usage out); gives a
Description (each chunk described on its own, then one text-only merge in time order) or a raw
Script (each chunk narrating its own stretch of time). The chunks of a long video are asked at
the same time (at most `jobs` at once): none waits for another's answer, so a two-hour video
takes about one request's latency, not their sum, and all can go in one Batch API round. The
chunks may still be being decoded (vision/stream.py): each is asked as soon as its frames are
there. Also the one request that shortens narration lines over their word budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from ..errors import InputError
from ..media.images import ImageOptions, prepare_image
from ..models import Description, Frame, Script, Segment, ShortenedLines, SpokenLine, Usage
from ..narration.gaps import dialogue_near
from ..narration.script import over_budget, word_budget, word_count
from .prompts import (
    Message,
    PromptOptions,
    describe_images_messages,
    describe_messages,
    image_input_part,
    merge_messages,
    script_messages,
    shorten_messages,
)

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")
Report = Callable[[str], None]
Slot = tuple[float, float, int]  # start, end, word budget
HEARD_MARGIN_S = 2.0  # a chunk also hears what is said this close to its stretch of time


class Ask(Protocol):
    """The chat call: an answer of type `schema` to `messages`, and the usage it cost."""

    def __call__(self, schema: type[T], messages: Sequence[dict[str, Any]]) -> tuple[T, Usage]: ...


class Chunks(Protocol):
    """The frames of each planned request: all at hand (AtHand), or still being decoded
    (vision/stream.FrameStream)."""

    def __len__(self) -> int: ...

    def span(self, n: int) -> tuple[float, float]:
        """The stretch of time request `n` (from 0) covers."""
        ...

    def frames(self, n: int) -> Sequence[Frame]:
        """Request `n`'s frames (may wait for them to be decoded; none: it is not asked)."""
        ...

    def run(self, calls: Sequence[Callable[[], R]], jobs: int) -> list[R]:
        """Every call's result, in order, at most `jobs` at a time."""
        ...


@dataclass(frozen=True)
class AtHand:
    """Chunks whose frames are all decoded."""

    chunks: Sequence[Sequence[Frame]]
    duration_s: float

    def __len__(self) -> int:
        return len(self.chunks)

    def span(self, n: int) -> tuple[float, float]:
        """From its first frame (the start for the first chunk) to the next chunk's first frame
        (the end for the last)."""
        chunks = self.chunks
        lo = chunks[n][0].time_s if n > 0 and chunks[n] else 0.0
        hi = chunks[n + 1][0].time_s if n + 1 < len(chunks) and chunks[n + 1] else self.duration_s
        return lo, hi

    def frames(self, n: int) -> Sequence[Frame]:
        return self.chunks[n]

    def run(self, calls: Sequence[Callable[[], R]], jobs: int) -> list[R]:
        return in_parallel(calls, jobs)


def _chunks(chunks: Sequence[Sequence[Frame]] | Chunks, duration_s: float) -> Chunks:
    return AtHand(chunks, duration_s) if isinstance(chunks, Sequence) else chunks


def in_parallel(calls: Sequence[Callable[[], R]], jobs: int) -> list[R]:
    """Every call's result, in order; at most `jobs` at a time. The first failure is raised
    once the others have ended (a request in flight cannot be recalled anyway)."""
    if jobs <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(
        max_workers=min(jobs, len(calls)), thread_name_prefix="vnarrate-ask"
    ) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]


def describe_chunks(
    chunks: Sequence[Sequence[Frame]] | Chunks,
    *,
    duration_s: float,
    prompts: PromptOptions,
    ask: Ask,
    report: Report,
    jobs: int = 1,
    soundtrack: Sequence[SpokenLine] = (),
    user_context: str | None = None,
) -> tuple[Description, Usage]:
    """One description per chunk (each told which part of the video it is and what is said in
    its stretch of time), asked at the same time, then merged in time order when there are
    several. A chunk left without frames (none of them decoded) is not asked."""
    source = _chunks(chunks, duration_s)
    total = len(source)

    def one(n: int) -> tuple[Description, Usage] | None:
        chunk = source.frames(n - 1)
        if not chunk:
            return None
        report(f"request {n}/{total}, {len(chunk)} frames")
        lo, hi = source.span(n - 1)
        messages = describe_messages(
            chunk,
            duration_s=duration_s,
            preset=prompts.preset,
            prompt=prompts.prompt,
            detail=prompts.detail,
            language=prompts.language,
            part=(n, total),
            soundtrack=heard_between(soundtrack, lo - HEARD_MARGIN_S, hi + HEARD_MARGIN_S),
            user_context=user_context,
        )
        return ask(Description, messages)

    calls = [partial(one, n) for n in range(1, total + 1)]
    answers = [a for a in source.run(calls, jobs) if a is not None]
    if not answers:
        raise InputError("no frames to describe")
    usage = sum((used for _, used in answers), Usage())
    parts = [(a.title.strip(), a.description.strip()) for a, _ in answers]
    title, text = parts[0]
    if len(parts) > 1:
        report(f"merging {len(parts)} partial descriptions")
        messages = merge_messages(
            parts,
            duration_s=duration_s,
            preset=prompts.preset,
            language=prompts.language,
            heard=any(line.text for line in soundtrack),
            user_context=user_context,
        )
        merged, used = ask(Description, messages)
        usage = usage + used
        title, text = merged.title.strip(), merged.description.strip()
    return Description(title=title, description=text), usage


def heard_between(lines: Sequence[SpokenLine], start_s: float, end_s: float) -> list[SpokenLine]:
    """The lines said (at least partly) between `start_s` and `end_s`, in time order."""
    return [ln for ln in lines if ln.end_s > start_s and ln.start_s < end_s and ln.text]


def script_chunks(
    chunks: Sequence[Sequence[Frame]] | Chunks,
    *,
    duration_s: float,
    slots: Sequence[Slot],
    words_per_second: float,
    prompts: PromptOptions,
    ask: Ask,
    report: Report,
    jobs: int = 1,
    dialogue: Sequence[SpokenLine] | None = None,
) -> tuple[Script, Usage]:
    """The narration of every chunk's own stretch of time (its slots only), asked at the same
    time and concatenated in time order (not yet repaired).

    `dialogue` (not None: people speak in the video, and `slots` are the gaps between them)
    goes into each chunk's prompt around its slots; a chunk without a slot then asks nothing.
    Without it, a chunk without a slot gets one over its whole stretch. A chunk left without
    frames (none of them decoded) asks nothing either."""
    source = _chunks(chunks, duration_s)
    total = len(source)
    bounds = [source.span(n) for n in range(total)]
    own = [[s for s in slots if lo <= s[0] < hi] for lo, hi in bounds]
    if dialogue is None:
        own = [mine or [(lo, hi, word_budget(lo, hi, words_per_second))]
               for mine, (lo, hi) in zip(own, bounds, strict=True)]  # fmt: skip
    asked = [n for n in range(total) if own[n]]

    def one(n: int) -> tuple[Script, Usage] | None:
        chunk = source.frames(n)
        if not chunk:
            return None
        lo, hi = bounds[n]
        report(f"writing a {prompts.style} script ({n + 1}/{total})")
        messages = script_messages(
            chunk,
            duration_s=duration_s,
            slots=own[n],
            style=prompts.style,
            instructions=prompts.instructions,
            language=prompts.language,
            detail=prompts.detail,
            dialogue=None if dialogue is None else dialogue_near(dialogue, lo, hi),
        )
        return ask(Script, messages)

    got = source.run([partial(one, n) for n in asked], jobs)
    answers = [(n, a) for n, a in zip(asked, got, strict=True) if a is not None]
    segments: list[Segment] = []
    for n, (raw, _) in answers:
        lo, hi = bounds[n]
        # Lines past the video's end stay in, for the repair to drop with a note.
        last = n + 1 == total
        segments.extend(
            s for s in raw.segments if lo - 0.5 <= s.start_s and (last or s.start_s < hi)
        )
    title = next((raw.title for _, (raw, _) in answers if raw.title), "")
    language = next(
        (raw.language for _, (raw, _) in answers if raw.language), prompts.language or "en"
    )
    usage = sum((used for _, (_, used) in answers), Usage())
    return Script(title=title, language=language, segments=segments), usage


def shorten(
    script: Script, indexes: list[int], words_per_second: float, ask: Ask
) -> tuple[Script, Usage]:
    """One request that shortens the given segments; lines it does not return stay as they were."""
    segs = script.segments
    items = [
        (i, segs[i].text, word_budget(segs[i].start_s, segs[i].end_s, words_per_second))
        for i in indexes
    ]
    answer, usage = ask(ShortenedLines, shorten_messages(items, language=script.language))
    new_text = {ln.id: ln.text for ln in answer.lines if ln.id in indexes and ln.text.strip()}
    segments = [
        Segment(start_s=seg.start_s, end_s=seg.end_s, text=new_text.get(i, seg.text))
        for i, seg in enumerate(segs)
    ]
    return script.model_copy(update={"segments": segments}), usage


def shorten_long(
    script: Script, long: list[int], words_per_second: float, ask: Ask, notes: list[str]
) -> tuple[Script, int, Usage]:
    """The lines over their word budget (`long`) rewritten shorter in ONE request, before any
    speech is paid for: the script, how many lines came back shorter, and what it cost. What
    happened is added to `notes`."""
    if not long:
        return script, 0, Usage()
    shorter, usage = shorten(script, long, words_per_second, ask)
    pairs = zip(script.segments, shorter.segments, strict=True)
    changed = sum(word_count(b.text) < word_count(a.text) for a, b in pairs)
    notes.append(
        f"shortened {changed} segment(s) to fit their slots"
        if changed
        else f"asked to shorten {len(long)} segment(s); none came back shorter"
    )
    still = over_budget(shorter, words_per_second)
    if still:
        notes.append(
            f"{len(still)} segment(s) still over budget: their speech will be sped up, cut or moved"
        )
    return shorter, changed, usage


def images_messages(
    sources: Sequence[str], images: ImageOptions, prompts: PromptOptions
) -> list[Message]:
    """One request's messages for several still images (files or URLs), so a question can
    compare them: each prepared (media/images: read, shrunk, or passed on as a URL)."""
    prepared = [
        prepare_image(
            src,
            url_images_ok=images.url_images_ok,
            detail=images.detail,
            jpeg_quality=images.jpeg_quality,
            image_urls=images.image_urls,
        )
        for src in sources
    ]
    return describe_images_messages(
        [image_input_part(img, detail=prompts.detail) for img in prepared],
        names=[
            src if img.is_remote else Path(src).name
            for src, img in zip(sources, prepared, strict=True)
        ],
        preset=prompts.preset,
        prompt=prompts.prompt,
        language=prompts.language,
    )
