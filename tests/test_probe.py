"""Probing: what a video is (size, rate, count, length, rotation), the container's lies corrected,
and the warnings for files that are cut off, damaged or whose header lies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _media import (
    damage_middle,
    make_audio_only,
    make_undecodable,
    make_video,
    read_index,
    shorten_mp4_header,
)
from conftest import MEDIA, requires_media

from vnarrate.errors import InputError
from vnarrate.media.frames import sample_frames
from vnarrate.media.probe import probe, probe_file
from vnarrate.models import Frame, SamplingSpec
from vnarrate.session import sampling_spec
from vnarrate.settings import Settings


def spec(**kw: object) -> SamplingSpec:
    """The sampling a run with default settings uses, with `kw` changed."""
    return sampling_spec(Settings()).model_copy(update=kw)


def default_spec(**kw: object) -> SamplingSpec:
    return spec(**kw)


def barcodes(fs: list[Frame]) -> list[int]:
    import cv2
    import numpy as np

    return [read_index(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), 1)) for f in fs]


def indices(fs: list[Frame]) -> list[int]:
    return [f.index for f in fs]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe_media")


@pytest.fixture(scope="module")
def shots3(media: Path) -> Path:
    return make_video(media / "shots3.mp4", seconds=3.0, fps=10, cuts_s=(1.0, 2.0))


# --- probe ------------------------------------------------------------------------------------


def test_probe_facts(shots3: Path, media: Path) -> None:
    got = probe(shots3)
    assert (got.width, got.height, got.fps, got.frame_count) == (160, 120, 10.0, 30)
    assert got.duration_s == pytest.approx(3.0)
    assert (got.rotation, got.has_audio, got.codec) == (0, False, "h264")
    with_audio = make_video(media / "audio.mp4", seconds=1.0, audio=True)
    assert probe(with_audio).has_audio is True


def _truncated(tmp: Path) -> Path:
    whole = make_video(tmp / "whole.mp4", seconds=2.0)
    data = whole.read_bytes()
    (tmp / "truncated.mp4").write_bytes(data[: len(data) // 2])
    return tmp / "truncated.mp4"


BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (lambda d: d / "nope.mp4", "no such file"),
    "directory": (lambda d: d, "is a directory"),
    "empty": (lambda d: (d / "empty.mp4", (d / "empty.mp4").write_bytes(b""))[0], "empty file"),
    "text": (
        lambda d: (d / "notes.mp4", (d / "notes.mp4").write_text("not a video\n"))[0],
        "not a readable video",
    ),
    "truncated": (_truncated, "not a readable video"),
    "audio-only": (lambda d: make_audio_only(d / "tone.m4a"), "no video stream (an audio-only"),
    "undecodable": (lambda d: make_undecodable(d / "noise.mp4"), "no decodable video frames"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_clear_line(case: str, tmp_path: Path) -> None:
    make, words = BAD_INPUTS[case]
    path = make(tmp_path)
    for call in (lambda: probe(path), lambda: sample_frames(path, default_spec())):
        with pytest.raises(InputError) as err:
            call()
        message = str(err.value)
        assert words in message and str(path) in message and "\n" not in message
        assert err.value.exit_code == 4


def test_truncated_faststart_file_gives_the_frames_it_has(tmp_path: Path) -> None:
    whole = make_video(tmp_path / "fast.mp4", seconds=4.0, fps=10, gop=10, faststart=True)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    got = probe(cut)
    assert 0 < got.frame_count < 40  # the index promises 40; the file holds fewer
    fs = sample_frames(cut, spec(mode="stride", stride=1, max_frames=100, resize=0))
    assert indices(fs.frames) == list(range(len(fs.frames))) == barcodes(fs.frames)
    assert len(fs.frames) == got.frame_count


# --- damaged files and lying headers (issue 12, item 4) ------------------------------------------


@pytest.fixture(scope="module")
def noisy(media: Path) -> Path:
    """10 s at 10 fps of fresh noise (about 7 KB a frame), a keyframe every 2 s."""
    return make_video(media / "noisy.mp4", seconds=10.0, fps=10, gop=20, noise=True)


def test_damage_in_the_middle_loses_only_what_is_damaged(noisy: Path, media: Path) -> None:
    bad = damage_middle(noisy, media / "damaged.mp4")
    got = probe(bad)
    assert got.frame_count == 100 and got.duration_s == pytest.approx(10.0)
    # Every frame: the damaged ones are skipped, the rest come with their own numbers and times.
    every = sample_frames(bad, spec(mode="stride", stride=1, max_frames=1000, resize=0))
    assert 80 <= len(every.frames) < 100
    assert indices(every.frames) == barcodes(every.frames)
    assert every.frames[-1].index == 99
    assert [w for w in every.warnings if "damaged" in w and str(bad) in w]
    # A few frames: spread over the whole length, not only up to the damage.
    few = sample_frames(bad, spec(mode="count", count=10, resize=0))
    assert len(few.frames) == 10
    assert few.frames[-1].time_s >= 9.0
    assert indices(few.frames) == barcodes(few.frames)


def test_a_header_that_claims_less_is_not_believed(media: Path) -> None:
    whole = make_video(media / "ten.mp4", seconds=10.0, fps=10, gop=20)
    liar = shorten_mp4_header(whole, media / "liar.mp4", seconds=1.0)
    p = probe_file(liar)
    assert p.info.duration_s == pytest.approx(10.0) and p.info.frame_count == 100
    assert p.info.fps == pytest.approx(10.0)
    assert any("header says" in w and "0:01.0" in w for w in p.warnings)
    for kw in ({}, {"mode": "count", "count": 5}, {"mode": "scenes"}):
        fs = sample_frames(liar, spec(**kw))
        assert fs.frames[-1].time_s >= 8.0, kw
        assert any("header says" in w for w in fs.warnings)
    assert len(sample_frames(liar, spec()).frames) == 10  # one a second, not one in all


def test_an_honest_file_has_no_warnings(shots3: Path) -> None:
    assert probe_file(shots3).warnings == []
    assert sample_frames(shots3, spec()).warnings == []


@requires_media
@pytest.mark.media
def test_damaged_real_clip_keeps_its_length(tmp_path: Path) -> None:
    bad = damage_middle(MEDIA / "car-detection.mp4", tmp_path / "car.mp4")
    fs = sample_frames(bad, spec(mode="count", count=10))
    assert len(fs.frames) == 10 and fs.frames[-1].time_s > 27
    assert fs.video.duration_s == pytest.approx(30.16, abs=0.05)
    every = sample_frames(bad, spec(mode="stride", stride=1, max_frames=1000))
    assert 360 <= len(every.frames) < 377 and every.frames[-1].time_s > 30
    assert any("damaged" in w for w in every.warnings)


# --- the real clips -------------------------------------------------------------------------------


EXPECTED = {
    # name: (width, height, fps, frames, duration, rotation, audio)
    "asl_bird.mkv": (640, 480, 30.0, 63, 2.1, 0, False),
    "bbb_vertical.mp4": (270, 480, 60.0, 898, 14.967, 0, True),
    "big_buck_bunny_0_30.webm": (1280, 720, 24.0, 720, 30.0, 0, True),
    "car-detection.mp4": (768, 432, 12.5, 377, 30.16, 0, True),
    "fire2.mp4": (1280, 720, 10.505, 25, 2.38, 180, True),
    "nasa_13013.mp4": (320, 180, 25.0, 325, 13.0, 0, True),
    "one-by-one-person-detection.mp4": (768, 432, 10.0, 1394, 139.4, 0, False),
}


@requires_media
@pytest.mark.media
@pytest.mark.parametrize("name", EXPECTED)
def test_real_clip_probe(name: str) -> None:
    got = probe(MEDIA / name)
    w, h, fps, n, dur, rot, audio = EXPECTED[name]
    assert (got.width, got.height, got.frame_count, got.rotation, got.has_audio) == (
        w,
        h,
        n,
        rot,
        audio,
    )
    assert got.fps == pytest.approx(fps, abs=0.001)
    assert got.duration_s == pytest.approx(dur, abs=0.01)
