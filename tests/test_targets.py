"""Targets: the times a SamplingSpec asks for, and the keyframes that may stand in for them."""

from __future__ import annotations

import itertools

import numpy as np
from _media import video_info as info

from vnarrate.media import targets
from vnarrate.media.targets import select_times
from vnarrate.models import SamplingSpec
from vnarrate.session import sampling_spec
from vnarrate.settings import Settings


def default_spec(**kw: object) -> SamplingSpec:
    """The sampling a run with default settings uses, with `kw` changed."""
    return sampling_spec(Settings()).model_copy(update=kw)


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


# --- snapping to keyframes (targets.py) ------------------------------------------------------------


def test_snap_tolerance_is_a_quarter_of_the_spacing() -> None:
    keys = [0.0, 10.0, 20.0, 30.0, 40.0]
    # Targets 8 s apart: tolerance 2 s. 12 -> 10 (2 s away), 21 -> 20; 35.5 is 4.5 from both.
    assert targets.tolerances([4.0, 12.0, 21.0, 35.5], 40.0) == [2.0, 2.0, 2.25, 3.625]
    assert targets.snap([4.0, 12.0, 21.0, 35.5], keys, 40.0, 25.0) == [None, 10.0, 20.0, None]
    # A lone target may move a quarter of the video's length; ties go to the earlier keyframe.
    assert targets.snap([15.0], keys, 40.0, 25.0) == [10.0]
    assert targets.snap([15.0], keys, 16.0, 25.0) == [None]  # 5 s > 16 / 4


def test_snap_only_where_the_exact_frame_would_cost_a_seek() -> None:
    keys = [0.0, 10.0, 20.0]
    # 1 s apart at 25 fps: reading on from the previous target costs 25 frames, seeking to the
    # keyframe before 10.2 costs 8 + 5: only the targets right after a keyframe would seek.
    times = [8.2, 9.2, 10.2, 11.2]
    assert targets.snap(times, keys, 30.0, 25.0) == [None, None, 10.0, None]
    # With no keyframe near, nothing snaps.
    assert targets.snap([5.0], [0.0], 10.0, 25.0) == [None]


def test_snapping_keeps_the_spread_even() -> None:
    rng = np.random.default_rng(5)
    keys = sorted(set(np.round(np.cumsum(rng.uniform(0.5, 12, 400)), 2).tolist()))
    times = targets.centres(0.0, keys[-1], 150)  # ~16 s apart: keyframes within 4 s or not
    snapped = targets.snap(times, keys, keys[-1], 30.0)
    assert any(s is not None for s in snapped) and any(s is None for s in snapped)
    moved = [t if s is None else s for t, s in zip(times, snapped, strict=True)]
    gap = times[1] - times[0]
    assert moved == sorted(moved) and len(set(moved)) == len(moved)
    for a, b in itertools.pairwise(moved):
        assert 0.5 * gap - 1e-9 <= b - a <= 1.5 * gap + 1e-9
    for t, m, tol in zip(times, moved, targets.tolerances(times, keys[-1]), strict=True):
        assert abs(m - t) <= tol + 1e-9


def test_exact_times_and_scenes_never_snap() -> None:
    long = info(frame_count=6000, duration_s=600.0)
    keys = [i * 10.0 for i in range(60)]
    snapped = targets.make_targets(long, default_spec(mode="count", count=20), keys)
    assert any(t.key_s is not None for t in snapped)
    exact = targets.make_targets(long, default_spec(mode="count", count=20, exact_times=True), keys)
    assert all(t.key_s is None for t in exact)
    assert [t.time_s for t in exact] == [t.time_s for t in snapped]
    scenes = targets.make_targets(long, default_spec(mode="scenes"), keys)
    assert all(t.key_s is None for t in scenes)
