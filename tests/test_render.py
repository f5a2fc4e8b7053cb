"""Rendering: plans and descriptions for people, and the records shared by manifests and --json."""

from __future__ import annotations

from vnarrate.models import (
    DescribeResult,
    Placement,
    Plan,
    PlannedRequest,
    Script,
    Segment,
    Usage,
    VoiceoverResult,
)
from vnarrate.runs.render import (
    description_record,
    render_description,
    render_plan,
    voiceover_record,
)


def test_render_plan_mentions_what_a_person_needs() -> None:
    plan = Plan(
        input="clip.mp4", model="gpt-5.4-mini", duration_s=30, frame_times_s=[0.0, 15.0],
        frame_width=768, frame_height=432, image_tokens_per_frame=404, image_rule="rule",
        requests=[PlannedRequest(index=1, kind="frames", images=2, start_s=0, end_s=30,
                                 input_tokens=1000, expected_output_tokens=600)],
        input_tokens=1000, expected_output_tokens=600, chat_cost_usd=0.01,
        max_chat_cost_usd=0.05, cost_usd=0.01, max_cost_usd=0.05, prices_as_of="2026-11-24",
        notes=["a note"],
    )  # fmt: skip
    text = render_plan(plan)
    for part in ("2 at 768x432", "0:15.0", "request 1", "~1000 input", "$0.010", "a note"):
        assert part in text, part


def test_one_description_record_for_json_and_manifest() -> None:
    result = DescribeResult(
        input="clip.mp4", title="T", description="D", model="m", frames_sent=2,
        usage=Usage(prompt_tokens=10, requests=1), requests=1, cost_usd=0.5,
    )  # fmt: skip
    record = description_record(result)
    assert record["title"] == "T" and record["usage"]["prompt_tokens"] == 10
    assert "input" not in record and "status" not in record  # the run adds both
    line = render_description(result, "json")
    assert line.startswith('{"input": "clip.mp4", "status": "ok", "title": "T"')
    assert render_description(result, "markdown") == "# T\n\nD\n"


def test_voiceover_record_counts_lines_and_numbers_segments_from_one() -> None:
    lines = [Segment(start_s=2.0 * i, end_s=2.0 * i + 1.5, text=f"Line {i}.") for i in range(5)]
    result = VoiceoverResult(
        input="clip.mp4", script=Script(title="T", language="en", segments=lines),
        placements=[Placement(segment=0, text="Line 0.", start_s=0.0, end_s=1.0,
                              slot_start_s=0.0, slot_end_s=1.5)],
        lines=5, placed=1, dropped=[1, 4],
    )  # fmt: skip
    record = voiceover_record(result)
    # `dropped` counts, like placed and cut; which ones, as the warnings number them: from 1
    assert (record["placed"], record["dropped"], record["dropped_segments"]) == (1, 2, [2, 5])
    assert record["placements"][0]["segment"] == 1
