"""Grid packing: tile positions and times, sheet size per detail, sheet count for N frames and a
cap, thinning past legibility, and when `auto` packs. Frames are flat colours made here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vnarrate.models import Frame
from vnarrate.server.providers import PROFILES
from vnarrate.vision.pack import (
    choose_pack,
    pack_grid,
    plan_layout,
    spec_for,
)
from vnarrate.vision.prompts import sheet_caption


def colour(i: int) -> tuple[int, int, int]:
    """A distinct, saturated BGR colour per index (far apart from its neighbours)."""
    hue = (i * 37) % 180
    hsv = np.uint8([[[hue, 255, 230]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def frames(n: int, size: tuple[int, int] = (320, 180), step: float = 1.5) -> list[Frame]:
    out = []
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:] = colour(i)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        out.append(
            Frame(
                index=i * 15,
                time_s=i * step,
                width=size[0],
                height=size[1],
                jpeg=buf.tobytes(),
            )
        )
    return out


def decode(frame: Frame) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    assert (img.shape[1], img.shape[0]) == (frame.width, frame.height)
    return img


def close(a: np.ndarray, b: tuple[int, int, int], tol: int = 30) -> bool:
    return bool(np.all(np.abs(a.astype(int) - np.array(b)) <= tol))


def test_tiles_in_reading_order_with_their_times() -> None:
    src = frames(7)
    [sheet] = pack_grid(src, detail="high", max_images=1)
    layout = plan_layout(7, 320, 180, detail="high", max_images=1)
    img = decode(sheet)
    cols, rows = sheet.grid or (0, 0)
    assert (cols, rows) == (layout.columns, -(-7 // layout.columns))
    assert sheet.tiles_s == [f.time_s for f in src]
    assert (sheet.index, sheet.time_s) == (0, 0.0)
    tw, th, gap = layout.tile_w, layout.tile_h, layout.gap
    for i in range(7):
        r, c = divmod(i, cols)
        cx, cy = c * (tw + gap) + tw // 2, r * (th + gap) + th * 2 // 3
        assert close(img[cy, cx], colour(i)), (i, img[cy, cx], colour(i))
        # The label: a black box with white text in the tile's top-left corner.
        corner = img[r * (th + gap) : r * (th + gap) + 12, c * (tw + gap) : c * (tw + gap) + 40]
        assert corner.min() < 40 and corner.max() > 200
    # Cells after the last tile stay empty (dark), not a stretched frame.
    if rows * cols > 7:
        r, c = divmod(7, cols)
        assert img[r * (th + gap) + th // 2, c * (tw + gap) + tw // 2].max() < 60


def test_frames_are_sorted_by_time_first() -> None:
    src = frames(4)
    [sheet] = pack_grid(list(reversed(src)), detail="low", max_images=1)
    assert sheet.tiles_s == [0.0, 1.5, 3.0, 4.5]


@pytest.mark.parametrize(("detail", "limit"), [("low", 512), ("high", 2048), ("auto", 2048)])
def test_sheet_size_per_detail(detail: str, limit: int) -> None:
    for n in (1, 2, 5, 16, 48):
        for sheet in pack_grid(frames(n), detail=detail, max_images=1):
            assert max(sheet.width, sheet.height) <= limit


def test_low_is_one_512_sheet_and_high_keeps_tiles_legible() -> None:
    [low] = pack_grid(frames(16, (768, 432)), detail="low", max_images=1)
    assert max(low.width, low.height) <= 512 and len(low.tiles_s or []) == 16
    high = plan_layout(16, 768, 432, detail="high", max_images=1)
    assert max(high.tile_w, high.tile_h) >= spec_for("high").min_tile
    assert high.sheets == 1 and len(high.kept) == 16


def test_tiles_never_enlarged() -> None:
    layout = plan_layout(2, 160, 90, detail="high", max_images=1)
    assert (layout.tile_w, layout.tile_h) == (160, 90)


@pytest.mark.parametrize(
    ("n", "cap", "sheets"),
    [(1, 1, 1), (16, 1, 1), (16, 2, 1), (48, 4, 3), (48, None, 3), (100, 2, 2), (5, None, 1)],
)
def test_number_of_sheets(n: int, cap: int | None, sheets: int) -> None:
    out = pack_grid(frames(n, (768, 432)), detail="high", max_images=cap)
    assert len(out) == sheets
    if cap is not None:
        assert len(out) <= cap
    shown = [t for s in out for t in (s.tiles_s or [])]
    assert shown == sorted(shown)


def test_sheets_share_the_frames_evenly() -> None:
    out = pack_grid(frames(30, (768, 432)), detail="high", max_images=None)
    counts = [len(s.tiles_s or []) for s in out]
    assert sum(counts) == 30 and max(counts) - min(counts) <= max(counts) // 2 + 1


def test_too_many_frames_are_thinned_evenly_not_shrunk() -> None:
    layout = plan_layout(300, 768, 432, detail="high", max_images=1)
    assert max(layout.tile_w, layout.tile_h) >= 256
    assert layout.kept[0] == 0 and layout.kept[-1] == 299
    assert 50 < len(layout.kept) < 300
    gaps = np.diff(layout.kept)
    assert gaps.max() - gaps.min() <= 1


def test_portrait_frames() -> None:
    [sheet] = pack_grid(frames(6, (180, 320)), detail="high", max_images=1)
    assert sheet.grid is not None and sheet.grid[0] >= sheet.grid[1]  # side by side


def test_empty_and_bad_arguments() -> None:
    assert pack_grid([], detail="high", max_images=1) == []
    with pytest.raises(ValueError):
        plan_layout(0, 10, 10, detail="high", max_images=1)
    with pytest.raises(ValueError):
        plan_layout(3, 10, 10, detail="high", max_images=0)


def test_sheet_caption_tells_which_tile_is_which_time() -> None:
    [sheet] = pack_grid(frames(3), detail="high", max_images=1)
    text = sheet_caption(sheet)
    assert "3 frames" in text and "0:00.0, 0:01.5, 0:03.0" in text
    assert "left to right" in text
    plain = frames(1)[0]
    assert sheet_caption(plain) == "[0:00.0]"


def test_choose_pack() -> None:
    vllm = PROFILES["vllm"].max_images_per_request
    ollama = PROFILES["ollama"].max_images_per_request
    assert choose_pack("auto", 8, vllm) is True
    assert choose_pack("auto", 1, vllm) is False
    assert choose_pack("auto", 500, ollama) is False  # no cap known
    assert choose_pack("auto", 8, 4) is True  # the user's --max-images-per-request
    assert choose_pack("auto", 8, 16) is False
    assert choose_pack("grid", 1, ollama) is True
    assert choose_pack("none", 100, vllm) is False
    with pytest.raises(ValueError):
        choose_pack("tiles", 3, vllm)
