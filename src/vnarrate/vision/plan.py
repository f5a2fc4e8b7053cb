"""Plan stage (pure): sampled frames -> requests, tokens and dollars, before any API call.

Takes the frames (sizes and times; JPEG bytes when known), the model, detail level, per-request
limits and prices; gives a Plan: the frames split into contiguous time chunks so that no request
exceeds the image, input-token or byte cap, each request's estimated input and output tokens and
cost, the speech the narration would need, and notes on every assumption made. `check_budget`
refuses a plan that costs more than the user allows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..media.timecode import format_ts
from ..models import Description, Frame, FrameSet, Plan, PlanLimits, PlannedRequest, Script, Usage
from ..server.prices import PriceTable, chat_cost, format_usd, load_prices, speech_cost
from .tokens import image_tokens, message_overhead, resolve_model, text_tokens

Task = Literal["describe", "script", "voiceover"]

LOCAL_PROVIDERS = frozenset({"ollama", "vllm", "llamacpp", "lmstudio"})

# Per-provider defaults for the caps. OpenAI accepts up to 1,500 images and 512 MB a request;
# older deployments 500 images and 50 MB, so 50 MB is the conservative byte cap. 100k input
# tokens stays well inside every current context window. Local servers have small contexts,
# and vLLM's default --limit-mm-per-prompt allows one image (raise it when the server allows).
_DEFAULTS: dict[str, dict[str, int]] = {
    "openai": {},
    "compatible": {},
    "vllm": {"max_images_per_request": 1, "max_input_tokens": 32_000},
    "ollama": {"max_input_tokens": 32_000},
    "llamacpp": {"max_input_tokens": 32_000},
    "lmstudio": {"max_input_tokens": 32_000},
}

# Bytes: a frame goes as a base64 data URL inside a JSON part, after its timestamp text part.
DATA_URL_PREFIX = len("data:image/jpeg;base64,")
FRAME_JSON_OVERHEAD = 120  # {"type":"text","text":"[0:00.0]"},{"type":"image_url",...,"detail":..}
REQUEST_JSON_OVERHEAD = 4096  # model, options, response_format schema, message framing
JPEG_BYTES_PER_PIXEL = 0.25  # when a frame's JPEG is not at hand (q85 frames measure ~0.1-0.2)
CHARS_PER_TOKEN_BYTES = 4  # prompt text bytes per token, for the byte estimate only

# Output estimates (tokens). A description is a title and a few short paragraphs; a script line
# costs its words plus JSON framing.
DESCRIBE_OUTPUT_TOKENS = 600
TOKENS_PER_WORD = 1.35
SEGMENT_JSON_TOKENS = 20
SCRIPT_JSON_TOKENS = 30
# Context carried into every chunk after the first: the previous chunk's whole description, or
# the last narration line.
CONTEXT_TOKENS = {"describe": DESCRIBE_OUTPUT_TOKENS, "script": 60}
SLOT_LINE_TOKENS = 17  # "- 0:12.0–0:18.0: at most 13 words"
CHARS_PER_WORD = 6.0  # English words with their space, for speech characters
FILL = 0.9  # the narration fills about this share of the video (as script.word_budget)
MERGE_PROMPT_TOKENS = 150

# Reasoning tokens are billed as output but not visible in the answer. Assumed per request when
# the model reasons by default and no effort is given (see reasoning_allowance).
REASONING_BY_EFFORT = {"none": 0, "minimal": 256, "low": 512, "medium": 1024, "high": 4096}
REASONING_BY_EFFORT["xhigh"] = 8192


def limits_for(provider: str, **overrides: int | None) -> PlanLimits:
    """The default caps for a provider, with the user's settings (None = not set) on top."""
    values: dict[str, int] = dict(_DEFAULTS.get(provider, {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return PlanLimits(**values)


def reasoning_allowance(model: str, effort: str | None = None) -> int:
    """Reasoning tokens assumed per request: by `effort` when given, else 1,024 for reasoning
    families (gpt-5*, o*) and 0 for the others (gpt-4o, gpt-4.1, local models)."""
    if effort is not None:
        return REASONING_BY_EFFORT.get(effort, REASONING_BY_EFFORT["medium"])
    name = model.strip().lower().rsplit("/", 1)[-1]
    if name.startswith(("gpt-5", "o1", "o3", "o4")):
        return REASONING_BY_EFFORT["medium"]
    return 0


def _ts(seconds: float) -> str:
    # The label prompts.frame_parts puts before each frame, so its tokens are counted.
    return f"[{format_ts(seconds)}]"


def frame_bytes(frame: Frame) -> int:
    """Bytes a frame adds to a request body: base64 data URL plus its JSON parts."""
    raw = len(frame.jpeg) or math.ceil(frame.width * frame.height * JPEG_BYTES_PER_PIXEL)
    return DATA_URL_PREFIX + 4 * math.ceil(raw / 3) + FRAME_JSON_OVERHEAD


@dataclass(frozen=True)
class _FrameCost:
    image_tokens: int
    text_tokens: int
    bytes: int

    @property
    def tokens(self) -> int:
        return self.image_tokens + self.text_tokens


@dataclass(frozen=True)
class _Shape:
    """What a frames request costs besides its frames."""

    prompt_tokens: int  # system + task text + schema + message framing
    context_tokens: int  # added to every chunk after the first
    slot_tokens_per_s: float  # script slot lines, per second of video covered
    duration_s: float
    task: Task = "describe"
    words_per_second: float = 2.5
    segment_seconds: float = 6.0
    reasoning_tokens: int = 0

    def output_tokens(self, start: float, end: float) -> int:
        """Expected output of a request covering [start, end): answer plus reasoning."""
        answer = _expected_output(
            self.task, start, end, self.words_per_second, self.segment_seconds
        )
        return answer + self.reasoning_tokens


def _span(frames: Sequence[Frame], a: int, b: int, duration_s: float) -> tuple[float, float]:
    start = 0.0 if a == 0 else frames[a].time_s
    end = duration_s if b == len(frames) else frames[b].time_s
    return start, max(start, end)


def _chunk_cost(
    frames: Sequence[Frame], costs: Sequence[_FrameCost], a: int, b: int, shape: _Shape
) -> tuple[int, int, int]:
    """(image tokens, text tokens, bytes) of the request with frames[a:b]."""
    start, end = _span(frames, a, b, shape.duration_s)
    text = shape.prompt_tokens + (shape.context_tokens if a > 0 else 0)
    text += math.ceil((end - start) * shape.slot_tokens_per_s)
    img = 0
    size = REQUEST_JSON_OVERHEAD + CHARS_PER_TOKEN_BYTES * text
    for c in costs[a:b]:
        img += c.image_tokens
        text += c.text_tokens
        size += c.bytes
    return img, text, size


def _fits(
    frames: Sequence[Frame],
    costs: Sequence[_FrameCost],
    a: int,
    b: int,
    shape: _Shape,
    limits: PlanLimits,
) -> bool:
    if b - a > limits.max_images_per_request:
        return False
    img, text, size = _chunk_cost(frames, costs, a, b, shape)
    if img + text > limits.max_input_tokens or size > limits.max_request_bytes:
        return False
    if shape.task == "script" and b - a > 1:
        # A script's answer grows with the time it covers: keep it inside the output budget.
        # (One frame always fits: a single frame's stretch cannot be split further.)
        start, end = _span(frames, a, b, shape.duration_s)
        return shape.output_tokens(start, end) <= limits.max_output_tokens
    return True


def _greedy(
    frames: Sequence[Frame], costs: Sequence[_FrameCost], shape: _Shape, limits: PlanLimits
) -> list[tuple[int, int]]:
    """Fewest contiguous chunks: fill each request until the next frame would break a cap."""
    chunks: list[tuple[int, int]] = []
    a = 0
    n = len(frames)
    while a < n:
        if not _fits(frames, costs, a, a + 1, shape, limits):
            raise ConfigError(
                f"one frame ({frames[a].width}x{frames[a].height}) does not fit in a request "
                f"under the caps ({limits.max_input_tokens:,} input tokens, "
                f"{limits.max_request_bytes:,} bytes)",
                hint="raise max_input_tokens, or send smaller frames (--resize) or detail low",
            )
        # Grow by doubling, then binary-search the largest chunk that fits: O(n log n) overall.
        step = 1
        b = a + 1
        while b < n and _fits(frames, costs, a, min(n, b + step), shape, limits):
            b = min(n, b + step)
            step *= 2
        lo, hi = b, min(n, b + step)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _fits(frames, costs, a, mid, shape, limits):
                lo = mid
            else:
                hi = mid - 1
        chunks.append((a, lo))
        a = lo
    return chunks


def _balanced(n: int, k: int) -> list[tuple[int, int]]:
    base, extra = divmod(n, k)
    bounds = [0]
    for i in range(k):
        bounds.append(bounds[-1] + base + (1 if i < extra else 0))
    return list(itertools.pairwise(bounds))


def split_frames(
    frames: Sequence[Frame],
    costs: Sequence[_FrameCost],
    shape: _Shape,
    limits: PlanLimits,
) -> list[tuple[int, int]]:
    """Contiguous chunks [a, b) covering every frame once, each request under every cap.

    As few requests as the caps allow, with frames spread evenly over them when that still
    fits (each chunk then sees a similar stretch of the video); else the greedy split.
    """
    if not frames:
        return []
    greedy = _greedy(frames, costs, shape, limits)
    if len(greedy) == 1:
        return greedy
    for k in (len(greedy), len(greedy) + 1):
        if k > len(frames):
            break
        even = _balanced(len(frames), k)
        if all(_fits(frames, costs, a, b, shape, limits) for a, b in even):
            return even
    return greedy


def _prompt_tokens(task: Task) -> int:
    """Input tokens of a request without frames: the system prompt, task text and schema.

    Measured on a representative prompt of the prompts stage (the presets differ by a few dozen
    tokens); pass `prompt_tokens` to make_plan for an exact count of your own prompt.
    """
    import json

    from .prompts import describe_messages, script_messages

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


def _expected_output(task: Task, start: float, end: float, wps: float, segment_s: float) -> int:
    if task == "describe":
        return DESCRIBE_OUTPUT_TOKENS
    words = (end - start) * wps * FILL
    segments = max(1, round((end - start) / max(0.5, segment_s)))
    return math.ceil(words * TOKENS_PER_WORD + segments * SEGMENT_JSON_TOKENS + SCRIPT_JSON_TOKENS)


def make_plan(
    frames: Sequence[Frame],
    *,
    model: str,
    duration_s: float,
    task: Task = "describe",
    detail: str = "auto",
    limits: PlanLimits | None = None,
    prices: PriceTable | None = None,
    provider: str = "openai",
    input: str = "",
    shot_starts_s: Sequence[float] = (),
    prompt_tokens: int | None = None,
    reasoning_effort: str | None = None,
    speech_model: str | None = None,
    words_per_second: float = 2.5,
    segment_seconds: float = 6.0,
) -> Plan:
    """The requests a run would make for `frames`, with their tokens and dollars.

    `task` "voiceover" is a script plus speech by `speech_model`. A video over the caps becomes
    several requests over contiguous time ranges; a multi-request description adds one
    text-only merge request. Costs are None when the model (or speech model) has no price; on a
    local provider they are 0. Expected output counts the answer plus a reasoning allowance
    (reasoning_allowance); max figures assume every request uses its whole output budget.
    """
    limits = limits or limits_for(provider)
    prices = prices or load_prices()
    notes: list[str] = []
    local = provider in LOCAL_PROVIDERS
    chat_task: Task = "describe" if task == "describe" else "script"
    # Requests cover contiguous time ranges: work on the frames in time order.
    frames = sorted(frames, key=lambda f: f.time_s)
    duration = max(duration_s, frames[-1].time_s if frames else 0.0, 0.0)

    est = image_tokens(model, frames[0].width, frames[0].height, detail) if frames else None
    rule = resolve_model(model)
    if est is not None:
        notes.extend(est.notes)
    elif not rule.known:
        notes.append(f"unknown model {model!r}: image tokens would assume the {rule.family} rule")
    if local:
        notes.append(
            f"{provider} server: image tokens follow OpenAI's rules; local models tokenize images "
            "their own way, so counts are indicative only; chat costs nothing per token"
        )

    costs = []
    for f in frames:
        e = image_tokens(model, f.width, f.height, detail)
        costs.append(_FrameCost(e.tokens, text_tokens(_ts(f.time_s)), frame_bytes(f)))
    if any(not f.jpeg for f in frames):
        notes.append(
            f"request bytes assume {JPEG_BYTES_PER_PIXEL} bytes per pixel for frames "
            "without JPEG data"
        )
    base_prompt = prompt_tokens if prompt_tokens is not None else _prompt_tokens(chat_task)
    reasoning = reasoning_allowance(model, reasoning_effort)
    shape = _Shape(
        prompt_tokens=base_prompt,
        context_tokens=CONTEXT_TOKENS[chat_task],
        slot_tokens_per_s=(SLOT_LINE_TOKENS / max(0.5, segment_seconds))
        if chat_task == "script"
        else 0.0,
        duration_s=duration,
        task=chat_task,
        words_per_second=words_per_second,
        segment_seconds=segment_seconds,
        reasoning_tokens=reasoning,
    )
    chunks = split_frames(frames, costs, shape, limits)

    if reasoning:
        notes.append(
            f"expected output includes {reasoning:,} reasoning tokens per request (assumed"
            + (f" for reasoning effort {reasoning_effort})" if reasoning_effort else ")")
        )
    cap = limits.max_output_tokens

    def priced(inp: int, out: int) -> float | None:
        if local:
            return 0.0
        return chat_cost(model, Usage(prompt_tokens=inp, completion_tokens=out, requests=1), prices)

    requests: list[PlannedRequest] = []
    for a, b in chunks:
        img, text, size = _chunk_cost(frames, costs, a, b, shape)
        start, end = _span(frames, a, b, duration)
        wanted = shape.output_tokens(start, end)
        if wanted > cap:
            notes.append(
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
                cost_usd=priced(img + text, expected),
                max_cost_usd=priced(img + text, cap),
            )
        )
    if chat_task == "describe" and len(chunks) > 1:
        merge_in = MERGE_PROMPT_TOKENS + len(chunks) * DESCRIBE_OUTPUT_TOKENS + message_overhead(2)
        expected = min(cap, DESCRIBE_OUTPUT_TOKENS + reasoning)
        requests.append(
            PlannedRequest(
                index=len(requests) + 1,
                kind="merge",
                start_s=0.0,
                end_s=round(duration, 3),
                text_tokens=merge_in,
                input_tokens=merge_in,
                expected_output_tokens=expected,
                max_output_tokens=cap,
                request_bytes=REQUEST_JSON_OVERHEAD + CHARS_PER_TOKEN_BYTES * merge_in,
                cost_usd=priced(merge_in, expected),
                max_cost_usd=priced(merge_in, cap),
            )
        )
    if len(chunks) > 1:
        biggest = max(r.images for r in requests)
        notes.append(
            f"{len(frames)} frames split into {len(chunks)} requests of at most {biggest} "
            f"(caps: {limits.max_images_per_request:,} images, "
            f"{limits.max_input_tokens:,} input tokens, {limits.max_request_bytes:,} bytes)"
        )

    chat_usd = _sum([r.cost_usd for r in requests])
    chat_max = _sum([r.max_cost_usd for r in requests])
    if chat_usd is None and requests:
        notes.append(
            f"no price for {model!r}: cost unknown (add it to a prices file: --prices FILE)"
        )

    speech_chars = 0
    speech_secs = 0.0
    speech_usd: float | None = 0.0
    if task == "voiceover":
        words = duration * words_per_second * FILL
        speech_chars = math.ceil(words * CHARS_PER_WORD)
        speech_secs = round(words / max(0.1, words_per_second), 1)
        if speech_model is None:
            speech_usd = None
            notes.append("no speech model given: speech cost unknown")
        else:
            speech_usd = speech_cost(speech_model, speech_chars, speech_secs, prices)
        if speech_model is not None and speech_usd is None:
            notes.append(f"no price for speech model {speech_model!r}: speech cost unknown")
        notes.append(
            f"speech length assumes {words_per_second:g} words/s over {FILL:.0%} of the video "
            f"and {CHARS_PER_WORD:g} characters a word"
        )
    total = None if chat_usd is None or speech_usd is None else chat_usd + speech_usd
    total_max = None if chat_max is None or speech_usd is None else chat_max + speech_usd

    first = frames[0] if frames else None
    return Plan(
        input=input,
        task=task,
        model=model,
        provider=provider,
        detail=detail,
        duration_s=round(duration, 3),
        frame_times_s=[round(f.time_s, 3) for f in frames],
        shot_starts_s=[round(s, 3) for s in shot_starts_s],
        frame_width=first.width if first else 0,
        frame_height=first.height if first else 0,
        image_tokens_per_frame=est.tokens if est else 0,
        image_rule=est.rule if est else f"{rule.family} {rule.rule.describe(detail)}",
        image_rule_known=rule.known,
        limits=limits,
        requests=requests,
        chunks=len(chunks),
        input_tokens=sum(r.input_tokens for r in requests),
        expected_output_tokens=sum(r.expected_output_tokens for r in requests),
        max_output_tokens=sum(r.max_output_tokens for r in requests),
        chat_cost_usd=chat_usd,
        max_chat_cost_usd=chat_max,
        speech_model=speech_model if task == "voiceover" else None,
        speech_characters=speech_chars,
        speech_seconds=speech_secs,
        speech_cost_usd=speech_usd if task == "voiceover" else None,
        cost_usd=total,
        max_cost_usd=total_max,
        prices_as_of=prices.as_of,
        notes=notes,
    )


def plan_frameset(frameset: FrameSet, *, model: str, **options: Any) -> Plan:
    """make_plan for a FrameSet: its frames, video duration, shot starts and path."""
    return make_plan(
        frameset.frames,
        model=model,
        duration_s=frameset.video.duration_s,
        shot_starts_s=frameset.shot_starts_s,
        input=str(options.pop("input", frameset.video.path)),
        **options,
    )


def _sum(values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))


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
        raise ConfigError(
            f"estimated cost {format_usd(plan.cost_usd)} exceeds --max-cost "
            f"{format_usd(max_cost)} ({len(plan.requests)} requests, "
            f"{plan.input_tokens:,} input tokens, ~{plan.expected_output_tokens:,} output "
            f"tokens{worst})",
            hint="raise --max-cost, send fewer frames (--max-frames), use --detail low, "
            "or a cheaper model",
        )
