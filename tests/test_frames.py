"""Frames stage: decoding (read on or seek, keyframes standing in), frame times checked against the
decoded video, scenes in one pass, frames.json; on generated and on the real clips.

Generated videos carry each frame's index as a bar code (tests/_media.py), so the tests check which
frame was really decoded, not only what the code claims.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from _media import make_video, read_index
from conftest import MEDIA, media_clips, requires_media, run_cli

from vnarrate.media import decode as decoding
from vnarrate.media import scenes, targets
from vnarrate.media.frames import predict_frames, sample_frames, scaled_size
from vnarrate.media.probe import probe
from vnarrate.media.shots import detect_shots
from vnarrate.models import Frame, SamplingSpec
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
    """Full size; exact times unless a test asks for snapping (most tests check exact frames)."""
    return default_spec(**{"resize": 0, "exact_times": True, **kw})


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


# --- read on or seek ----------------------------------------------------------------------------


def count_seeks(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The goals the decoder seeks for (the first seek, from wherever probing left the file,
    is counted too)."""
    seeks: list[float] = []
    real = decoding.Decoder._seek

    def counting(self: decoding.Decoder, goal: float) -> None:
        seeks.append(goal)
        real(self, goal)

    monkeypatch.setattr(decoding.Decoder, "_seek", counting)
    return seeks


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
    seeks = count_seeks(monkeypatch)
    chosen = sample_frames(long60, spec(**kw))  # sparse targets, keyframe every 10: seeks
    assert len(seeks) > 1, "sparse targets over short keyframe intervals should seek"
    monkeypatch.setattr(targets, "SEEK_OVERHEAD_FRAMES", 10**9)
    seeks.clear()
    read_on = sample_frames(long60, spec(**kw))
    assert len(seeks) == 1  # to the start
    assert indices(chosen.frames) == indices(read_on.frames) == barcodes(chosen.frames)
    assert [f.jpeg for f in chosen.frames] == [f.jpeg for f in read_on.frames]


def test_a_seek_that_lands_wrong_falls_back_to_reading_on(
    long60: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landed: list[int] = []
    real = decoding.Decoder._restart

    def lying(self: decoding.Decoder, ts: int) -> None:
        # As a file with a broken index or broken times would: 5 s later than asked.
        late = ts + round(5 / self.probe.time_base) if ts > self.probe.start_pts else ts
        landed.append(late)
        real(self, late)

    monkeypatch.setattr(decoding.Decoder, "_restart", lying)
    fs = sample_frames(long60, spec(mode="count", count=5))
    assert indices(fs.frames) == [60, 180, 300, 420, 540] == barcodes(fs.frames)
    # One seek landed late, then it read on from the start and never sought again.
    assert len(landed) == 2 and landed[0] > 0 and landed[1] == 0


def test_dense_targets_read_on_without_seeking(
    long60: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeks = count_seeks(monkeypatch)
    fs = sample_frames(long60, spec(mode="stride", stride=3, max_frames=1000))
    assert indices(fs.frames) == list(range(0, 600, 3)) == barcodes(fs.frames)
    assert seeks == [-0.05]  # once, to the start


def test_reading_on_skips_the_frames_nobody_refers_to(
    bframes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[int] = []
    real = decoding.Decoder._took

    def counting(self: decoding.Decoder, out: list[object]) -> None:
        decoded.append(len(out))
        real(self, out)  # type: ignore[arg-type]

    monkeypatch.setattr(decoding.Decoder, "_took", counting)
    fs = sample_frames(bframes, spec(mode="stride", stride=5, max_frames=1000))
    assert indices(fs.frames) == list(range(0, 300, 5)) == barcodes(fs.frames)
    # Every frame was read, but the B-frames that are neither wanted nor referred to were not
    # decoded: about half of them here.
    assert sum(decoded) < 0.75 * 300


@pytest.fixture(scope="module")
def gop23(media: Path) -> Path:
    """60 s at 10 fps with a keyframe every 2.3 s: keyframes fall between targets."""
    return make_video(media / "gop23.mp4", seconds=60.0, fps=10, gop=23)


def test_sparse_targets_take_keyframes_and_say_so(gop23: Path) -> None:
    # 3 s apart: tolerance 0.75 s.
    fs = sample_frames(gop23, spec(mode="count", count=20, exact_times=False))
    keyframe_times = {round(i * 2.3, 6) for i in range(27)}
    assert len(fs.frames) == 20
    assert indices(fs.frames) == barcodes(fs.frames)
    assert [f.time_s for f in fs.frames] == pytest.approx([i / 10 for i in indices(fs.frames)])
    snapped = [f for f in fs.frames if f.snapped]
    assert 0 < len(snapped) < 20
    for f in fs.frames:
        assert f.target_s is not None
        if f.snapped:
            assert round(f.time_s, 6) in keyframe_times
            assert abs(f.time_s - f.target_s) <= 0.75 + 1e-6
        else:
            assert f.time_s == pytest.approx(f.target_s, abs=0.051)
    exact = sample_frames(gop23, spec(mode="count", count=20, exact_times=True))
    assert not any(f.snapped for f in exact.frames)
    assert [f.time_s for f in exact.frames] == pytest.approx([1.5 + 3 * i for i in range(20)])
    assert indices(exact.frames) == barcodes(exact.frames)


# --- every frame's time is the time of its picture ----------------------------------------------------


@pytest.fixture(scope="module")
def bframes(media: Path) -> Path:
    """30 s at 10 fps with B-frames (stored out of showing order), a keyframe every 2.4 s, a cut
    every 5 s."""
    return make_video(
        media / "bframes.mp4", seconds=30.0, fps=10, gop=24, bframes=3, cuts_s=(5, 10, 15, 20, 25)
    )


def decoded_at(path: Path) -> dict[float, np.ndarray]:
    """Every picture of the video by its time (s, 3 decimals), decoded by PyAV on its own."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        start = s.start_time or 0
        return {
            round(float((f.pts - start) * s.time_base), 3): f.to_ndarray(format="bgr24")
            for f in c.decode(s)
        }


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "count", "count": 7, "exact_times": False},
        {"mode": "count", "count": 7, "exact_times": True},
        {"mode": "stride", "stride": 13, "exact_times": False},
        {"mode": "interval", "every_s": 4.1, "exact_times": False},
        {"mode": "scenes", "max_frames": 12},
    ],
    ids=lambda kw: "-".join(str(v) for v in kw.values()),
)
def test_each_frame_is_the_picture_at_its_time(bframes: Path, kw: dict[str, object]) -> None:
    fs = sample_frames(bframes, spec(**kw))
    pictures = decoded_at(bframes)
    assert fs.frames
    for f in fs.frames:
        reference = pictures[round(f.time_s, 3)]
        assert np.abs(decode(f).astype(int) - reference.astype(int)).mean() < 3
        assert read_index(decode(f)) == f.index == round(f.time_s * 10)


@pytest.mark.parametrize(
    ("codec", "suffix"), [("libx265", ".mp4"), ("libvpx-vp9", ".webm"), ("libsvtav1", ".mkv")]
)
def test_other_codecs_give_the_picture_at_its_time(media: Path, codec: str, suffix: str) -> None:
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV has no {codec} encoder")
    path = make_video(media / f"{codec}{suffix}", seconds=6.0, fps=10, gop=10, codec=codec)
    for exact in (False, True):
        fs = sample_frames(path, spec(mode="count", count=4, exact_times=exact))
        assert len(fs.frames) == 4 and fs.warnings == []
        assert indices(fs.frames) == barcodes(fs.frames)
        assert [f.time_s for f in fs.frames] == pytest.approx([i / 10 for i in indices(fs.frames)])
        assert any(f.snapped for f in fs.frames) != exact


# --- scenes in one pass ------------------------------------------------------------------------------


def test_scenes_take_their_frames_in_the_one_detection_pass(
    bframes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[int] = []
    real = scenes.every_frame

    def counting(*a: object, **kw: object) -> Iterator[tuple[float, object]]:
        passes.append(0)
        for item in real(*a, **kw):  # type: ignore[arg-type]
            passes[-1] += 1
            yield item

    def no_second_pass(*_: object) -> None:
        raise AssertionError("scene sampling must not decode again")

    monkeypatch.setattr(scenes, "every_frame", counting)
    monkeypatch.setattr(decoding.Decoder, "__init__", no_second_pass)
    fs = sample_frames(bframes, spec(mode="scenes", max_frames=12))
    assert passes == [300]  # one pass, every frame once
    assert fs.shot_starts_s == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert len(fs.frames) == 12 and [f.shot for f in fs.frames] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
    ]
    assert indices(fs.frames) == barcodes(fs.frames)


# --- frames.json ------------------------------------------------------------------------------------


def test_frames_json_says_which_frames_were_snapped(gop23: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(["frames", gop23, "-o", out, "--frames", "20"])
    assert r.code == 0, r
    doc = json.loads((out / "frames.json").read_text())
    records = doc["frames"]
    assert doc["warnings"] == [] and doc["sampling"]["exact_times"] is False
    assert {"time_s", "target_s", "snapped"} <= set(records[0])
    assert 0 < sum(rec["snapped"] for rec in records) < 20
    r = run_cli(["frames", gop23, "-o", out, "--frames", "20", "--exact-times", "--force"])
    assert r.code == 0, r
    records = json.loads((out / "frames.json").read_text())["frames"]
    assert not any(rec["snapped"] for rec in records)
    assert [rec["time_s"] for rec in records] == [rec["target_s"] for rec in records]


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
    assert [f.index for f in nasa.frames] == [41, 122, 202, 284]
    assert [f.snapped for f in nasa.frames] == [False, False, True, False]  # keyframe 202


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


@pytest.mark.parametrize("mode", ["count", "scenes"])
def test_keep_sees_each_frame_in_time_order_and_decides_what_is_held(
    shots3: Path, mode: str
) -> None:
    seen: list[Frame] = []

    def keep(frame: Frame) -> Frame:
        seen.append(frame)
        return frame.model_copy(update={"jpeg": b""})

    fs = sample_frames(shots3, spec(mode=mode, count=5, max_frames=5), keep=keep)
    assert (
        [f.time_s for f in seen] == [f.time_s for f in fs.frames] == sorted(f.time_s for f in seen)
    )
    assert all(len(f.jpeg) > 1000 for f in seen) and all(f.jpeg == b"" for f in fs.frames)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("long60", {"mode": "count", "count": 12, "max_frames": 12, "exact_times": False}),
        ("long60", {"mode": "stride", "stride": 45, "max_frames": 48}),
        ("rot90", {"mode": "interval", "every_s": 0.3, "resize": 100}),
    ],
)
def test_predicted_frames_are_the_frames_sampling_gives(
    media: Path, long60: Path, name: str, kw: dict[str, object]
) -> None:
    path = long60 if name == "long60" else make_video(media / "p90.mp4", seconds=2.0, rotate=90)
    predicted = predict_frames(path, spec(**kw))
    taken = sample_frames(path, spec(**kw))
    assert all(f.jpeg == b"" for f in predicted.frames) and len(taken.frames) > 3
    assert predicted.video == taken.video
    guess = {f.target_s: f for f in predicted.frames}
    assert len(guess) == len(predicted.frames) == len(taken.frames)
    for f in taken.frames:
        p = guess[f.target_s]
        assert (p.width, p.height, p.snapped) == (f.width, f.height, f.snapped)
        assert abs(p.time_s - f.time_s) <= 0.5 / taken.video.fps + 1e-6
    if name == "rot90":
        assert (predicted.frames[0].width, predicted.frames[0].height) == (75, 100)
    if kw.get("exact_times") is False:
        assert any(f.snapped for f in predicted.frames)


def test_scene_sampling_cannot_be_predicted(shots3: Path) -> None:
    with pytest.raises(ValueError, match="end of its pass"):
        predict_frames(shots3, spec(mode="scenes"))
