"""Rendering (pure): products -> what people and programs read.

Takes a Plan, a DescribeResult, a ScriptResult or a VoiceoverResult; gives the text a person reads
(a plan, a description in markdown or text) and ONE record per result type, which both the run
manifest and the `--json` line are built from (the manifest adds the settings and the outputs'
checksums, the JSON line the outputs' paths).
"""

from __future__ import annotations

import json
from typing import Any

from ..media.timecode import format_ts
from ..models import DescribeResult, Plan, ScriptResult, VoiceoverResult
from ..server.prices import format_usd


def render_plan(plan: Plan) -> str:
    """A plan for people: frames, requests, tokens and dollars."""
    times = plan.frame_times_s
    lines = [
        f"{plan.input}: {plan.task} with {plan.model} ({plan.provider}), "
        f"video {format_ts(plan.duration_s)}"
    ]
    if times:
        lines.append(
            f"  frames: {len(times)} at {plan.frame_width}x{plan.frame_height}, detail "
            f"{plan.detail}: {plan.image_tokens_per_frame} tokens each ({plan.image_rule})"
        )
        shown = ", ".join(format_ts(t) for t in times[:12])
        lines.append(f"  at: {shown}{' …' if len(times) > 12 else ''}")
    if plan.shot_starts_s:
        lines.append(f"  shots start at: {', '.join(format_ts(t) for t in plan.shot_starts_s)}")
    for req in plan.requests:
        span = f"{format_ts(req.start_s)}–{format_ts(req.end_s)}" if req.kind == "frames" else "—"
        lines.append(
            f"  request {req.index} ({req.kind}, {span}): {req.images} images, "
            f"~{req.input_tokens} input + ~{req.expected_output_tokens} output tokens"
        )
    if plan.requests:
        lines.append(
            f"  total: ~{plan.input_tokens} input + ~{plan.expected_output_tokens} output tokens,"
            f" chat {format_usd(plan.chat_cost_usd)} (at most {format_usd(plan.max_chat_cost_usd)})"
        )
    if plan.speech_model:
        lines.append(
            f"  speech: ~{plan.speech_characters} characters with {plan.speech_model}, "
            f"{format_usd(plan.speech_cost_usd)}"
        )
    lines.append(
        f"  estimated cost: {format_usd(plan.cost_usd)} (at most {format_usd(plan.max_cost_usd)};"
        f" prices as of {plan.prices_as_of or 'unknown'})"
    )
    lines.extend(f"  note: {n}" for n in plan.notes)
    return "\n".join(lines)


def plan_record(plan: Plan) -> dict[str, Any]:
    return {"plan": plan.model_dump(mode="json")}


def description_record(result: DescribeResult) -> dict[str, Any]:
    """What a description run produced (without input and status, which the run adds)."""
    return {
        "title": result.title,
        "description": result.description,
        "model": result.model,
        "frames_sent": result.frames_sent,
        "frame_times_s": result.frame_times_s,
        "requests": result.requests,
        "usage": result.usage.model_dump(),
        "cost_usd": result.cost_usd,
    }


def render_description(result: DescribeResult, fmt: str) -> str:
    """The product as the user asked for it: markdown, plain text, or one JSON line."""
    if fmt == "json":
        record = {"input": result.input, "status": "ok", **description_record(result)}
        return json.dumps(record, ensure_ascii=False)
    if fmt == "text":
        return f"{result.title}\n\n{result.description}\n"
    return f"# {result.title}\n\n{result.description}\n"


def describe_summary(result: DescribeResult) -> str:
    """One line for --verbose: what the description cost."""
    u = result.usage
    return (
        f"{result.input}: {result.frames_sent} images, {result.requests} request(s), "
        f"{u.prompt_tokens} input + {u.completion_tokens} output tokens, "
        f"cost {format_usd(result.cost_usd)}"
    )


def script_record(result: ScriptResult) -> dict[str, Any]:
    return {
        "segments": len(result.script.segments),
        "model": result.model,
        "usage": result.usage.model_dump(),
        "cost_usd": result.cost_usd,
        "notes": result.notes,
    }


def voiceover_record(result: VoiceoverResult) -> dict[str, Any]:
    r = result
    return {
        "usage": r.usage.model_dump(),
        "speech_characters": r.speech_characters,
        "speech_backend": r.speech_backend,
        "duration_s": round(r.duration_s, 3),
        "audio_s": round(r.audio_s, 3),
        "cost_usd": r.cost_usd,
        # --- narration in the gaps: what happened to the lines ---
        "over_speech": r.over_speech,
        "words_per_second": r.words_per_second,
        "pace_source": r.pace_source,
        "speech_regions": r.speech_regions,
        "speech_s": r.speech_s,
        "lines": r.lines,
        "placed": r.placed,
        "placed_in_gaps": r.placed_in_gaps,
        "shortened": r.shortened,
        "sped_up": r.sped_up,
        "cut": r.cut,
        "dropped": r.dropped,
        "seconds_over_speech": r.seconds_over_speech,
        "placements": [p.model_dump() for p in r.placements],
        "notes": r.notes,
    }
