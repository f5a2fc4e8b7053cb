"""Sheets: pictures -> one grid image, for people (contact sheets) and for the model (packed frames).

Takes BGR tiles (or JPEG frames) with a label each; gives a BGR grid, or its JPEG bytes. The one
grid renderer: every tile is fitted into an equal cell (aspect kept, letterboxed on black) and
labelled in its top-left corner with white text on a black box, readable on any picture.
A contact sheet decodes each frame's JPEG at a fraction of its size (libjpeg scales while it
decodes) only when its cell is drawn, and shrinks its cells to stay under a pixel budget, so its
memory does not grow with the number of frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from ..models import Frame
from .timecode import format_ts

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Image = npt.NDArray[np.uint8]

BACKGROUND = 24  # dark grey gaps and empty cells, so the model sees where one tile ends
# A contact sheet holds at most this many pixels (12 MB as BGR): up to ~70 frames get 320 px
# cells, 1,500 frames ~70 px cells.
SHEET_PIXELS = 4_000_000


def render_grid(
    tiles: Sequence[Image],
    labels: Sequence[str],
    *,
    columns: int,
    cell: tuple[int, int],
    gap: int = 2,
    margin: int = 0,
) -> Image:
    """A BGR grid of `tiles` in reading order, `columns` wide, each fitted into a `cell`
    (width, height) and labelled; `gap` pixels between cells and `margin` around the grid."""
    import cv2
    import numpy as np

    if len(tiles) != len(labels):
        raise ValueError("one label per tile")
    if not tiles:
        raise ValueError("a sheet needs at least one tile")
    columns = max(1, min(columns, len(tiles)))
    cw, ch = cell
    rows = math.ceil(len(tiles) / columns)
    width = columns * cw + (columns - 1) * gap + 2 * margin
    height = rows * ch + (rows - 1) * gap + 2 * margin
    sheet = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.35, min(ch, cw * 9 / 16) / 240)
    thickness = max(1, round(scale * 1.6))
    for i, (tile, label) in enumerate(zip(tiles, labels, strict=True)):
        r, c = divmod(i, columns)
        x0, y0 = margin + c * (cw + gap), margin + r * (ch + gap)
        box = np.zeros((ch, cw, 3), dtype=np.uint8)
        h, w = tile.shape[:2]
        s = min(cw / w, ch / h)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        fitted: Any = cv2.resize(tile, (nw, nh), interpolation=interp)
        ox, oy = (cw - nw) // 2, (ch - nh) // 2
        box[oy : oy + nh, ox : ox + nw] = fitted
        (text_w, text_h), base = cv2.getTextSize(label, font, scale, thickness)
        pad = max(2, round(text_h * 0.3))
        cv2.rectangle(box, (0, 0), (text_w + 2 * pad, text_h + base + 2 * pad), (0, 0, 0), -1)
        cv2.putText(
            box, label, (pad, pad + text_h), font, scale, (255, 255, 255), thickness, cv2.LINE_AA
        )
        sheet[y0 : y0 + ch, x0 : x0 + cw] = box
    return sheet


def encode_jpeg(image: Image, quality: int = 85) -> bytes:
    """`image` (BGR) as JPEG bytes."""
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("cannot encode a sheet as JPEG")
    return bytes(buf.tobytes())


def decode_jpeg(jpeg: bytes, *, reduce: int = 1) -> Image:
    """A frame's JPEG as a BGR array; `reduce` 2, 4 or 8 decodes it at that fraction of its size
    (libjpeg's own scaling: cheaper than decoding whole)."""
    import cv2
    import numpy as np

    flag = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }[reduce]
    image: Any = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), flag)
    if image is None:
        raise ValueError("a frame's JPEG cannot be decoded")
    return np.asarray(image, dtype=np.uint8)


def frame_label(frame: Frame) -> str:
    """A tile's label: its time, and its shot when sampling by scenes."""
    shot = f"  shot {frame.shot + 1}" if frame.shot is not None else ""
    return format_ts(frame.time_s) + shot


class Thumbnails(Sequence["Image"]):
    """The frames' JPEGs as tiles for render_grid, each decoded only when it is drawn, at the
    largest reduction (1/2, 1/4, 1/8) that still covers `width` pixels: a sheet of many frames
    never holds them all decoded."""

    def __init__(self, frames: Sequence[Frame], width: int) -> None:
        self.frames = frames
        self.width = width

    def __len__(self) -> int:
        return len(self.frames)

    @overload
    def __getitem__(self, i: int) -> Image: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Image]: ...
    def __getitem__(self, i: int | slice) -> Image | Sequence[Image]:
        if isinstance(i, slice):
            return Thumbnails(self.frames[i], self.width)
        frame = self.frames[i]
        reduce = 1
        while reduce < 8 and frame.width // (reduce * 2) >= self.width:
            reduce *= 2
        return decode_jpeg(frame.jpeg, reduce=reduce)


def contact_sheet(
    frames: Sequence[Frame],
    *,
    columns: int | None = None,
    tile_width: int = 320,
    quality: int = 85,
) -> bytes:
    """One JPEG with the frames in a grid, left to right then down, each labelled with its time
    (and shot), for a person to check what the model sees. Cells are `tile_width` wide (narrower
    when that would pass SHEET_PIXELS) and as tall as the tallest frame at that width; `columns`
    defaults to a roughly square sheet."""
    if not frames:
        raise ValueError("a contact sheet needs at least one frame")
    if tile_width < 16:
        raise ValueError("tile_width must be at least 16 pixels")
    n = len(frames)
    aspect = max(f.height / max(1, f.width) for f in frames)
    tile_width = max(16, min(tile_width, math.floor(math.sqrt(SHEET_PIXELS / (n * aspect)))))
    cell_h = max(1, round(tile_width * aspect))
    if columns is None:
        columns = max(1, min(n, math.ceil(math.sqrt(n * cell_h / tile_width))))
    gap = max(2, tile_width // 80)
    grid = render_grid(
        Thumbnails(frames, tile_width),
        [frame_label(f) for f in frames],
        columns=columns,
        cell=(tile_width, cell_h),
        gap=gap,
        margin=gap,
    )
    return encode_jpeg(grid, quality)
