"""Packing stage (between frames and prompts, optional): frames -> contact sheets.

Takes the sampled frames, the detail level and how many images a request may carry; gives fewer
"frames", each a grid of the originals in time order with each tile's time drawn on it, so that a
server that takes one image per request (vLLM by default) still sees the whole video. A sheet's
Frame carries `tiles_s` (each tile's time, in reading order) and `grid` (columns, rows) for the
prompt; `sheet_caption` words that for the model.

Sizes follow what the detail level lets the model see: low -> sheets within 512x512 (tiles of
96 px or more on the long side), high/auto/original -> sheets within 2048x2048 with tiles of 256 px
or more so that they stay legible. When even that cannot fit every frame into the allowed number
of sheets, frames are dropped evenly (first and last kept) rather than shrunk past legibility.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from ..media.sheets import Thumbnails, encode_jpeg, render_grid
from ..media.timecode import format_ts
from ..models import Frame, PackMode


class SheetSpec(BaseModel):
    """Sheet and tile sizes for a detail level (long side of a tile, in pixels)."""

    model_config = ConfigDict(frozen=True)

    max_side: int  # a sheet fits within max_side x max_side
    min_tile: int  # below this a tile is illegible: drop frames instead
    preferred_tile: int  # without a cap on images, use more sheets rather than smaller tiles
    gap: int  # dark separator between tiles, so the model sees where one ends


SPECS: dict[str, SheetSpec] = {
    "low": SheetSpec(max_side=512, min_tile=96, preferred_tile=128, gap=1),
    "high": SheetSpec(max_side=2048, min_tile=256, preferred_tile=512, gap=2),
}


def spec_for(detail: str) -> SheetSpec:
    return SPECS["low"] if detail == "low" else SPECS["high"]


class Layout(BaseModel):
    """How frames are laid out: the same grid on every sheet."""

    model_config = ConfigDict(frozen=True)

    columns: int
    rows: int
    tile_w: int
    tile_h: int
    gap: int
    sheets: int
    kept: tuple[int, ...]  # indexes of the frames shown, in order

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def sheet_size(self) -> tuple[int, int]:
        """(width, height) of a full sheet."""
        return (
            self.columns * self.tile_w + (self.columns - 1) * self.gap,
            self.rows * self.tile_h + (self.rows - 1) * self.gap,
        )


def _grid(k: int, fw: int, fh: int, spec: SheetSpec) -> tuple[int, int, int, int]:
    """(columns, rows, tile_w, tile_h) giving the largest tiles for k frames on one sheet."""
    # Largest tiles first; then fewest empty cells; then the most compact (squarest) sheet.
    best: tuple[int, int, int, int, int, int] | None = None
    for cols in range(1, k + 1):
        rows = math.ceil(k / cols)
        usable_w = spec.max_side - (cols - 1) * spec.gap
        usable_h = spec.max_side - (rows - 1) * spec.gap
        scale = min(usable_w / (cols * fw), usable_h / (rows * fh), 1.0)  # never enlarge
        tw, th = max(1, int(fw * scale)), max(1, int(fh * scale))
        longest = max(cols * (tw + spec.gap), rows * (th + spec.gap))
        candidate = (tw * th, -(rows * cols - k), -longest, cols, tw, th)
        if best is None or candidate[:3] > best[:3]:
            best = candidate
    assert best is not None
    _, _, _, cols, tw, th = best
    return cols, math.ceil(k / cols), tw, th


def plan_layout(
    n_frames: int, frame_w: int, frame_h: int, *, detail: str, max_images: int | None
) -> Layout:
    """Choose sheets, grid and tile size for n frames of frame_w x frame_h.

    The fewest sheets whose tiles reach the preferred size; with a cap on images, at most that
    many sheets, with tiles down to the minimum, and past that the frames are thinned evenly.
    """
    if n_frames < 1:
        raise ValueError("no frames to pack")
    if max_images is not None and max_images < 1:
        raise ValueError("max_images must be at least 1")
    spec = spec_for(detail)
    long_side = max(frame_w, frame_h)
    # A tile need not be larger than the frame itself, so "preferred" is capped by it.
    preferred = min(spec.preferred_tile, long_side)
    minimum = min(spec.min_tile, long_side)
    cap = max_images if max_images is not None else n_frames
    kept = list(range(n_frames))
    sheets = 1
    while True:
        per = math.ceil(len(kept) / sheets)
        cols, rows, tw, th = _grid(per, frame_w, frame_h, spec)
        tile_long = max(tw, th)
        if tile_long >= preferred or sheets >= cap:
            break
        sheets += 1
    if tile_long < minimum:
        # Even `cap` sheets cannot show every frame legibly: keep as many as fit at the minimum.
        fit = _capacity(frame_w, frame_h, spec, minimum) * sheets
        kept = _spread(n_frames, max(1, fit))
        per = math.ceil(len(kept) / sheets)
        cols, rows, tw, th = _grid(per, frame_w, frame_h, spec)
    sheets = math.ceil(len(kept) / per)
    return Layout(
        columns=cols,
        rows=rows,
        tile_w=tw,
        tile_h=th,
        gap=spec.gap,
        sheets=sheets,
        kept=tuple(kept),
    )


def _capacity(fw: int, fh: int, spec: SheetSpec, min_long: int) -> int:
    """How many tiles whose long side is min_long fit on one sheet."""
    scale = min_long / max(fw, fh)
    tw, th = max(1, int(fw * scale)), max(1, int(fh * scale))
    cols = max(1, (spec.max_side + spec.gap) // (tw + spec.gap))
    rows = max(1, (spec.max_side + spec.gap) // (th + spec.gap))
    return int(cols * rows)


def _spread(n: int, keep: int) -> list[int]:
    """`keep` indexes out of n, evenly spread, first and last included."""
    if keep >= n:
        return list(range(n))
    if keep == 1:
        return [0]
    return sorted({round(i * (n - 1) / (keep - 1)) for i in range(keep)})


def pack_grid(
    frames: Sequence[Frame], *, detail: str, max_images: int | None, jpeg_quality: int = 85
) -> list[Frame]:
    """Tile frames into contact sheets (see the module doc); one Frame per sheet."""
    if not frames:
        return []
    ordered = sorted(frames, key=lambda f: f.time_s)
    layout = plan_layout(
        len(ordered), ordered[0].width, ordered[0].height, detail=detail, max_images=max_images
    )
    shown = [ordered[i] for i in layout.kept]
    sheets: list[Frame] = []
    for start in range(0, len(shown), layout.per_sheet):
        chunk = shown[start : start + layout.per_sheet]
        # Only as many rows as this sheet fills (the last sheet may be shorter).
        columns = min(layout.columns, len(chunk))
        image = render_grid(
            Thumbnails(chunk, layout.tile_w),  # each tile decoded small, only when drawn
            [format_ts(f.time_s) for f in chunk],
            columns=columns,
            cell=(layout.tile_w, layout.tile_h),
            gap=layout.gap,
        )
        height, width = image.shape[:2]
        sheets.append(
            Frame(
                index=chunk[0].index,
                time_s=chunk[0].time_s,
                width=int(width),
                height=int(height),
                jpeg=encode_jpeg(image, jpeg_quality),
                tiles_s=[round(f.time_s, 3) for f in chunk],
                grid=(columns, math.ceil(len(chunk) / columns)),
            )
        )
    return sheets


class PackOptions(BaseModel):
    """What packing needs (session/options.py builds it once per run from Settings and the provider)."""

    model_config = ConfigDict(frozen=True)

    mode: PackMode
    max_images: int | None  # images a request may carry; None: no cap
    detail: str
    jpeg_quality: int


def choose_pack(mode: str, n_frames: int, max_images: int | None) -> bool:
    """Whether to pack frames into sheets: `grid` always, `auto` when the frames exceed the
    number of images a request may carry (`max_images`; None: no cap), `none` never."""
    if mode == "none":
        return False
    if mode == "grid":
        return True
    if mode != "auto":
        raise ValueError(f"unknown pack mode {mode!r}; choose none, grid or auto")
    return max_images is not None and n_frames > max_images


def pack_frames(frames: Sequence[Frame], options: PackOptions) -> list[Frame] | None:
    """The frames tiled into sheets when `options` say so, else None (send them as they are)."""
    if not choose_pack(options.mode, len(frames), options.max_images):
        return None
    return pack_grid(
        frames,
        detail=options.detail,
        max_images=options.max_images,
        jpeg_quality=options.jpeg_quality,
    )
