"""Prompts: message shape, timestamps before images, detail, presets."""

from __future__ import annotations

import base64

import pytest

from vnarrate.media.timecode import format_ts
from vnarrate.models import Frame, SpokenLine
from vnarrate.vision.prompts import (
    DIALOGUE_RULE,
    describe_messages,
    merge_messages,
    script_messages,
)


def _frames(n: int) -> list[Frame]:
    return [
        Frame(index=i * 10, time_s=i * 1.5, width=64, height=36, jpeg=b"\xff\xd8jpeg%d" % i)
        for i in range(n)
    ]


def test_one_user_message_with_timestamp_before_each_image() -> None:
    frames = _frames(3)
    msgs = describe_messages(frames, duration_s=4.5, detail="low")
    assert [m["role"] for m in msgs] == ["system", "user"]
    parts = msgs[1]["content"]
    assert parts[0]["type"] == "text" and "0:04.5" in parts[0]["text"]
    pairs = parts[1:]
    assert len(pairs) == 6
    for i, frame in enumerate(frames):
        label, image = pairs[2 * i], pairs[2 * i + 1]
        assert label == {"type": "text", "text": f"[{format_ts(frame.time_s)}]"}
        assert image["type"] == "image_url"
        url = image["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        assert base64.b64decode(url.split(",", 1)[1]) == frame.jpeg
        assert image["image_url"]["detail"] == "low"


def test_detail_can_be_left_out_for_servers_that_reject_it() -> None:
    msgs = describe_messages(_frames(1), duration_s=1, detail=None)
    assert "detail" not in msgs[1]["content"][2]["image_url"]


def test_custom_prompt_replaces_task_and_presets_differ() -> None:
    a = describe_messages(_frames(1), duration_s=1, prompt="How many cars?")
    assert "How many cars?" in a[1]["content"][0]["text"]
    b = describe_messages(_frames(1), duration_s=1, preset="accessibility")
    assert a[0]["content"] != b[0]["content"]
    with pytest.raises(ValueError, match="unknown preset"):
        describe_messages(_frames(1), duration_s=1, preset="nope")


def test_chunk_context_and_merge() -> None:
    msgs = describe_messages(_frames(2), duration_s=9, context="A dog ran.", part=(2, 3))
    text = msgs[1]["content"][0]["text"]
    assert "part 2 of 3" in text and "A dog ran." in text
    merged = merge_messages(
        [("A", "one"), ("B", "two")], duration_s=9, preset="general", language="de"
    )
    assert "Part 1 — A" in merged[1]["content"] and "de" in merged[0]["content"]


@pytest.mark.parametrize(("t", "s"), [(0, "0:00.0"), (61.24, "1:01.2"), (3725, "1:02:05.0")])
def test_format_ts(t: float, s: str) -> None:
    assert format_ts(t) == s


def test_script_prompt_shows_the_dialogue_between_the_slots() -> None:
    lines = [
        SpokenLine(
            start_s=1.8, end_s=5.9, text="Morning light spreads over the valley.", speaker="joe"
        ),
        SpokenLine(start_s=15.0, end_s=18.8),  # not transcribed: only when
        SpokenLine(start_s=22.5, end_s=26.5, text="word " * 80),  # long: shown by its start
    ]
    slots = [(9.5, 14.9, 16), (18.9, 22.3, 10)]
    msgs = script_messages(_frames(2), duration_s=30.0, slots=slots, dialogue=lines)
    text = msgs[1]["content"][0]["text"]
    assert DIALOGUE_RULE in text and "Do not repeat or paraphrase" in text
    rows = [row for row in text.splitlines() if row.startswith("- ")]
    assert rows == [
        '- 0:01.8–0:05.9: joe says: "Morning light spreads over the valley."',
        "- 0:09.5–0:14.9: SLOT, at most 16 words",
        "- 0:15.0–0:18.8: someone speaks",
        "- 0:18.9–0:22.3: SLOT, at most 10 words",
        '- 0:22.5–0:26.5: someone says: "' + ("word " * 40).strip() + ' …"',
    ]
    # No dialogue (nobody speaks): the slots as before.
    plain = script_messages(_frames(2), duration_s=30.0, slots=slots)[1]["content"][0]["text"]
    assert DIALOGUE_RULE not in plain and "- 0:09.5–0:14.9: at most 16 words" in plain
