"""The runs layer's plain jobs (runs/jobs.py): what `vnarrate frames` writes, as it writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _media import make_video

from vnarrate.media.frames import sample_frames
from vnarrate.runs.jobs import FrameFiles
from vnarrate.session import sampling_spec
from vnarrate.settings import Settings


def test_frames_are_written_as_they_come_and_read_back_for_the_sheet(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", seconds=3.0, fps=10)
    settings = Settings(sample="count", frames=6)
    files = FrameFiles(tmp_path / "out", settings)
    fs = sample_frames(video, sampling_spec(settings), keep=files.keep)
    assert len(fs.frames) == 6 and all(f.jpeg == b"" for f in fs.frames)  # no bytes held
    assert [p.name[:10] for p in files.written] == [f"frame_{n:04d}" for n in range(1, 7)]
    assert files.finish(fs, None) == 6
    doc = json.loads((tmp_path / "out" / "frames.json").read_text())
    for rec, path in zip(doc["frames"], files.written, strict=True):
        assert rec["file"] == path.name and rec["bytes"] == path.stat().st_size > 500
    assert (tmp_path / "out" / "contact_sheet.jpg").stat().st_size > 2000


def test_a_run_that_fails_takes_back_the_frames_it_wrote(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", seconds=3.0, fps=10)
    settings = Settings(sample="count", frames=6)
    files = FrameFiles(tmp_path / "out", settings)
    (tmp_path / "out" / "mine.txt").write_text("the user's own")

    def keep_three(frame):  # type: ignore[no-untyped-def]
        if len(files.written) == 3:
            raise KeyboardInterrupt
        return files.keep(frame)

    with pytest.raises(KeyboardInterrupt):
        sample_frames(video, sampling_spec(settings), keep=keep_three)
    assert len(files.written) == 3
    files.discard()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mine.txt"]
