"""Atomic writes: complete or absent, never overwritten without force, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vnarrate.errors import OutputError
from vnarrate.runs.output import (
    TEMPS,
    TempFiles,
    atomic_path,
    check_writable,
    write_bytes,
    write_text,
)


def test_write_and_refuse_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    write_text(target, "hello", force=False)
    assert target.read_text() == "hello\n"
    with pytest.raises(OutputError, match=r"already exists.*--force") as err:
        write_text(target, "again", force=False)
    assert err.value.exit_code == 6
    write_text(target, "again", force=True)
    assert target.read_text() == "again\n"


def test_interrupted_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "narration.mp3"
    with pytest.raises(KeyboardInterrupt), atomic_path(target, force=False) as tmp:
        tmp.write_bytes(b"half an mp3")
        raise KeyboardInterrupt
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_temp_file_keeps_suffix_for_format_detection(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "a.m4a", force=False) as tmp:
        assert tmp.suffix == ".m4a" and tmp.parent.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "a.m4a").read_bytes() == b"x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            write_bytes(locked / "x.bin", b"x", force=False)
    finally:
        locked.chmod(0o700)


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        check_writable(tmp_path / "file" / "out.txt", force=False)
    with pytest.raises(OutputError, match="cannot write"):
        write_bytes(tmp_path / "file" / "out.txt", b"x", force=False)


def test_directory_as_target(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        check_writable(tmp_path, force=True)


def test_files_get_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "x.txt", "x", force=False)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# --- the registry of temporary files (what a signal handler sweeps) ------------------------------


def test_every_temporary_file_is_known_and_a_sweep_removes_them_for_good(tmp_path: Path) -> None:
    temps = TempFiles()
    folder = temps.make(tmp_path / "clip.narrated.mp4")
    assert folder.parent == tmp_path and folder.name.startswith(".clip.narrated.mp4.")
    assert folder.name.endswith(".part") and temps.live() == [folder]
    (folder / "clip.narrated.mp4").write_bytes(b"half a video")
    assert temps.sweep() == 1
    assert list(tmp_path.iterdir()) == []
    # A writer still running cannot create its file again: its folder is gone...
    with pytest.raises(FileNotFoundError):
        (folder / "clip.narrated.mp4").write_bytes(b"more")
    # ...and no new temporary file is made once the run is stopping.
    with pytest.raises(OutputError, match="stopping"):
        temps.make(tmp_path / "clip.srt")
    assert list(tmp_path.iterdir()) == []


def test_a_finished_write_leaves_no_temporary_folder(tmp_path: Path) -> None:
    write_text(tmp_path / "a.txt", "x", force=False)
    with pytest.raises(OutputError), atomic_path(tmp_path / "b.txt", force=False) as tmp:
        tmp.write_text("x")
        raise OutputError("the writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert TEMPS.live() == []
