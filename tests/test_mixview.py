"""The timeline picture: the video's own waveform with speech shaded, the narration where it
landed (red over speech, hatched when cut), lines left out, frames along the time axis; the
waveform decoded from the video's audio at a low rate, or none without audio."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from _media import make_soundtrack, make_video, place, speechlike

from vnarrate.media.frames import sample_frames
from vnarrate.media.mixview import (
    LEFT,
    NARRATION,
    OVER,
    SPEECH,
    MixView,
    _Layout,
    ascii_text,
    audio_peaks,
    render_mix,
)
from vnarrate.models import Placement, SamplingSpec


def placed(a: float, b: float, text: str, **kw: object) -> Placement:
    return Placement(segment=0, text=text, start_s=a, end_s=b, slot_start_s=a, slot_end_s=b, **kw)


def near(pixel: np.ndarray, color: tuple[int, int, int], tol: int = 40) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(color)) <= tol))


def test_the_picture_shows_speech_narration_and_frames(tmp_path: Path) -> None:
    video = make_soundtrack(
        tmp_path / "talk.mp4",
        [place(10.0, [(2.0, speechlike(3.0, seed=1))])],
        rate=16000,
    )
    peaks = audio_peaks(video)
    assert peaks is not None and abs(len(peaks) - 1000) <= 10  # one per 10 ms (AAC pads)
    assert peaks[250:450].max() > 10 * max(peaks[:150].max(), 1e-4)  # loud where speech is
    spec = SamplingSpec(mode="count", stride=1, count=4, every_s=1.0, max_frames=4, resize=120,
                        jpeg_quality=80, scene_threshold=0.3, exact_times=False)  # fmt: skip
    view = MixView(
        duration_s=10.0,
        title="talk.mp4",
        speech=[(2.0, 5.0)],
        placements=[placed(0.2, 1.8, "Dawn."), placed(5.2, 7.5, "Over it", over_speech_s=0.4)],
        narration=np.full(240_000, 8000, dtype=np.int16),
        dropped=[(8.0, "A line left out")],
        frames=sample_frames(video, spec).frames,
        original=peaks,
        notes=["in gaps 1"],
    )
    image = cv2.imdecode(np.frombuffer(render_mix(view), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] == 1600
    lanes = _Layout(view)
    y_speech = lanes.original[0] + 5
    assert near(image[y_speech, lanes.x(3.7)], (190, 218, 248), 12)  # shaded speech (blended)
    assert near(image[y_speech, lanes.x(7.2)], (250, 250, 250), 12)  # nobody speaks here
    bar_y = lanes.narration[0] + 9
    assert near(image[bar_y, lanes.x(1.0)], NARRATION)
    assert near(image[bar_y + 20, lanes.x(6.0)], OVER)  # the second bar, on the second row
    thumbs = image[lanes.thumbs[0] + 5 : lanes.thumbs[1] - 15, LEFT:]
    assert thumbs.std() > 5  # frames drawn


def test_without_audio_the_picture_says_so(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=2.0, fps=10)
    assert audio_peaks(video) is None
    assert audio_peaks(tmp_path / "missing.mp4") is None
    png = render_mix(MixView(duration_s=2.0, title="v.mp4", speech=[], placements=[]))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert SPEECH and ascii_text("Café — 東京") == "Cafe  " and ascii_text("東京") == "??"


def test_labels_of_lines_left_out_never_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    import vnarrate.media.mixview as mixview

    drawn: list[tuple[str, int]] = []
    real_text = mixview._text

    def text(image: np.ndarray, label: str, at: tuple[int, int], **kw: object) -> None:
        if label.startswith("left out"):
            drawn.append((label, at[0]))
        real_text(image, label, at, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mixview, "_text", text)
    gone = "A long line that did not fit anywhere in the gap it was written for"
    view = MixView(duration_s=30.0, title="t", speech=[], placements=[],
                   dropped=[(6.0, gone), (6.0, gone), (6.0, gone), (12.0, gone), (12.3, gone), (20.0, "Short.")])  # fmt: skip
    render_mix(view)
    labels = [label for label, _ in drawn]
    assert labels[0] == "left out: 3 lines"  # three at one place share one label
    # 12.0 s is too close to 12.3 s for any label: only its cross is drawn
    assert labels[1].startswith("left out: A long line") and labels[1].endswith("...")
    assert labels[2:] == ["left out: Short."]
    for (label, x), (_, nxt) in itertools.pairwise(drawn):
        assert x + mixview._text_width(label) < nxt  # each ends before the next begins
