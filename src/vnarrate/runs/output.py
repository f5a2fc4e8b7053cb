"""Output stage: atomic file writes (a temporary file beside the target, then a rename), and the
registry of every temporary file in flight.

Takes bytes, text or a writer that wants a file name, and a destination; gives a complete file or
none at all. Each temporary file lives alone in a hidden folder beside its target
(`.NAME.XXXXXXXX.part/NAME`, so format detection by extension still works), and every such folder
is known to `TEMPS` before it exists: a signal handler (runs/interrupt.py) removes them all, from
whatever thread, and once a folder is gone a writer still running cannot create its file again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import OutputError

Landing = Callable[[Path], None]  # told the finished temporary file just before it takes its name


class TempFiles:
    """The temporary folders of this process's unfinished outputs."""

    def __init__(self) -> None:
        # Re-entrant: the signal handler runs in the main thread, maybe inside `make` below.
        self._lock = threading.RLock()
        self._live: set[Path] = set()
        self.stopping = False

    def make(self, target: Path) -> Path:
        """A new empty folder beside `target` for its temporary file. It is registered before it
        is created, so a sweep at any moment knows it; after a sweep no new one is made."""
        prefix = target.name.encode("utf-8")[:80].decode("utf-8", "ignore")
        with self._lock:
            if self.stopping:
                raise OutputError(f"cannot write {target}: the run is stopping")
            for _ in range(100):
                folder = target.parent / f".{prefix}.{os.urandom(4).hex()}.part"
                self._live.add(folder)
                try:
                    os.mkdir(folder, 0o700)
                except FileExistsError:
                    self._live.discard(folder)
                    continue
                except BaseException:
                    self._live.discard(folder)
                    raise
                return folder
        raise OutputError(f"cannot write {target}: no free temporary name beside it")

    def drop(self, folder: Path) -> None:
        """Remove `folder` and whatever is left in it (its file was renamed away, or abandoned)."""
        _remove(folder)
        with self._lock:
            self._live.discard(folder)

    def sweep(self) -> int:
        """Stop making temporary files and remove every one there is; how many were removed."""
        with self._lock:
            self.stopping = True
            live = list(self._live)
        return sum(_remove(folder) for folder in live)

    def live(self) -> list[Path]:
        with self._lock:
            return sorted(self._live)


TEMPS = TempFiles()


def _remove(folder: Path) -> bool:
    """Remove a temporary folder and its files; True when there was one. A writer in another
    thread may create its file again between the unlink and the rmdir: then try again."""
    for _ in range(50):
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return False
        except OSError:
            return False
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(folder / name)
        try:
            os.rmdir(folder)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            continue  # not empty again: a writer recreated its file
    return False


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
def atomic_path(path: Path, *, force: bool, landing: Landing | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    For writers (PyAV, OpenCV) that want a file name rather than bytes; the file does not exist
    yet (the writer creates it, with the permissions any new file gets). `landing(tmp)` is
    called with the finished file just before the rename: the run manifest records it there, so
    no output of ours ever has its name without being on record.
    """
    check_writable(path, force=force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = TEMPS.make(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    tmp = folder / path.name
    try:
        yield tmp
        if path.exists() and not force:
            raise OutputError(f"{path} already exists", hint="pass --force to overwrite it")
        if landing is not None:
            landing(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        TEMPS.drop(folder)


def write_bytes(path: Path, data: bytes, *, force: bool, landing: Landing | None = None) -> Path:
    """Write `data` to `path` atomically; the file is complete or absent, never half written."""
    with atomic_path(path, force=force, landing=landing) as tmp:
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def write_text(path: Path, text: str, *, force: bool, landing: Landing | None = None) -> Path:
    """Write UTF-8 text atomically (a trailing newline is added when missing)."""
    if text and not text.endswith("\n"):
        text += "\n"
    return write_bytes(path, text.encode("utf-8"), force=force, landing=landing)
