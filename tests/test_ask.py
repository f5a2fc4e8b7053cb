"""Asking the model per chunk (vision/ask.py): each chunk's request, what it hears, the merge."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from _media import stub_frames as _frames

from vnarrate.models import Description, Script, Segment, ShortenedLines, SpokenLine, Usage
from vnarrate.vision.ask import describe_chunks, in_parallel, shorten_long
from vnarrate.vision.prompts import PromptOptions


def test_each_chunk_hears_its_own_stretch_of_time() -> None:
    lines = [
        SpokenLine(start_s=0.5, end_s=2.0, text="early"),
        SpokenLine(start_s=10.0, end_s=11.0, text="late"),
    ]
    frames = _frames(10)  # 0 to 13.5 s
    seen: list[str] = []

    def ask(schema: type[Any], messages: Any) -> tuple[Any, Usage]:
        content = messages[1]["content"]
        seen.append(content if isinstance(content, str) else content[0]["text"])
        return Description(title="t", description="d"), Usage(requests=1)

    describe_chunks(
        [frames[:3], frames[3:]],  # 0-4.5 s, then 4.5 s to the end
        duration_s=15.0,
        prompts=PromptOptions(
            preset="general",
            prompt=None,
            language=None,
            detail=None,
            style="documentary",
            instructions=None,
        ),
        ask=ask,
        report=lambda _: None,
        soundtrack=lines,
    )
    assert "early" in seen[0] and "late" not in seen[0]
    assert "late" in seen[1] and "early" not in seen[1]
    assert "who says what" in seen[2]  # the merge


def test_in_parallel_keeps_order_bounds_concurrency_and_raises_after_the_others() -> None:
    import threading
    import time

    running, peak, ended = 0, 0, []
    lock = threading.Lock()

    def call(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
            ended.append(n)
        if n == 1:
            raise ValueError("chunk 1 failed")
        return n * 10

    assert in_parallel([partial(call, n) for n in (0, 2, 3, 4, 5)], jobs=2) == [0, 20, 30, 40, 50]
    assert peak == 2
    ended.clear()
    with pytest.raises(ValueError, match="chunk 1"):
        in_parallel([partial(call, n) for n in range(4)], jobs=4)
    assert sorted(ended) == [0, 1, 2, 3]  # the others ran to their end first


def test_shorten_long_asks_once_and_says_what_came_back() -> None:
    script = Script(title="t", language="en", segments=[
        Segment(start_s=0.0, end_s=1.0, text="one two three four five six seven eight"),
        Segment(start_s=2.0, end_s=6.0, text="fine as it is"),
    ])  # fmt: skip
    asked: list[Any] = []

    def ask(schema: type[Any], messages: Any) -> tuple[Any, Usage]:
        asked.append(messages)
        return ShortenedLines(lines=[{"id": 0, "text": "one two"}]), Usage(requests=1)

    notes: list[str] = []
    shorter, changed, usage = shorten_long(script, [0], 2.5, ask, notes)
    assert len(asked) == 1 and "(2 words max)" in asked[0][1]["content"]
    assert shorter.segments[0].text == "one two" and shorter.segments[1].text == "fine as it is"
    assert (changed, usage.requests) == (1, 1) and notes == [
        "shortened 1 segment(s) to fit their slots"
    ]
    assert shorten_long(script, [], 2.5, ask, notes)[1:] == (0, Usage()) and len(asked) == 1
