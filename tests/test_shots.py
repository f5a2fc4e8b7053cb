"""Shot detection: cuts found exactly, pans, fades and dissolves not taken for cuts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from _media import make_video
from conftest import MEDIA, requires_media

from vnarrate.media.shots import detect_shots


@pytest.fixture(scope="module")
def shots3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 10 fps (30 frames), 160x120, cuts at 1.0 and 2.0 s."""
    path = tmp_path_factory.mktemp("shots") / "shots3.mp4"
    return make_video(path, seconds=3.0, fps=10, cuts_s=(1.0, 2.0))


def test_detect_shots_finds_the_cuts_exactly(shots3: Path) -> None:
    shots = detect_shots(shots3)
    assert shots.starts_s == [0.0, 1.0, 2.0]
    assert shots.frame_count == 30
    assert all(s > 0.5 for s in shots.scores)


def test_a_fade_is_not_a_cut(tmp_path: Path) -> None:
    import av

    path = tmp_path / "fade.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        for i in range(40):
            level = min(255, max(0, (i - 10) * 255 // 15))  # black, then up over 1.5 s
            img = np.full((120, 160, 3), level, np.uint8)
            img[40:80, 60:100] = (level, 0, 0)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    assert detect_shots(path).starts_s == [0.0]


def _textures(path: Path, *, speed: int, cut_at: int | None = None) -> Path:
    """A pan (`speed` px per frame) over a random texture; with `cut_at`, a cut to another texture
    of the same colours (a histogram cannot see that cut; a pan changes every pixel)."""
    import av

    rng = np.random.default_rng(7)
    big = [cv2.resize(rng.integers(0, 255, (30, 40, 3), np.uint8), (480, 360)) for _ in range(2)]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        for i in range(40):
            src = big[1 if cut_at is not None and i >= cut_at else 0]
            img = np.ascontiguousarray(
                src[i * speed : i * speed + 120, i * speed : i * speed + 160]
            )
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def test_a_pan_is_not_a_cut_and_a_look_alike_cut_is(tmp_path: Path) -> None:
    assert detect_shots(_textures(tmp_path / "pan.mp4", speed=5)).starts_s == [0.0]
    cut = _textures(tmp_path / "cut.mp4", speed=1, cut_at=20)
    assert detect_shots(cut).starts_s == [0.0, 2.0]


@requires_media
@pytest.mark.media
def test_real_clips_without_cuts_are_one_shot() -> None:
    # A hand-held pan (fire2), a dissolve (bbb_vertical), people walking into a still shot.
    names = (
        "car-detection.mp4",
        "asl_bird.mkv",
        "fire2.mp4",
        "bbb_vertical.mp4",
        "one-by-one-person-detection.mp4",
    )
    for name in names:
        assert detect_shots(MEDIA / name).starts_s == [0.0], name
