"""Context: what the user knows about a video -> the text its prompts carry.

Takes `--context` (or the text of `--context-file`, read once per run by `read_context_file`) and a
video's path; gives the context for that video: the flag's text first, then the file's, else
`VIDEO.context.md` beside the video (clip.mp4 -> clip.context.md), else None. A context is sent
with every request of a run, so a long one is cut to MAX_CONTEXT_CHARS with a warning; a file
beside the video that cannot be read is a warning too, never a failed run.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

MAX_CONTEXT_CHARS = 4000  # ~1,000 tokens on every request
CONTEXT_SUFFIX = ".context.md"
_MAX_FILE_BYTES = 1_000_000  # read no further: only the first MAX_CONTEXT_CHARS are used


def read_context_file(path: Path) -> str:
    """The text of `--context-file` (ConfigError, exit 3, when it cannot be read)."""
    try:
        return _read(path)
    except FileNotFoundError:
        raise ConfigError(f"context file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else exc.strerror or exc
        raise ConfigError(f"cannot read context file {path}: {reason}") from None


def beside(video: str) -> Path:
    """Where a video's own context file is: clip.mp4 -> clip.context.md."""
    path = Path(video)
    return path.with_name(path.stem + CONTEXT_SUFFIX)


def context_for(video: str, given: str | None) -> tuple[str | None, list[str]]:
    """The context for `video` (the given text, else the file beside it) and any warnings."""
    warnings: list[str] = []
    text = given
    if text is None:
        path = beside(video)
        try:
            text = _read(path) if path.is_file() else None
        except (OSError, UnicodeDecodeError) as exc:
            warnings.append(f"cannot read {path} ({exc}); going on without it")
    text = " ".join(text.split()) if text else None
    if text and len(text) > MAX_CONTEXT_CHARS:
        warnings.append(
            f"the context has {len(text):,} characters; only the first "
            f"{MAX_CONTEXT_CHARS:,} are sent with each request"
        )
        text = text[:MAX_CONTEXT_CHARS].rsplit(" ", 1)[0] + " …"
    return text or None, warnings


def _read(path: Path) -> str:
    with open(path, "rb") as fh:
        data = fh.read(_MAX_FILE_BYTES)
    # A file cut at the limit may end inside a character.
    return data.decode("utf-8-sig", errors="strict" if len(data) < _MAX_FILE_BYTES else "ignore")
