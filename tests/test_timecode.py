"""Timecodes (media/timecode.py): the one formatter every label, prompt and subtitle uses."""

from __future__ import annotations

import pytest

from vnarrate.media.timecode import format_ts


@pytest.mark.parametrize(("t", "s"), [(0, "0:00.0"), (61.24, "1:01.2"), (3725, "1:02:05.0")])
def test_format_ts(t: float, s: str) -> None:
    assert format_ts(t) == s


def test_format_ts_rounds_once() -> None:
    assert format_ts(0) == "0:00.0"
    assert format_ts(1.5) == "0:01.5"
    assert format_ts(61.25) == "1:01.3"
    assert format_ts(59.96) == "1:00.0"  # never 0:60.0
    assert format_ts(3723.5) == "1:02:03.5"
    assert format_ts(-1) == "0:00.0"
    assert format_ts(3723.4567, "srt") == "01:02:03,457"
    assert format_ts(0.0005, "vtt") == "00:00:00.001"
