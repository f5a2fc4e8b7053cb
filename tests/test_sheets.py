"""Sheets: the one grid renderer (cells, letterboxing, labels), JPEG round trips, and contact
sheets whose memory does not grow with the number of frames."""

from __future__ import annotations

import numpy as np
import pytest

from vnarrate.media.sheets import (
    SHEET_PIXELS,
    Thumbnails,
    contact_sheet,
    decode_jpeg,
    encode_jpeg,
    render_grid,
)
from vnarrate.models import Frame


def test_render_grid_letterboxes_odd_sizes() -> None:
    wide = np.full((50, 200, 3), 255, np.uint8)
    sheet = render_grid([wide], ["0:01.0"], columns=1, cell=(100, 100), gap=0)
    assert sheet.shape == (100, 100, 3)
    assert sheet[90, 50].max() < 30  # black bar under the letterboxed frame
    assert sheet[50, 50].min() > 220
    assert sheet[1, 1].max() < 30 and sheet[:20, :60].max() > 200  # label box, white text
    with pytest.raises(ValueError):
        render_grid([wide], [], columns=1, cell=(10, 10))
    with pytest.raises(ValueError):
        render_grid([], [], columns=1, cell=(10, 10))


def test_grid_size_gap_and_margin() -> None:
    tiles = [np.full((30, 40, 3), 200, np.uint8)] * 5
    sheet = render_grid(tiles, ["a"] * 5, columns=2, cell=(40, 30), gap=3, margin=4)
    assert sheet.shape[:2] == (3 * 30 + 2 * 3 + 8, 2 * 40 + 3 + 8)
    assert sheet[0, 0].max() == sheet[-1, -1].max() == 24  # margin and the empty last cell


def test_jpeg_round_trip() -> None:
    image = np.zeros((16, 24, 3), np.uint8)
    image[:, 12:] = 255
    back = decode_jpeg(encode_jpeg(image, 95))
    assert back.shape == image.shape and back[8, 20].min() > 240 and back[8, 2].max() < 15
    with pytest.raises(ValueError):
        decode_jpeg(b"not a jpeg")


# --- contact sheets -------------------------------------------------------------------------------


def frame(t: float, width: int = 160, height: int = 120, value: int = 128) -> Frame:
    image = np.full((height, width, 3), value, np.uint8)
    return Frame(index=0, time_s=t, width=width, height=height, jpeg=encode_jpeg(image))


def test_contact_sheet_grid_and_labels() -> None:
    fs = [frame(t) for t in (0.5, 1.5, 2.5, 3.5, 4.5)]
    sheet = decode_jpeg(contact_sheet(fs, columns=2, tile_width=100))
    gap = 2
    tile_h = 75  # 160x120 at 100 px wide
    assert sheet.shape[1] == 2 * 100 + 3 * gap
    assert sheet.shape[0] == 3 * tile_h + 4 * gap
    # The first tile's label (white text on a black box) sits in its top-left corner.
    corner = sheet[gap : gap + 14, gap : gap + 60]
    assert corner.max() > 200
    auto = decode_jpeg(contact_sheet(fs))
    assert auto.shape[1] > auto.shape[0] / 2  # 5 frames: not a single column


def test_contact_sheet_keeps_each_tiles_aspect() -> None:
    sheet = decode_jpeg(contact_sheet([frame(0), frame(1, 120, 200)], columns=2, tile_width=60))
    assert sheet.shape[0] == 100 + 2 * 2  # the tall tile sets the row height (200 * 60/120)
    with pytest.raises(ValueError):
        contact_sheet([])


def test_a_sheet_of_many_frames_stays_small() -> None:
    # 1,500 frames of 768x432: cells shrink so the sheet stays under its pixel budget.
    big = frame(0, 768, 432)
    many = [big.model_copy(update={"time_s": i / 10}) for i in range(1500)]
    sheet = decode_jpeg(contact_sheet(many))
    assert sheet.shape[0] * sheet.shape[1] <= SHEET_PIXELS * 1.1
    assert sheet.shape[1] > 1500  # still a grid, not a column


def test_reduced_decoding_is_a_thumbnail() -> None:
    image = np.zeros((432, 768, 3), np.uint8)
    image[:, 384:] = 255
    jpeg = encode_jpeg(image)
    small = decode_jpeg(jpeg, reduce=4)
    assert small.shape == (108, 192, 3)
    assert small[50, 20].max() < 20 and small[50, 170].min() > 230


def test_thumbnails_decode_each_tile_small_and_only_when_drawn() -> None:
    tiles = Thumbnails([frame(0, 768, 432), frame(1, 160, 120)], 100)
    assert len(tiles) == 2
    assert tiles[0].shape == (108, 192, 3)  # 1/4: the largest reduction still 100 px wide
    assert tiles[1].shape == (120, 160, 3)  # too small to reduce
    assert len(tiles[1:]) == 1
