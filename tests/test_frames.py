"""Frames stage: probing, choosing timestamps, decoding (read on or seek), scenes, contact sheet.

Generated videos carry each frame's index as a bar code (tests/_media.py), so the tests check which
frame was really decoded, not only what the code claims.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from _media import make_audio_only, make_undecodable, make_video, read_index
from conftest import MEDIA, media_clips, requires_media

from vnarrate.errors import InputError
from vnarrate.media import frames
from vnarrate.media.frames import sample_frames, scaled_size, select_times
from vnarrate.media.probe import probe
from vnarrate.media.sheets import contact_sheet
from vnarrate.media.shots import detect_shots
from vnarrate.media.timecode import format_ts
from vnarrate.models import Frame, SamplingSpec, VideoInfo
from vnarrate.session import sampling_spec
from vnarrate.settings import Settings


def default_spec(**kw: object) -> SamplingSpec:
    """The sampling a run with default settings uses, with `kw` changed."""
    return sampling_spec(Settings()).model_copy(update=kw)


def decode(frame: Frame) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def indices(fs: list[Frame]) -> list[int]:
    return [f.index for f in fs]


def barcodes(fs: list[Frame]) -> list[int]:
    return [read_index(decode(f)) for f in fs]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frames_media")


@pytest.fixture(scope="module")
def shots3(media: Path) -> Path:
    """3 s at 10 fps (30 frames), 160x120, cuts at 1.0 and 2.0 s."""
    return make_video(media / "shots3.mp4", seconds=3.0, fps=10, cuts_s=(1.0, 2.0))


@pytest.fixture(scope="module")
def long60(media: Path) -> Path:
    """60 s at 10 fps (600 frames), a keyframe every 10 frames: room to seek."""
    return make_video(media / "long60.mp4", seconds=60.0, fps=10, gop=10)


def spec(**kw: object) -> SamplingSpec:
    return default_spec(**{"resize": 0, **kw})


def info(**kw: object) -> VideoInfo:
    base: dict[str, object] = {
        "path": "x.mp4",
        "width": 160,
        "height": 120,
        "fps": 10.0,
        "frame_count": 30,
        "duration_s": 3.0,
    }
    return VideoInfo(**{**base, **kw})  # type: ignore[arg-type]


# --- probe ----------------------------------------------------------------------------------------


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
    fs = sample_frames(cut, spec(mode="stride", stride=1, max_frames=100))
    assert indices(fs.frames) == list(range(len(fs.frames))) == barcodes(fs.frames)
    assert len(fs.frames) == got.frame_count


# --- select_times ---------------------------------------------------------------------------------


def test_stride_is_every_nth_frame() -> None:
    assert select_times(info(), default_spec(mode="stride", stride=7)) == [0.0, 0.7, 1.4, 2.1, 2.8]
    assert len(select_times(info(), default_spec(mode="stride", stride=1))) == 30


def test_count_takes_the_centres_of_equal_slices() -> None:
    assert select_times(info(), default_spec(mode="count", count=3)) == [0.5, 1.5, 2.5]
    assert select_times(info(), default_spec(mode="count", count=1)) == [1.5]
    # More than the video has: every frame's neighbourhood, clamped to the last frame (2.9 s).
    times = select_times(info(), default_spec(mode="count", count=40, max_frames=100))
    assert times[0] > 0 and times[-1] <= 2.9 and len(times) == 40


def test_interval_starts_at_zero_and_stays_inside() -> None:
    assert select_times(info(), default_spec(mode="interval", every_s=1.0)) == [0.0, 1.0, 2.0]
    assert select_times(info(), default_spec(mode="interval", every_s=0.5)) == [
        0.0,
        0.5,
        1.0,
        1.5,
        2.0,
        2.5,
    ]
    assert select_times(info(), default_spec(mode="interval", every_s=10)) == [0.0]


def test_default_is_one_per_second_capped_at_48_spread_evenly() -> None:
    assert select_times(info(), default_spec()) == [0.0, 1.0, 2.0]
    long = info(frame_count=6000, duration_s=600.0)
    times = select_times(long, default_spec())
    assert len(times) == 48
    gaps = np.diff(times)
    assert gaps.min() >= 12 and gaps.max() <= 13  # 600 candidates, every 12.5th kept
    assert times[0] == 6.0 and times[-1] == 593.0  # centred: none at the very ends


def test_cap_spreads_evenly() -> None:
    times = select_times(info(), default_spec(mode="interval", every_s=0.1, max_frames=4))
    assert times == [0.3, 1.1, 1.8, 2.6]
    assert select_times(info(), default_spec(mode="stride", stride=1, max_frames=3)) == [
        0.5,
        1.5,
        2.5,
    ]


def test_one_frame_video_has_one_target() -> None:
    one = info(frame_count=1, duration_s=0.1)
    for mode in ("stride", "count", "interval", "scenes"):
        assert select_times(one, default_spec(mode=mode)) == [0.0]  # type: ignore[arg-type]


def test_scene_targets_spread_the_budget_over_shots() -> None:
    s = default_spec(mode="scenes", max_frames=3)
    assert select_times(info(), s, shot_starts=[0.0, 1.0, 2.0]) == [0.5, 1.5, 2.5]
    # A long shot gets more of the budget; every shot gets one.
    six = default_spec(mode="scenes", max_frames=6)
    assert select_times(info(duration_s=10.0, frame_count=100), six, shot_starts=[0, 8, 9]) == [
        1.0,
        3.0,
        5.0,
        7.0,
        8.5,
        9.5,
    ]
    # Never more frames than a shot has.
    many = default_spec(mode="scenes", max_frames=48)
    assert len(select_times(info(), many, shot_starts=[0.0, 1.0, 2.0])) == 30


def test_scaled_size() -> None:
    assert scaled_size(1280, 720, 768) == (768, 432)
    assert scaled_size(270, 480, 768) == (270, 480)  # never enlarged
    assert scaled_size(1080, 1920, 768) == (432, 768)
    assert scaled_size(1920, 1080, 0) == (1920, 1080)


# --- sample_frames on generated video -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"mode": "stride", "stride": 7}, [0, 7, 14, 21, 28]),
        ({"mode": "count", "count": 3}, [5, 15, 25]),
        ({"mode": "count", "count": 4}, [4, 11, 19, 26]),
        ({"mode": "interval", "every_s": 0.5}, [0, 5, 10, 15, 20, 25]),
        ({"mode": "interval", "every_s": 0.1, "max_frames": 4}, [3, 11, 18, 26]),
        ({"mode": "interval", "every_s": 0.01, "max_frames": 1000}, list(range(30))),
    ],
)
def test_modes_decode_exactly_the_chosen_frames(
    shots3: Path, kw: dict[str, object], expected: list[int]
) -> None:
    fs = sample_frames(shots3, spec(**kw))
    assert indices(fs.frames) == expected
    assert barcodes(fs.frames) == expected
    assert [f.time_s for f in fs.frames] == pytest.approx([i / 10 for i in expected])
    assert fs.mode == kw["mode"]


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "count", "count": 5},
        {"mode": "interval", "every_s": 13},
        {"mode": "stride", "stride": 97},
    ],
)
def test_seeking_and_reading_on_give_the_same_frames(
    long60: Path, kw: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeks: list[float] = []
    real_seek = frames._Reader.seek

    def counting_seek(self: frames._Reader, t: float) -> None:
        seeks.append(t)
        real_seek(self, t)

    monkeypatch.setattr(frames._Reader, "seek", counting_seek)
    chosen = sample_frames(long60, spec(**kw))  # sparse targets, keyframe every 10: seeks
    assert seeks, "sparse targets over short GOPs should seek"
    monkeypatch.setattr(frames, "SEEK_OVERHEAD_FRAMES", 10**9)
    seeks.clear()
    read_on = sample_frames(long60, spec(**kw))
    assert not seeks
    assert indices(chosen.frames) == indices(read_on.frames) == barcodes(chosen.frames)
    assert [f.jpeg for f in chosen.frames] == [f.jpeg for f in read_on.frames]


def test_a_seek_that_lands_wrong_falls_back_to_reading_on(
    long60: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []
    real_seek = frames._Reader.seek

    def lying_seek(self: frames._Reader, t: float) -> None:
        calls.append(t)
        real_seek(self, t + 5.0)  # as a file with broken timestamps or index would

    monkeypatch.setattr(frames._Reader, "seek", lying_seek)
    fs = sample_frames(long60, spec(mode="count", count=5))
    assert len(calls) == 1  # tried once, then read on
    assert indices(fs.frames) == [60, 180, 300, 420, 540] == barcodes(fs.frames)


def test_dense_targets_read_on_without_seeking(
    long60: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_seek(self: frames._Reader, t: float) -> None:
        raise AssertionError("dense targets must not seek")

    monkeypatch.setattr(frames._Reader, "seek", no_seek)
    fs = sample_frames(long60, spec(mode="stride", stride=3, max_frames=1000))
    assert indices(fs.frames) == list(range(0, 600, 3)) == barcodes(fs.frames)


def test_resize_keeps_aspect_and_zero_keeps_full_size(shots3: Path, media: Path) -> None:
    assert {(f.width, f.height) for f in sample_frames(shots3, spec(resize=64)).frames} == {
        (64, 48)
    }
    full = sample_frames(shots3, spec(resize=0)).frames[0]
    assert (full.width, full.height) == decode(full).shape[1::-1] == (160, 120)
    assert (sample_frames(shots3, spec(resize=1000)).frames[0].width) == 160  # not enlarged
    tall = make_video(media / "tall.mp4", seconds=1.0, size=(120, 200))
    f = sample_frames(tall, spec(resize=100)).frames[0]
    assert (f.width, f.height) == (60, 100) == decode(f).shape[1::-1]


def test_colours_survive_decode_and_encode(media: Path) -> None:
    red = make_video(media / "red.mp4", seconds=0.5, moving=False, barcode=False)
    img = decode(sample_frames(red, spec()).frames[0])
    b, g, r = (float(c) for c in img[60:110, 10:150].reshape(-1, 3).mean(axis=0))
    assert r > 180 and g < 80 and b < 80  # made as RGB (220, 40, 40); BGR in OpenCV


def test_jpeg_quality_changes_size(shots3: Path) -> None:
    low = sample_frames(shots3, spec(jpeg_quality=20)).frames[0]
    high = sample_frames(shots3, spec(jpeg_quality=95)).frames[0]
    assert len(low.jpeg) < len(high.jpeg)


def test_one_frame_video(media: Path) -> None:
    one = make_video(media / "one.mp4", seconds=0.1, fps=10)
    assert probe(one).frame_count == 1
    for mode in ("stride", "count", "interval", "scenes"):
        fs = sample_frames(one, default_spec(mode=mode))  # type: ignore[arg-type]
        assert [(f.index, f.time_s) for f in fs.frames] == [(0, 0.0)]


def test_variable_frame_rate_times_are_real(media: Path) -> None:
    times = [0.0, 0.05, 0.2, 0.25, 0.4, 0.45, 0.6, 0.65, 0.8, 0.85, 1.3, 1.35]
    vfr = make_video(media / "vfr.mp4", fps=10, frame_times=times)
    got = probe(vfr)
    assert got.frame_count == 12
    # Stride counts frames, as the notebook did: every frame, with its own time.
    fs = sample_frames(vfr, spec(mode="stride", stride=1))
    assert [f.time_s for f in fs.frames] == pytest.approx(times)
    assert indices(fs.frames) == list(range(12)) == barcodes(fs.frames)
    fs = sample_frames(vfr, spec(mode="stride", stride=5))
    assert [f.time_s for f in fs.frames] == pytest.approx([0.0, 0.45, 1.3])
    # Other modes target times: a target takes the first frame from half a mean frame period
    # (1 / 8.6 fps here) before it, so 1.0 s, in the gap, takes the frame at 1.3 s.
    fs = sample_frames(vfr, spec(mode="interval", every_s=0.5))
    assert [f.time_s for f in fs.frames] == pytest.approx([0.0, 0.45, 1.3])


@pytest.mark.parametrize(("rotate", "band_side"), [(90, "right"), (180, "bottom"), (270, "left")])
def test_rotation_metadata_is_applied(media: Path, rotate: int, band_side: str) -> None:
    path = make_video(media / f"rot{rotate}.mp4", seconds=0.5, size=(160, 120), rotate=rotate)
    got = probe(path)
    upright = (120, 160) if rotate in (90, 270) else (160, 120)
    assert (got.width, got.height) == upright
    assert got.rotation == (-rotate) % 360  # counter-clockwise, as the display matrix holds it
    f = sample_frames(path, spec()).frames[0]
    img = decode(f)
    assert (f.width, f.height) == img.shape[1::-1] == upright
    # The bar-code band (black with a few white bits) was drawn at the top of the stored picture.
    edges = {
        "top": img[:4].mean(),
        "bottom": img[-4:].mean(),
        "left": img[:, :4].mean(),
        "right": img[:, -4:].mean(),
    }
    assert min(edges, key=lambda k: edges[k]) == band_side


def test_progress_counts_chosen_frames(shots3: Path) -> None:
    calls: list[tuple[int, int]] = []
    sample_frames(shots3, spec(mode="count", count=5), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (5, 5)
    assert all(t == 5 and 0 < d <= 5 for d, t in calls)


# --- scenes ---------------------------------------------------------------------------------------


def test_detect_shots_finds_the_cuts_exactly(shots3: Path) -> None:
    shots = detect_shots(shots3)
    assert shots.starts_s == [0.0, 1.0, 2.0]
    assert shots.frame_count == 30
    assert all(s > 0.5 for s in shots.scores)


def test_scenes_one_frame_per_shot_when_the_budget_is_tight(shots3: Path) -> None:
    fs = sample_frames(shots3, spec(mode="scenes", max_frames=3))
    assert fs.shot_starts_s == [0.0, 1.0, 2.0]
    assert indices(fs.frames) == [5, 15, 25] == barcodes(fs.frames)
    assert [f.shot for f in fs.frames] == [0, 1, 2]


def test_scenes_spread_a_larger_budget(shots3: Path) -> None:
    fs = sample_frames(shots3, spec(mode="scenes", max_frames=6))
    assert indices(fs.frames) == [2, 7, 12, 17, 22, 27]
    assert [f.shot for f in fs.frames] == [0, 0, 1, 1, 2, 2]


def test_more_shots_than_budget_keeps_the_strongest_cuts(media: Path) -> None:
    cuts = (1.0, 2.0, 3.0, 4.0, 5.0)
    path = make_video(media / "six.mp4", seconds=6.0, fps=10, cuts_s=cuts)
    shots = detect_shots(path)
    assert shots.starts_s == [0.0, *cuts]
    strongest = sorted(
        sorted(zip(shots.scores, cuts, strict=True), reverse=True)[:2], key=lambda x: x[1]
    )
    fs = sample_frames(path, spec(mode="scenes", max_frames=3))
    assert fs.shot_starts_s == [0.0, *(c for _, c in strongest)]
    assert len(fs.frames) == 3 and [f.shot for f in fs.frames] == [0, 1, 2]


def test_scenes_drop_near_duplicates(media: Path) -> None:
    still = make_video(media / "still.mp4", seconds=3.0, moving=False, barcode=False)
    fs = sample_frames(still, spec(mode="scenes", max_frames=10))
    assert len(fs.frames) == 1 and fs.shot_starts_s == [0.0]


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


# --- contact sheet --------------------------------------------------------------------------------


def test_format_ts_rounds_once() -> None:
    assert format_ts(0) == "0:00.0"
    assert format_ts(1.5) == "0:01.5"
    assert format_ts(61.25) == "1:01.3"
    assert format_ts(59.96) == "1:00.0"  # never 0:60.0
    assert format_ts(3723.5) == "1:02:03.5"
    assert format_ts(-1) == "0:00.0"
    assert format_ts(3723.4567, "srt") == "01:02:03,457"
    assert format_ts(0.0005, "vtt") == "00:00:00.001"


def test_contact_sheet_grid_and_labels(shots3: Path) -> None:
    fs = sample_frames(shots3, spec(mode="count", count=5)).frames
    sheet = cv2.imdecode(np.frombuffer(contact_sheet(fs, columns=2, tile_width=100), np.uint8), 1)
    gap = 2
    tile_h = 75  # 160x120 at 100 px wide
    assert sheet.shape[1] == 2 * 100 + 3 * gap
    assert sheet.shape[0] == 3 * tile_h + 4 * gap
    # The first tile's label (white text on a black box) sits in its top-left corner.
    corner = sheet[gap : gap + 14, gap : gap + 60]
    assert corner.max() > 200
    auto = cv2.imdecode(np.frombuffer(contact_sheet(fs), np.uint8), 1)
    assert auto.shape[1] > auto.shape[0] / 2  # 5 frames: not a single column


def test_contact_sheet_keeps_each_tiles_aspect(shots3: Path, media: Path) -> None:
    wide = sample_frames(shots3, spec(mode="count", count=1)).frames
    tall = sample_frames(make_video(media / "tall2.mp4", size=(120, 200)), spec()).frames[:1]
    sheet = cv2.imdecode(
        np.frombuffer(contact_sheet([*wide, *tall], columns=2, tile_width=60), np.uint8), 1
    )
    assert sheet.shape[0] == 100 + 2 * 2  # the tall tile sets the row height (200 * 60/120)
    with pytest.raises(ValueError):
        contact_sheet([])


# --- the real clips in ../shared/media ------------------------------------------------------------


@requires_media
@pytest.mark.media
@pytest.mark.parametrize("clip", media_clips(), ids=lambda p: p.name)
def test_real_clip_default_sampling(clip: Path) -> None:
    got = probe(clip)
    fs = sample_frames(clip, default_spec())
    assert fs.frames
    times = [f.time_s for f in fs.frames]
    assert times == sorted(times) and len(set(indices(fs.frames))) == len(fs.frames)
    assert times[0] >= 0 and times[-1] < got.duration_s
    assert len(fs.frames) == min(48, int(got.duration_s - 1 / got.fps) + 1)
    for f in fs.frames:
        assert max(f.width, f.height) <= 768
        assert f.width / f.height == pytest.approx(got.width / got.height, rel=0.02)
        assert decode(f).shape[1::-1] == (f.width, f.height)


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


@requires_media
@pytest.mark.media
def test_asl_bird_every_frame_and_the_last() -> None:
    # OpenCV's CAP_PROP_FRAME_COUNT says 64; 63 decode.
    fs = sample_frames(MEDIA / "asl_bird.mkv", spec(mode="stride", stride=1, max_frames=100))
    assert indices(fs.frames) == list(range(63))
    last = sample_frames(MEDIA / "asl_bird.mkv", spec(mode="count", count=63, max_frames=100))
    assert last.frames[-1].index == 62 and decode(last.frames[-1]).mean() > 10


@requires_media
@pytest.mark.media
def test_fire2_upright_and_resized() -> None:
    import av

    fs = sample_frames(MEDIA / "fire2.mp4", default_spec(mode="stride", stride=1))
    assert len(fs.frames) == 25 and fs.video.rotation == 180
    assert {(f.width, f.height) for f in fs.frames} == {(768, 432)}
    # VFR: gaps of 80-100 ms, as the container says, not 1/fps.
    gaps = np.diff([f.time_s for f in fs.frames])
    assert gaps.min() >= 0.079 and gaps.max() <= 0.101 and len(set(np.round(gaps, 2))) > 1
    # PyAV does not rotate: turned 180° it must match ours, and unturned it must not.
    with av.open(str(MEDIA / "fire2.mp4")) as c:
        raw = next(c.decode(video=0)).to_ndarray(format="bgr24")
    raw = cv2.resize(raw, (768, 432), interpolation=cv2.INTER_AREA).astype(np.int16)
    ours = decode(fs.frames[0]).astype(np.int16)
    assert np.abs(ours - raw[::-1, ::-1]).mean() < 6 < np.abs(ours - raw).mean()


@requires_media
@pytest.mark.media
def test_portrait_and_multi_stream_clips() -> None:
    tall = sample_frames(MEDIA / "bbb_vertical.mp4", default_spec(mode="count", count=4))
    assert {(f.width, f.height) for f in tall.frames} == {(270, 480)}
    nasa = sample_frames(MEDIA / "nasa_13013.mp4", default_spec(mode="count", count=4))
    # The first video stream (320x180), timed by its own length (13 s), not the container's.
    assert {(f.width, f.height) for f in nasa.frames} == {(320, 180)}
    assert [f.index for f in nasa.frames] == [41, 122, 203, 284]


@requires_media
@pytest.mark.media
@pytest.mark.parametrize(
    ("name", "cuts"), [("big_buck_bunny_0_30.webm", [283, 376, 551]), ("nasa_13013.mp4", [202])]
)
def test_real_cuts(name: str, cuts: list[int]) -> None:
    fs = sample_frames(MEDIA / name, default_spec(mode="scenes", max_frames=12))
    found = [round(t * fs.video.fps) for t in fs.shot_starts_s]
    assert found[0] == 0 and len(found) == len(cuts) + 1
    assert all(abs(f - c) <= 2 for f, c in zip(found[1:], cuts, strict=True))
    for shot in range(len(found)):
        assert any(f.shot == shot for f in fs.frames)
    assert len(fs.frames) <= 12


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
