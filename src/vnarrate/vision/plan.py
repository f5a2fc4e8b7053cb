"""Plan stage (pure): sampled frames -> requests, tokens and dollars, before any API call.

Takes the frames (sizes and times; JPEG bytes when known), the task and PlanOptions (model,
detail, per-request caps, prices, server); gives a Plan: the frames split into contiguous time
chunks so that no request exceeds the image, input-token or byte cap (chunks.py), each request's
estimated input and output tokens and cost, the speech the narration would need, and notes on
every assumption made. `check_budget` refuses a plan that costs more than the user allows.

make_plan runs named steps: estimate (tokens and bytes per frame), shape (what a request costs
besides its frames), split, frame requests, merge request, speech, assemble.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict

from ..errors import ConfigError
from ..media.timecode import format_ts
from ..models import (
    Description,
    Frame,
    FrameSet,
    Plan,
    PlanLimits,
    PlannedRequest,
    Script,
    Task,
    Usage,
)
from ..narration.script import FILL
from ..server.prices import (
    BATCH_FACTOR,
    PriceBasis,
    PriceTable,
    batch_price,
    chat_cost,
    format_usd,
    speech_cost,
    total_cost,
)
from .chunks import (
    CHARS_PER_TOKEN_BYTES,
    CHARS_PER_WORD,
    CONTEXT_TOKENS,
    DESCRIBE_OUTPUT_TOKENS,
    JPEG_BYTES_PER_PIXEL,
    MERGE_PROMPT_TOKENS,
    REQUEST_JSON_OVERHEAD,
    SLOT_LINE_TOKENS,
    ChatTask,
    FrameCost,
    Shape,
    chunk_cost,
    frame_bytes,
    span,
    split_frames,
)
from .prompts import describe_messages, script_messages
from .tokens import (
    ImageEstimate,
    image_tokens,
    message_overhead,
    resolve_model,
    size_key,
    text_tokens,
)

# Reasoning tokens are billed as output but not visible in the answer. Assumed per request when
# the model reasons by default and no effort is given (see reasoning_allowance).
REASONING_BY_EFFORT = {"none": 0, "minimal": 256, "low": 512, "medium": 1024, "high": 4096}
REASONING_BY_EFFORT["xhigh"] = 8192


class PlanOptions(BaseModel):
    """What the plan stage needs (session/options.py builds it once per run from Settings)."""

    model_config = ConfigDict(frozen=True)

    model: str
    detail: str
    limits: PlanLimits
    prices: PriceTable  # for the chat server: the whole table on OpenAI, the user's elsewhere
    provider: str
    chat_pricing: PriceBasis  # table, free (a local server) or unknown (another server)
    reasoning_effort: str | None
    speech_model: str | None  # what speaks a voiceover
    speech_prices: PriceTable  # for the speech server (it may be another one)
    speech_pricing: PriceBasis
    words_per_second: float
    pace_source: str  # where words_per_second came from (measured, the setting, the default)
    segment_seconds: float
    # Image tokens per image learned from the API's usage ("WxH@detail" -> (requests, mean)),
    # used for models whose rule is not published.
    learned_image_tokens: dict[str, tuple[int, float]]
    batch: bool  # --batch: chat at the Batch API's price

    @property
    def free(self) -> bool:
        """A local server: chat costs nothing per token."""
        return self.chat_pricing == "free"


def speech_price(
    options: PlanOptions, model: str, characters: int, seconds: float | None = None
) -> float | None:
    """Dollars for speech on the run's speech server: 0 when free or nothing was spoken, None
    when the server's price for `model` is unknown."""
    if options.speech_pricing == "free" or characters <= 0:
        return 0.0
    return speech_cost(model, characters, seconds, options.speech_prices)


def reasoning_allowance(model: str, effort: str | None = None) -> int:
    """Reasoning tokens assumed per request: by `effort` when given, else 1,024 for reasoning
    families (gpt-5*, gpt-6*, o*) and 0 for the others (gpt-4o, gpt-4.1, local models)."""
    if effort is not None:
        return REASONING_BY_EFFORT.get(effort, REASONING_BY_EFFORT["medium"])
    name = model.strip().lower().rsplit("/", 1)[-1]
    if name.startswith(("gpt-5", "gpt-6", "o1", "o3", "o4")):
        return REASONING_BY_EFFORT["medium"]
    return 0


def _prompt_tokens(task: ChatTask) -> int:
    """Input tokens of a request without frames: the system prompt, task text and schema.

    Measured on a representative prompt of the prompts stage (the presets differ by a few dozen
    tokens); pass `prompt_tokens` to make_plan for an exact count of your own prompt.
    """
    if task == "describe":
        msgs = describe_messages([], duration_s=600.0)
        schema = Description.model_json_schema()
    else:
        msgs = script_messages([], duration_s=600.0, slots=[])
        schema = Script.model_json_schema()
    text = sum(text_tokens(str(m["role"])) for m in msgs)
    for m in msgs:
        content = m["content"]
        if isinstance(content, str):
            text += text_tokens(content)
        else:
            text += sum(text_tokens(str(p.get("text", ""))) for p in content)
    text += text_tokens(json.dumps(schema, separators=(",", ":")))
    return text + message_overhead(len(msgs))


@dataclass
class _Draft:
    """What the steps of make_plan build up."""

    frames: list[Frame]
    duration: float
    task: Task
    chat_task: ChatTask
    options: PlanOptions
    notes: list[str]
    estimate: ImageEstimate | None = None
    learned: str = ""  # "learned from N requests" when the image tokens were learned
    requests: list[PlannedRequest] | None = None
    chunks: int = 0
    narrated_s: float | None = None  # a voiceover narrates only this long (between speech)

    def priced(self, inp: int, out: int) -> float | None:
        if self.options.chat_pricing == "free":
            return 0.0
        usage = Usage(prompt_tokens=inp, completion_tokens=out, requests=1)
        return batch_price(chat_cost(self.options.model, usage, self.options.prices), self.batch)

    @property
    def batch(self) -> bool:
        return self.options.batch and not self.options.free


# A frame whose short side is below this after resizing shows the model a sliver (a 10000x100
# panorama at --resize 768 is 768x8): said, not silently sent.
MIN_VISIBLE_SIDE = 32


def thin_frames_note(frames: Sequence[Frame]) -> str | None:
    """A warning when the frames are too thin for the model to see much, else None."""
    thin = next((f for f in frames if min(f.width, f.height) < MIN_VISIBLE_SIDE), None)
    if thin is None:
        return None
    return (
        f"frames are {thin.width}x{thin.height} after resizing, too thin for the model to see "
        "much: pass --resize 0 to send them whole, or crop the video"
    )


def _estimate(draft: _Draft) -> list[FrameCost]:
    """Image tokens, timestamp tokens and bytes of every frame, with the notes they raise."""
    o, frames, notes = draft.options, draft.frames, draft.notes
    rule = resolve_model(o.model)
    if frames:
        draft.estimate = image_tokens(o.model, frames[0].width, frames[0].height, o.detail)
        notes.extend(draft.estimate.notes)
    elif not rule.known:
        notes.append(f"unknown model {o.model!r}: image tokens would assume the {rule.family} rule")
    if o.free:
        notes.append(
            f"{o.provider} server: image tokens follow OpenAI's rules; local models tokenize "
            "images their own way, so counts are indicative only; chat costs nothing per token"
        )
    thin = thin_frames_note(frames)
    if thin:
        notes.append(thin)
    costs = []
    for f in frames:
        tokens = _learned(draft, f) or image_tokens(o.model, f.width, f.height, o.detail).tokens
        # The label prompts.frame_parts puts before each frame, so its tokens are counted.
        costs.append(FrameCost(tokens, text_tokens(f"[{format_ts(f.time_s)}]"), frame_bytes(f)))
    if any(not f.jpeg for f in frames):
        notes.append(
            f"request bytes assume {JPEG_BYTES_PER_PIXEL} bytes per pixel of JPEG: the frames "
            "are planned before they are decoded"
        )
    return costs


def _learned(draft: _Draft, frame: Frame) -> int | None:
    """Image tokens learned from the API's usage for a model whose rule is not published."""
    o = draft.options
    if not o.learned_image_tokens or resolve_model(o.model).known:
        return None
    found = o.learned_image_tokens.get(size_key(frame.width, frame.height, o.detail))
    if found is None:
        return None
    count, mean = found
    tokens = max(1, round(mean))
    if not draft.learned:
        draft.learned = f"learned from {count} request{'s' if count != 1 else ''}"
        assumed = f"unknown model {o.model!r}: image tokens assume the"
        draft.notes[:] = [n for n in draft.notes if not n.startswith(assumed)]
        draft.notes.append(
            f"image tokens of {o.model!r} at {frame.width}x{frame.height}, detail {o.detail}: "
            f"{tokens} each, {draft.learned} (the API's usage; its rule is not published)"
        )
        if draft.estimate is not None:
            draft.estimate = replace(draft.estimate, tokens=tokens)
    return tokens


def _shape(draft: _Draft, prompt_tokens: int | None, heard: tuple[int, float]) -> Shape:
    o, task = draft.options, draft.chat_task
    reasoning = reasoning_allowance(o.model, o.reasoning_effort)
    if reasoning:
        draft.notes.append(
            f"expected output includes {reasoning:,} reasoning tokens per request (assumed"
            + (f" for reasoning effort {o.reasoning_effort})" if o.reasoning_effort else ")")
        )
    slots_per_s = SLOT_LINE_TOKENS / max(0.5, o.segment_seconds) if task == "script" else 0.0
    return Shape(
        prompt_tokens=heard[0]
        + (prompt_tokens if prompt_tokens is not None else _prompt_tokens(task)),
        context_tokens=CONTEXT_TOKENS[task],
        slot_tokens_per_s=slots_per_s + heard[1],
        duration_s=draft.duration,
        task=task,
        words_per_second=o.words_per_second,
        segment_seconds=o.segment_seconds,
        reasoning_tokens=reasoning,
    )


def _frame_requests(
    draft: _Draft, costs: Sequence[FrameCost], shape: Shape, chunks: list[tuple[int, int]]
) -> list[PlannedRequest]:
    cap = draft.options.limits.max_output_tokens
    requests: list[PlannedRequest] = []
    for a, b in chunks:
        img, text, size = chunk_cost(draft.frames, costs, a, b, shape)
        start, end = span(draft.frames, a, b, draft.duration)
        wanted = shape.output_tokens(start, end)
        if wanted > cap:
            draft.notes.append(
                f"request {len(requests) + 1} may need ~{wanted:,} output tokens, more than "
                f"its budget of {cap:,} (max_completion_tokens): the answer could be cut short"
            )
        expected = min(cap, wanted)
        requests.append(
            PlannedRequest(
                index=len(requests) + 1,
                kind="frames",
                first_frame=a,
                last_frame=b - 1,
                images=b - a,
                start_s=round(start, 3),
                end_s=round(end, 3),
                image_tokens=img,
                text_tokens=text,
                input_tokens=img + text,
                expected_output_tokens=expected,
                max_output_tokens=cap,
                request_bytes=size,
                cost_usd=draft.priced(img + text, expected),
                max_cost_usd=draft.priced(img + text, cap),
            )
        )
    return requests


def _merge_request(draft: _Draft, index: int, chunks: int, reasoning: int) -> PlannedRequest:
    """The text-only request that joins the chunk descriptions of a long video."""
    cap = draft.options.limits.max_output_tokens
    merge_in = MERGE_PROMPT_TOKENS + chunks * DESCRIBE_OUTPUT_TOKENS + message_overhead(2)
    expected = min(cap, DESCRIBE_OUTPUT_TOKENS + reasoning)
    return PlannedRequest(
        index=index,
        kind="merge",
        start_s=0.0,
        end_s=round(draft.duration, 3),
        text_tokens=merge_in,
        input_tokens=merge_in,
        expected_output_tokens=expected,
        max_output_tokens=cap,
        request_bytes=REQUEST_JSON_OVERHEAD + CHARS_PER_TOKEN_BYTES * merge_in,
        cost_usd=draft.priced(merge_in, expected),
        max_cost_usd=draft.priced(merge_in, cap),
    )


@dataclass(frozen=True)
class SpeechEstimate:
    """The speech a voiceover would need: characters, seconds and dollars (None: unknown)."""

    characters: int
    seconds: float
    cost_usd: float | None


def estimate_speech(
    duration_s: float, options: PlanOptions, *, notes: list[str], narrated_s: float | None = None
) -> SpeechEstimate:
    """The narration of a video of `duration_s`: words at the voice's pace over FILL of it, or of
    the `narrated_s` seconds between speech where people speak in it."""
    words_per_second, speech_model = options.words_per_second, options.speech_model
    span = duration_s if narrated_s is None else narrated_s
    words = span * words_per_second * FILL
    characters = math.ceil(words * CHARS_PER_WORD)
    seconds = round(words / max(0.1, words_per_second), 1)
    cost: float | None = None
    if speech_model is None:
        notes.append("no speech model given: speech cost unknown")
    else:
        cost = speech_price(options, speech_model, characters, seconds)
        if cost is None:
            notes.append(_no_speech_price(options, speech_model))
    source = f" ({options.pace_source})" if options.pace_source else ""
    where = "the video" if narrated_s is None else f"the {narrated_s:.1f} s between speech"
    notes.append(
        f"speech length assumes {words_per_second:g} words/s{source} over {FILL:.0%} of "
        f"{where} and {CHARS_PER_WORD:g} characters a word"
    )
    return SpeechEstimate(characters, seconds, cost)


def _no_speech_price(options: PlanOptions, model: str) -> str:
    if options.speech_pricing == "unknown":
        return (
            f"speech server is not OpenAI: speech cost unknown (price {model!r} for it in a "
            "prices file: --prices FILE)"
        )
    return f"no price for speech model {model!r}: speech cost unknown"


def plan_speech(
    path: str, script: Script, duration_s: float, options: PlanOptions, *, notes: list[str]
) -> Plan:
    """The plan of speaking a given script: no vision request, only its speech."""
    characters = sum(len(seg.text) for seg in script.segments)
    words = sum(len(seg.text.split()) for seg in script.segments)
    model = options.speech_model or ""
    cost = speech_price(options, model, characters)
    said = f"speaks the given script ({len(script.segments)} segments): no vision request"
    if cost is None:
        notes = [*notes, _no_speech_price(options, model)]
    return Plan(
        input=path,
        task="voiceover",
        model=options.model,
        provider=options.provider,
        duration_s=duration_s,
        chat_cost_usd=0.0,
        max_chat_cost_usd=0.0,
        speech_model=options.speech_model,
        speech_characters=characters,
        speech_seconds=round(words / max(0.1, options.words_per_second), 1),
        speech_cost_usd=cost,
        cost_usd=cost,
        max_cost_usd=cost,
        prices_as_of=options.prices.as_of,
        chat_pricing=options.chat_pricing,
        speech_pricing=options.speech_pricing,
        notes=[said, *notes],
    )


def _assemble(draft: _Draft, input: str, shot_starts_s: Sequence[float]) -> Plan:
    o, requests, frames = draft.options, draft.requests or [], draft.frames
    chat_usd = total_cost(*[r.cost_usd for r in requests])
    chat_max = total_cost(*[r.max_cost_usd for r in requests])
    if chat_usd is None and requests:
        draft.notes.append(
            f"{o.provider} server is not OpenAI: chat cost unknown (price {o.model!r} for it in "
            "a prices file: --prices FILE)"
            if o.chat_pricing == "unknown"
            else f"no price for {o.model!r}: cost unknown (add it to a prices file: --prices FILE)"
        )
    speech = SpeechEstimate(0, 0.0, 0.0)
    if draft.task == "voiceover":
        speech = estimate_speech(draft.duration, o, notes=draft.notes, narrated_s=draft.narrated_s)
    speech_usd = speech.cost_usd
    rule = resolve_model(o.model)
    est = draft.estimate
    first = frames[0] if frames else None
    return Plan(
        input=input,
        task=draft.task,
        model=o.model,
        provider=o.provider,
        detail=o.detail,
        duration_s=round(draft.duration, 3),
        frame_times_s=[round(f.time_s, 3) for f in frames],
        shot_starts_s=[round(s, 3) for s in shot_starts_s],
        frame_width=first.width if first else 0,
        frame_height=first.height if first else 0,
        image_tokens_per_frame=est.tokens if est else 0,
        image_rule=draft.learned
        or (est.rule if est else f"{rule.family} {rule.rule.describe(o.detail)}"),
        image_rule_known=rule.known,
        limits=o.limits,
        requests=requests,
        chunks=draft.chunks,
        input_tokens=sum(r.input_tokens for r in requests),
        expected_output_tokens=sum(r.expected_output_tokens for r in requests),
        max_output_tokens=sum(r.max_output_tokens for r in requests),
        chat_cost_usd=chat_usd,
        max_chat_cost_usd=chat_max,
        speech_model=o.speech_model if draft.task == "voiceover" else None,
        speech_characters=speech.characters,
        speech_seconds=speech.seconds,
        speech_cost_usd=speech_usd if draft.task == "voiceover" else None,
        cost_usd=None if chat_usd is None or speech_usd is None else chat_usd + speech_usd,
        max_cost_usd=None if chat_max is None or speech_usd is None else chat_max + speech_usd,
        prices_as_of=o.prices.as_of,
        chat_pricing=o.chat_pricing,
        speech_pricing=o.speech_pricing if draft.task == "voiceover" else "table",
        notes=draft.notes,
    )


def make_plan(
    frames: Sequence[Frame],
    options: PlanOptions,
    *,
    duration_s: float,
    task: Task = "describe",
    input: str = "",
    shot_starts_s: Sequence[float] = (),
    prompt_tokens: int | None = None,
    heard_tokens: tuple[int, float] = (0, 0.0),
    narrated_s: float | None = None,
) -> Plan:
    """The requests a run would make for `frames`, with their tokens and dollars.

    `task` "voiceover" is a script plus speech by `options.speech_model`. A video over the caps
    becomes several requests over contiguous time ranges; a multi-request description adds one
    text-only merge request. Costs are None when the model (or speech model) has no price; on a
    local server they are 0. Expected output counts the answer plus a reasoning allowance
    (reasoning_allowance); max figures assume every request uses its whole output budget.
    `heard_tokens`: what the soundtrack's transcript and the user's context add to each request
    (tokens per request, per second of video it covers). `narrated_s`: the seconds a voiceover
    may narrate in (between speech), when people speak in the video.
    """
    # Requests cover contiguous time ranges: work on the frames in time order.
    ordered = sorted(frames, key=lambda f: f.time_s)
    draft = _Draft(
        frames=ordered,
        duration=max(duration_s, ordered[-1].time_s if ordered else 0.0, 0.0),
        task=task,
        chat_task="describe" if task == "describe" else "script",
        options=options,
        notes=[],
        narrated_s=narrated_s,
    )
    costs = _estimate(draft)
    if draft.batch:
        draft.notes.append(
            f"Batch API: chat at {BATCH_FACTOR:.0%} of the normal price, answers within 24 h"
        )
    shape = _shape(draft, prompt_tokens, heard_tokens)
    chunks = split_frames(ordered, costs, shape, options.limits)
    draft.chunks = len(chunks)
    draft.requests = _frame_requests(draft, costs, shape, chunks)
    if draft.chat_task == "describe" and len(chunks) > 1:
        merge = _merge_request(draft, len(draft.requests) + 1, len(chunks), shape.reasoning_tokens)
        draft.requests.append(merge)
    if len(chunks) > 1:
        biggest = max(r.images for r in draft.requests)
        limits = options.limits
        draft.notes.append(
            f"{len(ordered)} frames split into {len(chunks)} requests of at most {biggest} "
            f"(caps: {limits.max_images_per_request:,} images, "
            f"{limits.max_input_tokens:,} input tokens, {limits.max_request_bytes:,} bytes)"
        )
    return _assemble(draft, input, shot_starts_s)


def plan_frameset(
    frameset: FrameSet,
    options: PlanOptions,
    task: Task,
    *,
    heard_tokens: tuple[int, float] = (0, 0.0),
    narrated_s: float | None = None,
) -> Plan:
    """make_plan for a FrameSet: its frames, video duration, shot starts and path."""
    return make_plan(
        frameset.frames,
        options,
        duration_s=frameset.video.duration_s,
        task=task,
        input=frameset.video.path,
        shot_starts_s=frameset.shot_starts_s,
        heard_tokens=heard_tokens,
        narrated_s=narrated_s,
    )


def check_budget(plan: Plan, max_cost: float | None) -> None:
    """Refuse (ConfigError, exit 3) a plan whose estimated cost exceeds `max_cost` dollars.

    A cost equal to the budget passes. When a budget is set but the cost is unknown (no price
    for the model), the plan is refused too: a cap that cannot be checked is no cap, and the
    user asked for one. None means no budget.
    """
    if max_cost is None:
        return
    if plan.cost_usd is None:
        missing = [plan.model] if plan.chat_cost_usd is None else []
        if plan.task == "voiceover" and plan.speech_cost_usd is None:
            missing.append(plan.speech_model or "(no speech model)")
        if plan.transcription_model and plan.transcription_cost_usd is None:
            missing.append(plan.transcription_model)
        if plan.verify_model and plan.verify_cost_usd is None:
            missing.append(plan.verify_model)
        raise ConfigError(
            f"cannot check --max-cost {format_usd(max_cost)}: no price for "
            + " and ".join(repr(m) for m in missing),
            hint="add the model's prices to a JSON file passed with --prices FILE "
            "(or VNARRATE_PRICES), or run without --max-cost",
        )
    if plan.cost_usd > max_cost:
        worst = (
            f", up to {format_usd(plan.max_cost_usd)} if every request used its whole output budget"
            if plan.max_cost_usd is not None and plan.max_cost_usd > plan.cost_usd
            else ""
        )
        parts = [
            f"{len(plan.requests)} requests, {plan.input_tokens:,} input tokens, "
            f"~{plan.expected_output_tokens:,} output tokens{worst}"
        ] if plan.requests else []  # fmt: skip
        if plan.speech_cost_usd:
            parts.append(f"speech {format_usd(plan.speech_cost_usd)}")
        if plan.transcription_cost_usd:
            parts.append(f"transcription {format_usd(plan.transcription_cost_usd)}")
        raise ConfigError(
            f"estimated cost {format_usd(plan.cost_usd)} exceeds --max-cost "
            f"{format_usd(max_cost)} ({'; '.join(parts)})",
            hint="raise --max-cost, send fewer frames (--max-frames), use --detail low, "
            "or a cheaper model"
            if plan.requests
            else "raise --max-cost",
        )
