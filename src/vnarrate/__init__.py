"""vnarrate: turn videos into words and voice with vision language models.

The Python API (`describe`, `write_script`, `voiceover`, `plan`, see api.py) is loaded on first
use, so that the command line starts without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = ["__version__", "describe", "plan", "voiceover", "write_script"]

if TYPE_CHECKING:
    from .api import describe, plan, voiceover, write_script


def __getattr__(name: str) -> Any:
    if name in ("describe", "plan", "voiceover", "write_script"):
        from . import api  # on first use: `vnarrate --help` need not load pydantic

        return getattr(api, name)
    raise AttributeError(f"module 'vnarrate' has no attribute {name!r}")
