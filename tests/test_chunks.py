"""Splitting frames into requests (vision/chunks.py): every cap held, as few requests as they allow,
frames spread evenly when that still fits."""

from __future__ import annotations

import pytest

from vnarrate.models import Frame, PlanLimits
from vnarrate.vision.chunks import FrameCost, Shape, frame_bytes, split_frames


def test_frame_bytes_use_jpeg_size_when_known() -> None:
    known = Frame(index=0, time_s=0, width=768, height=432, jpeg=b"x" * 3000)
    assert frame_bytes(known) == len("data:image/jpeg;base64,") + 4000 + 120
    unknown = Frame(index=0, time_s=0, width=768, height=432, jpeg=b"")
    assert frame_bytes(unknown) > frame_bytes(known)


def _split(n: int, **caps: int) -> list[tuple[int, int]]:
    frames = [
        Frame(index=i, time_s=float(i), width=64, height=64, jpeg=b"x" * 900) for i in range(n)
    ]
    costs = [FrameCost(image_tokens=100, text_tokens=10, bytes=1300) for _ in frames]
    shape = Shape(prompt_tokens=500, context_tokens=0, slot_tokens_per_s=0.0, duration_s=float(n),
                  task="describe", words_per_second=2.5, segment_seconds=6.0, reasoning_tokens=0)  # fmt: skip
    limits = {"max_images_per_request": 1000, "max_input_tokens": 10**6,
              "max_request_bytes": 10**8, "max_output_tokens": 4096, **caps}  # fmt: skip
    return split_frames(frames, costs, shape, PlanLimits(**limits))


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        ({}, [(0, 10)]),
        ({"max_images_per_request": 4}, [(0, 4), (4, 7), (7, 10)]),  # three, spread evenly
        ({"max_input_tokens": 500 + 110 * 5}, [(0, 5), (5, 10)]),
        # ~1.3 KB a frame: ten do not fit in 13,900 bytes with the request's own, five do.
        ({"max_request_bytes": 1300 * 3 + 10**4}, [(0, 5), (5, 10)]),
    ],
)
def test_split_covers_every_frame_once_under_every_cap(
    caps: dict[str, int], expected: list[tuple[int, int]]
) -> None:
    chunks = _split(10, **caps)
    assert chunks == expected
    assert [a for a, _ in chunks[1:]] == [b for _, b in chunks[:-1]] and chunks[-1][1] == 10
    assert _split(0) == []
