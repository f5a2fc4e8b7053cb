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
from ..models import DescribeResult, Plan, ScriptResult, SpeechMap, VoiceoverResult
from ..server.prices import PriceBasis, describe_cost, format_usd

SHOWN_SPANS = 12  # speech regions and gaps listed in text; --json and frames.json have them all


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
    if plan.soundtrack is not None:
        lines.extend(f"  {line}" for line in speech_summary(plan.soundtrack))
    for req in plan.requests:
        span = f"{format_ts(req.start_s)}–{format_ts(req.end_s)}" if req.kind == "frames" else "—"
        lines.append(
            f"  request {req.index} ({req.kind}, {span}): {req.images} images, "
            f"~{req.input_tokens} input + ~{req.expected_output_tokens} output tokens"
        )
    chat = _basis(plan.chat_pricing)
    if plan.requests:
        cost = describe_cost(plan.chat_cost_usd, chat)
        most = _at_most(plan.chat_cost_usd, plan.max_chat_cost_usd)
        lines.append(
            f"  total: ~{plan.input_tokens} input + ~{plan.expected_output_tokens} output tokens,"
            f" chat {cost}{most}"
        )
    if plan.speech_model:
        lines.append(
            f"  narration speech: ~{plan.speech_characters} characters with "
            f"{plan.speech_model}, {describe_cost(plan.speech_cost_usd, _basis(plan.speech_pricing))}"
        )
    stt = _basis(plan.stt_pricing)
    if plan.transcription_model:
        lines.append(
            f"  transcription: {plan.transcription_seconds:.1f} s of speech "
            f"({plan.transcription_seconds / 60:.2f} min) in {plan.transcription_requests} "
            f"request(s) with {plan.transcription_model}, "
            f"{describe_cost(plan.transcription_cost_usd, stt)}"
        )
    if plan.verify_model:
        lines.append(
            f"  verify: ~{plan.verify_seconds:.1f} s of narration heard back in "
            f"~{plan.verify_requests} request(s) with {plan.verify_model}, "
            f"{describe_cost(plan.verify_cost_usd, stt)}"
        )
    lines.append(f"  estimated cost: {_total(plan)}")
    lines.extend(f"  note: {n}" for n in plan.notes)
    return "\n".join(lines)


def _total(plan: Plan) -> str:
    """The plan's total: "free" when every server that is paid is local, "unknown (...)" when
    a server has no price, with the worst case and the prices' date."""
    used = [plan.chat_pricing] if plan.requests else []
    used += [plan.speech_pricing] if plan.speech_model else []
    used += [plan.stt_pricing] if plan.transcription_model or plan.verify_model else []
    same = _basis(used[0]) if used and len(set(used)) == 1 else "table"
    total = describe_cost(plan.cost_usd, same)
    if plan.cost_usd is None and "unknown" in used:
        total = "unknown (no price for this server)"
    worse = plan.cost_usd and plan.max_cost_usd != plan.cost_usd  # with chat output budgets
    most = f"at most {format_usd(plan.max_cost_usd)}; " if worse else ""
    return f"{total} ({most}prices as of {plan.prices_as_of or 'unknown'})"


def _basis(value: str) -> PriceBasis:
    return "free" if value == "free" else "unknown" if value == "unknown" else "table"


def _at_most(cost: float | None, most: float | None) -> str:
    """ " (at most $x)" where it says something: not for free or unknown costs."""
    return f" (at most {format_usd(most)})" if cost else ""


def speech_summary(speech: SpeechMap) -> list[str]:
    """Where people speak, for people: the stretches of speech and the gaps between them."""
    if not speech.regions:
        return [f"people speak: nowhere in {format_ts(speech.duration_s)} ({speech.detector})"]
    return [
        f"people speak: {len(speech.regions)} stretch(es), {speech.speech_s:.1f} s of "
        f"{speech.duration_s:.1f} s: {_spans(speech.regions)}",
        f"gaps: {_spans(speech.gaps) or 'none'}",
    ]


def _spans(spans: list[tuple[float, float]]) -> str:
    shown = ", ".join(f"{format_ts(a)}–{format_ts(b)}" for a, b in spans[:SHOWN_SPANS])
    more = len(spans) - SHOWN_SPANS
    return shown + (f" … ({more} more)" if more > 0 else "")


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
        **({"soundtrack": result.soundtrack.model_dump(mode="json")} if result.soundtrack else {}),
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
    heard = result.soundtrack
    said = f", {heard.transcription_seconds:.1f} s of speech transcribed" if heard else ""
    return (
        f"{result.input}: {result.frames_sent} images, {result.requests} request(s), "
        f"{u.prompt_tokens} input + {u.completion_tokens} output tokens{said}, "
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
        "voice": r.voice,
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
        "dropped": len(r.dropped),
        "seconds_over_speech": r.seconds_over_speech,
        # Segments are numbered from 1 here, as in every message ("segment 3 of 5: speech
        # failed", "segment 3 starts 0.40 s late"); Placement.segment is the Python index.
        "dropped_segments": [i + 1 for i in r.dropped],
        "placements": [{**p.model_dump(), "segment": p.segment + 1} for p in r.placements],
        "notes": r.notes,
        **({"verify": r.verify.model_dump()} if r.verify is not None else {}),  # --verify
    }
