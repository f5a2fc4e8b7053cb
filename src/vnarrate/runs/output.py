"""Output stage: atomic file writes (temp file in the same folder, then rename) and naming.

Takes bytes or text and a destination; gives a complete file or none at all.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError


def check_writable(path: Path, *, force: bool) -> None:
    """Fail early, before any work is paid for, if `path` cannot or must not be written."""
    if path.exists() and not force:
        raise OutputError(f"{path} already exists", hint="pass --force to overwrite it")
    if path.exists() and path.is_dir():
        raise OutputError(f"{path} is a directory, not a file")
    # The nearest folder on the way that exists must be a folder we may create the rest in
    # (an --out-dir under a regular file, or under a read-only folder, fails here, not after
    # the API calls were paid for).
    parent = path.parent if str(path.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is not a directory")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {parent} is not writable")


@contextlib.contextmanager
def atomic_path(path: Path, *, force: bool) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    For writers (PyAV, OpenCV) that want a file name rather than bytes. The suffix is kept so
    that format detection by extension still works.
    """
    check_writable(path, force=force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent
        )
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        # mkstemp creates 0600; outputs should get the permissions any new file would (umask).
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        if path.exists() and not force:
            raise OutputError(f"{path} already exists", hint="pass --force to overwrite it")
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes, *, force: bool) -> Path:
    """Write `data` to `path` atomically; the file is complete or absent, never half written."""
    with atomic_path(path, force=force) as tmp:
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def write_text(path: Path, text: str, *, force: bool) -> Path:
    """Write UTF-8 text atomically (a trailing newline is added when missing)."""
    if text and not text.endswith("\n"):
        text += "\n"
    return write_bytes(path, text.encode("utf-8"), force=force)
