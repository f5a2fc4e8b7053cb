"""Models: the small behaviours the stages rely on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vnarrate.models import Clip, Segment, Usage


def test_usage_adds_up() -> None:
    a = Usage(prompt_tokens=10, completion_tokens=2, total_tokens=12, requests=1)
    b = Usage(prompt_tokens=5, completion_tokens=1, total_tokens=6, reasoning_tokens=1, requests=1)
    assert (a + b).model_dump() == {
        "prompt_tokens": 15, "completion_tokens": 3, "total_tokens": 18,
        "cached_tokens": 0, "reasoning_tokens": 1, "requests": 2,
    }  # fmt: skip


def test_segment_text_is_tidied_and_times_checked() -> None:
    assert Segment(start_s=0, end_s=1, text="  two\n words ").text == "two words"
    with pytest.raises(ValidationError):
        Segment(start_s=-1, end_s=1, text="x")


def test_clip_duration_from_pcm() -> None:
    assert Clip(segment=0, text="x", pcm=b"\0\0" * 24000).duration_s == 1.0
