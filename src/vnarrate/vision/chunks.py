"""Chunking (pure): frames and what each costs -> contiguous requests under every cap.

Takes the frames in time order, each frame's image tokens, text tokens and bytes, the shape of a
request (prompt, context, slots, output) and the per-request caps; gives [a, b) index ranges, as
few as the caps allow, spread evenly when that still fits. Also how many bytes a frame adds to a
request body and how much output a request covering a stretch of video is expected to need.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..models import Frame, Plan, PlanLimits
from ..narration.script import FILL

ChatTask = Literal["describe", "script"]

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
MERGE_PROMPT_TOKENS = 150


def frame_bytes(frame: Frame) -> int:
    """Bytes a frame adds to a request body: base64 data URL plus its JSON parts."""
    raw = len(frame.jpeg) or math.ceil(frame.width * frame.height * JPEG_BYTES_PER_PIXEL)
    return DATA_URL_PREFIX + 4 * math.ceil(raw / 3) + FRAME_JSON_OVERHEAD


@dataclass(frozen=True)
class FrameCost:
    image_tokens: int
    text_tokens: int
    bytes: int

    @property
    def tokens(self) -> int:
        return self.image_tokens + self.text_tokens


@dataclass(frozen=True)
class Shape:
    """What a frames request costs besides its frames."""

    prompt_tokens: int  # system + task text + schema + message framing
    context_tokens: int  # added to every chunk after the first
    slot_tokens_per_s: float  # script slot lines, per second of video covered
    duration_s: float
    task: ChatTask
    words_per_second: float
    segment_seconds: float
    reasoning_tokens: int

    def output_tokens(self, start: float, end: float) -> int:
        """Expected output of a request covering [start, end): answer plus reasoning."""
        answer = expected_output(self.task, start, end, self.words_per_second, self.segment_seconds)
        return answer + self.reasoning_tokens


def span(frames: Sequence[Frame], a: int, b: int, duration_s: float) -> tuple[float, float]:
    start = 0.0 if a == 0 else frames[a].time_s
    end = duration_s if b == len(frames) else frames[b].time_s
    return start, max(start, end)


def chunk_cost(
    frames: Sequence[Frame], costs: Sequence[FrameCost], a: int, b: int, shape: Shape
) -> tuple[int, int, int]:
    """(image tokens, text tokens, bytes) of the request with frames[a:b]."""
    start, end = span(frames, a, b, shape.duration_s)
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
    costs: Sequence[FrameCost],
    a: int,
    b: int,
    shape: Shape,
    limits: PlanLimits,
) -> bool:
    if b - a > limits.max_images_per_request:
        return False
    img, text, size = chunk_cost(frames, costs, a, b, shape)
    if img + text > limits.max_input_tokens or size > limits.max_request_bytes:
        return False
    if shape.task == "script" and b - a > 1:
        # A script's answer grows with the time it covers: keep it inside the output budget.
        # (One frame always fits: a single frame's stretch cannot be split further.)
        start, end = span(frames, a, b, shape.duration_s)
        return shape.output_tokens(start, end) <= limits.max_output_tokens
    return True


def _greedy(
    frames: Sequence[Frame], costs: Sequence[FrameCost], shape: Shape, limits: PlanLimits
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
    costs: Sequence[FrameCost],
    shape: Shape,
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


def expected_output(task: ChatTask, start: float, end: float, wps: float, segment_s: float) -> int:
    if task == "describe":
        return DESCRIBE_OUTPUT_TOKENS
    words = (end - start) * wps * FILL
    segments = max(1, round((end - start) / max(0.5, segment_s)))
    return math.ceil(words * TOKENS_PER_WORD + segments * SEGMENT_JSON_TOKENS + SCRIPT_JSON_TOKENS)


def request_frames(frames: list[Frame], plan: Plan) -> list[list[Frame]]:
    """The frames of each planned request, in time order (all of them in one when none is)."""
    out = [
        frames[r.first_frame : r.last_frame + 1]
        for r in plan.requests
        if r.kind == "frames" and r.first_frame is not None and r.last_frame is not None
    ]
    return out or [frames]
