"""The `.env` file, checked before the settings read it: a line python-dotenv cannot parse is a
configuration error naming the line (never its text: it may hold a key).

Takes the path of a `.env`; gives nothing, or raises ConfigError (exit 3).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError


def check_dotenv(path: Path) -> None:
    """A `.env` that python-dotenv cannot fully parse is a configuration error naming the lines
    (not the library's log warnings followed by a run with some settings silently missing). The
    lines' text is never shown: it may hold a key."""
    if not path.is_file():
        return
    from dotenv.parser import parse_stream

    try:
        with open(path, encoding="utf-8") as fh:
            bad = []
            for binding in parse_stream(fh):
                # A bare word (a pasted key, `sk-abc123`) parses as a name without a value:
                # not NAME=VALUE either, and never silently ignored.
                if binding.error or (binding.key is not None and binding.value is None):
                    text = binding.original.string
                    blank = text[: len(text) - len(text.lstrip())]  # lines before the statement
                    bad.append(binding.original.line + blank.count("\n"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read .env: {exc.reason}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read .env: {exc.strerror or exc}") from None
    if bad:
        where = ", ".join(str(n) for n in bad[:5]) + (" …" if len(bad) > 5 else "")
        raise ConfigError(
            f"{path}: cannot parse line{'s' if len(bad) > 1 else ''} {where}",
            hint="each line must be NAME=VALUE, a comment (#) or blank; quotes must be closed",
        )
