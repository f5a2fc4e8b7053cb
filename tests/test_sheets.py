"""Sheets: the one grid renderer (cells, letterboxing, labels) and JPEG round trips."""

from __future__ import annotations

import numpy as np
import pytest

from vnarrate.media.sheets import decode_jpeg, encode_jpeg, render_grid


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
