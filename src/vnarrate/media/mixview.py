"""Mix view: a video's soundtrack, where people speak and where the narration landed -> one PNG.

Takes the video (its own audio is decoded at a low rate with PyAV for the waveform), the speech
regions, the narration's Placements and track, the lines left out, and a few frames; gives PNG
bytes: frame thumbnails along the time axis, the original waveform with speech shaded, the
narration's waveform with a labelled bar for each line where it landed (red where it lies over
speech, hatched where it was cut), a time axis and a legend. Drawn with OpenCV: a person sees
the mix at a glance.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models import Frame, Placement
from .probe import main_stream
from .timecode import format_ts

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Image = npt.NDArray[np.uint8]
    Samples = npt.NDArray[np.int16]
    Floats = npt.NDArray[np.float32]

WIDTH = 1600
LEFT, RIGHT = 110, 20  # room for the lanes' names on the left
PEAKS_PER_S = 100  # audio_peaks: one peak per 10 ms
# Colours (BGR).
BG, INK, GRID = (250, 250, 250), (40, 40, 40), (215, 215, 215)
WAVE, SPEECH, NARRATION = (120, 120, 120), (80, 160, 245), (200, 120, 40)
OVER, DROPPED = (60, 60, 220), (170, 60, 170)
FONT_SCALE = 0.45


@dataclass
class MixView:
    """What the picture shows (times in seconds)."""

    duration_s: float
    title: str
    speech: Sequence[tuple[float, float]] = ()
    placements: Sequence[Placement] = ()
    narration: Samples | None = None  # the narration track
    narration_rate: int = 24000
    dropped: Sequence[tuple[float, str]] = ()  # (where the script wanted it, its text)
    frames: Sequence[Frame] = ()
    original: Floats | None = None  # the video's own audio: audio_peaks
    notes: list[str] = field(default_factory=list)  # one line under the title


def audio_peaks(path: Path) -> Floats | None:
    """The peak level (0..1) of the video's own audio in every 10 ms (PEAKS_PER_S a second);
    None when it has no audio or it cannot be read (the picture then says so). Decoded frames
    are reduced to their 10 ms peaks at once, at their own rate (no resampling): memory stays
    small and an hour takes about the decoding's time."""
    import av
    import numpy as np

    peaks: list[Any] = []
    try:
        with av.open(str(path)) as container:
            stream = main_stream(container.streams.audio)
            if stream is None:
                return None
            rest = np.zeros(0, dtype=np.float32)
            for frame in container.decode(stream):
                step = max(1, frame.sample_rate // PEAKS_PER_S)
                channels = max(1, len(frame.layout.channels))
                level = _levels(frame.to_ndarray(), frame.format.name, channels)
                rest = np.concatenate([rest, level])
                whole = len(rest) // step * step
                if whole:
                    peaks.append(rest[:whole].reshape(-1, step).max(axis=1))
                    rest = rest[whole:]
            if len(rest):
                peaks.append(rest.max(keepdims=True))
    except (av.FFmpegError, OSError, ValueError):
        return None
    return np.concatenate(peaks) if peaks else None


def _levels(x: Any, fmt: str, channels: int) -> Floats:
    """|sample| (0..1) of a decoded frame (planar or interleaved), its loudest channel at each
    instant."""
    import numpy as np

    base = fmt.rstrip("p")
    scale = {"s16": 32768.0, "s32": 2147483648.0, "u8": 128.0}.get(base, 1.0)
    y = np.abs(x.astype(np.float32) - (128.0 if base == "u8" else 0.0)) / scale
    y = y.reshape(channels, -1) if fmt.endswith("p") else y.reshape(-1, channels).T
    return np.asarray(y.max(axis=0), dtype=np.float32)


def _peaks(x: Any, columns: int, total: int | None = None) -> Floats:
    """The largest value of `x` in each of `columns` slices of `total` samples (default: len)."""
    import numpy as np

    total = total or len(x)
    edges = np.linspace(0, total, columns + 1).astype(np.int64)
    out = np.zeros(columns, dtype=np.float32)
    for c in range(columns):
        a, b = int(edges[c]), min(int(edges[c + 1]), len(x))
        if b > a:
            out[c] = float(np.max(x[a:b]))
    return out


def render_mix(view: MixView) -> bytes:
    """The picture as PNG bytes."""
    import cv2
    import numpy as np

    lanes = _Layout(view)
    image = np.full((lanes.height, WIDTH, 3), BG, dtype=np.uint8)
    _title(image, view)
    _thumbnails(image, view, lanes)
    _axis(image, view, lanes)  # first: its grid lines go under the lanes
    _original_lane(image, view, lanes)
    _narration_lane(image, view, lanes)
    _legend(image, lanes)
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("cannot encode the timeline picture")
    return bytes(buf.tobytes())


class _Layout:
    """Where each lane lies (y ranges) and how a time maps to x."""

    def __init__(self, view: MixView) -> None:
        self.duration = max(view.duration_s, 1e-3)
        self.thumbs = (50, 50 + (110 if view.frames else 0))
        self.original = (self.thumbs[1] + 14, self.thumbs[1] + 14 + 120)
        self.narration = (self.original[1] + 16, self.original[1] + 16 + 150)
        self.axis = self.narration[1] + 4
        self.height = self.axis + 70

    def x(self, t: float) -> int:
        span = WIDTH - LEFT - RIGHT
        return LEFT + round(min(max(t, 0.0), self.duration) / self.duration * span)


def _text(image: Image, text: str, org: tuple[int, int], *, scale: float = FONT_SCALE,
          color: tuple[int, int, int] = INK, bold: bool = False) -> None:  # fmt: skip
    import cv2

    cv2.putText(image, ascii_text(text), org, cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                2 if bold else 1, cv2.LINE_AA)  # fmt: skip


def ascii_text(text: str) -> str:
    """What OpenCV's built-in font can draw: accents dropped, other letters as '?'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain if plain.strip() or not text.strip() else "?" * min(len(text), 3)


def _text_width(text: str, scale: float = FONT_SCALE) -> int:
    import cv2

    return int(cv2.getTextSize(ascii_text(text), cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0])


def _fit_label(text: str, width: int) -> str:
    """`text` shortened with '...' to fit `width` pixels ('' when not even a word fits)."""
    if _text_width(text) <= width:
        return text
    words = text.split()
    while words and _text_width(" ".join(words) + "...") > width:
        words.pop()
    return " ".join(words) + "..." if words else ""


def _title(image: Image, view: MixView) -> None:
    _text(image, view.title, (LEFT, 22), scale=0.6, bold=True)
    _text(image, "  ".join(view.notes), (LEFT, 42), scale=0.42)


def _thumbnails(image: Image, view: MixView, lanes: _Layout) -> None:
    """Frames at their times, as many as fit side by side, each with a tick to the axis."""
    import cv2
    import numpy as np

    top, bottom = lanes.thumbs
    if not view.frames:
        return
    height = bottom - top - 10
    right = -1
    for frame in sorted(view.frames, key=lambda f: f.time_s):
        tile: Any = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if tile is None:
            continue
        w = max(1, round(tile.shape[1] * height / tile.shape[0]))
        x = lanes.x(frame.time_s)
        x0 = min(max(LEFT, x - w // 2), WIDTH - RIGHT - w)
        if x0 <= right + 4 or x0 < 0:
            continue  # would cover the previous one
        image[top : top + height, x0 : x0 + w] = cv2.resize(
            tile, (w, height), interpolation=cv2.INTER_AREA
        )
        cv2.line(image, (x, top + height), (x, bottom), INK, 1)
        right = x0 + w
    _text(image, "frames", (8, top + height // 2))


def _shade(image: Image, x0: int, x1: int, y0: int, y1: int, color: tuple[int, int, int],
           alpha: float) -> None:  # fmt: skip
    import numpy as np

    if x1 <= x0:
        return
    part = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (part * (1 - alpha) + np.array(color) * alpha).astype(np.uint8)


def _wave(image: Image, peaks: Any, y0: int, y1: int, color: tuple[int, int, int]) -> None:
    """A mirrored envelope: one vertical line per column."""
    import cv2

    mid, half = (y0 + y1) // 2, (y1 - y0) // 2 - 4
    for c, level in enumerate(peaks):
        h = max(0, round(min(1.0, float(level)) ** 0.5 * half))  # sqrt: quiet parts visible
        if h:
            cv2.line(image, (LEFT + c, mid - h), (LEFT + c, mid + h), color, 1)
    cv2.line(image, (LEFT, mid), (WIDTH - RIGHT, mid), GRID, 1)


def _original_lane(image: Image, view: MixView, lanes: _Layout) -> None:
    y0, y1 = lanes.original
    for a, b in view.speech:
        _shade(image, lanes.x(a), lanes.x(b), y0, y1, SPEECH, 0.35)
    if view.original is not None:
        total = round(lanes.duration * PEAKS_PER_S)
        _wave(image, _peaks(view.original, WIDTH - LEFT - RIGHT, total), y0, y1, WAVE)
    else:
        _text(image, "no audio track", (LEFT + 8, (y0 + y1) // 2 + 5), color=WAVE)
    for a, b in view.speech:
        if lanes.x(b) - lanes.x(a) > 60:
            _text(image, "speech", (lanes.x(a) + 4, y0 + 14), scale=0.4, color=(30, 90, 180))
    _text(image, "soundtrack", (8, (y0 + y1) // 2 + 5))


def _narration_lane(image: Image, view: MixView, lanes: _Layout) -> None:
    import cv2
    import numpy as np

    y0, y1 = lanes.narration
    bar0, bar1 = y0, y0 + 40
    for a, b in view.speech:  # where speech is, faintly, so overlaps show
        _shade(image, lanes.x(a), lanes.x(b), y0, y1, SPEECH, 0.12)
    if view.narration is not None and len(view.narration):
        total = round(lanes.duration * view.narration_rate)
        peaks = _peaks(np.abs(view.narration[:total].astype(np.float32)) / 32768,
                       WIDTH - LEFT - RIGHT, total)  # fmt: skip
        _wave(image, peaks, bar1 + 4, y1, NARRATION)
    for n, p in enumerate(view.placements):
        x0, x1 = lanes.x(p.start_s), max(lanes.x(p.start_s) + 2, lanes.x(p.end_s))
        color = OVER if p.over_speech_s > 0 else NARRATION
        top = bar0 + (n % 2) * 20  # alternate rows so neighbours' labels do not collide
        cv2.rectangle(image, (x0, top), (x1, top + 18), color, -1)
        if p.cut:
            for hx in range(x0, x1, 8):
                cv2.line(image, (hx, top + 18), (min(x1, hx + 8), top), BG, 1)
        label = _fit_label(p.text, x1 - x0 - 6)
        if label:
            _text(image, label, (x0 + 3, top + 13), scale=0.4, color=(255, 255, 255))
    _left_out(image, view, lanes, bar1)
    _text(image, "narration", (8, (y0 + y1) // 2 + 5))


def _left_out(image: Image, view: MixView, lanes: _Layout, y: int) -> None:
    """A cross per line left out; its label only as wide as the room before the next cross
    (lines left out at one place share one label: "left out: 3 lines")."""
    import cv2

    spots: dict[int, list[str]] = {}
    for t, text in sorted(view.dropped):
        spots.setdefault(lanes.x(t), []).append(text)
    xs = sorted(spots)
    for x, nxt in zip(xs, [*xs[1:], WIDTH - RIGHT + 260][: len(xs)], strict=True):
        texts = spots[x]
        cv2.drawMarker(image, (x, y + 12), DROPPED, cv2.MARKER_TILTED_CROSS, 12, 2)
        said = texts[0] if len(texts) == 1 else f"{len(texts)} lines"
        label = _fit_label(f"left out: {said}", min(260, nxt - x - 16))
        if label:
            _text(image, label, (x + 8, y + 17), scale=0.38, color=DROPPED)


def _axis(image: Image, view: MixView, lanes: _Layout) -> None:
    import cv2

    y = lanes.axis
    cv2.line(image, (LEFT, y), (WIDTH - RIGHT, y), INK, 1)
    step = _tick_step(lanes.duration)
    t = 0.0
    while t <= lanes.duration + 1e-9:
        x = lanes.x(t)
        cv2.line(image, (x, y), (x, y + 6), INK, 1)
        cv2.line(image, (x, lanes.original[0]), (x, y), GRID, 1)
        label = format_ts(t)
        _text(image, label, (x - _text_width(label, 0.4) // 2, y + 20), scale=0.4)
        t += step


def _tick_step(duration: float) -> float:
    """A round step giving about 10-20 ticks."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if duration / step <= 20:
            return float(step)
    return float(math.ceil(duration / 20 / 3600) * 3600)


def _legend(image: Image, lanes: _Layout) -> None:
    import cv2

    y = lanes.axis + 48
    x = LEFT
    for color, name in ((SPEECH, "speech (detected)"), (NARRATION, "narration"),
                        (OVER, "narration over speech"), (DROPPED, "line left out")):  # fmt: skip
        cv2.rectangle(image, (x, y - 10), (x + 16, y + 2), color, -1)
        _text(image, name, (x + 22, y), scale=0.42)
        x += 40 + _text_width(name, 0.42)
    _text(image, "hatched: cut at a sentence end", (x, y), scale=0.42)
