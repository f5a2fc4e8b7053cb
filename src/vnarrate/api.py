"""The Python API: the same settings, session, flows and jobs as the command line, for people who
script in Python rather than shell.

    from vnarrate import describe, plan, voiceover, write_script

    estimate = plan("clip.mp4", task="voiceover")         # a Plan: offline, no key
    result = describe("clip.mp4", max_frames=16)          # a DescribeResult; nothing is written
    script = write_script("clip.mp4", style="promo")      # a ScriptResult (result.script)
    narrated = voiceover("clip.mp4", voice="onyx")        # writes clip.narration.mp3 & co.

Keyword arguments are settings, named like the flags (`--max-frames` -> `max_frames`; an
unknown name raises UsageError); the environment and `.env` apply as on the command line. Failures raise the exceptions of
vnarrate.errors, each with its `exit_code`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from .errors import UsageError
from .models import DescribeResult, Plan, ScriptResult, Task, VoiceoverResult
from .pipeline import describe as describe_flow
from .pipeline import prepare
from .pipeline import write_script as script_flow
from .runs.inputs import Input, assign_stems
from .runs.terminal import SilentReporter
from .runs.voiceover import VoiceoverFlags, VoiceoverJob
from .session import open_session, stage_options
from .settings import Settings, load_settings


def _settings(given: dict[str, Any]) -> Settings:
    """Settings from keyword arguments; a misspelt one is an error, not silently ignored."""
    for name in given:
        if name not in Settings.model_fields:
            close = difflib.get_close_matches(name, list(Settings.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown setting {name!r}{hint}")
    return load_settings(**given)


def plan(video: str | Path, *, task: Task = "describe", **settings: Any) -> Plan:
    """What a run would send and cost, worked out offline (no key needed)."""
    options = stage_options(_settings(settings))
    return prepare(str(video), options, task).plan


def describe(video: str | Path, **settings: Any) -> DescribeResult:
    """A title and a description of `video` (nothing is written)."""
    session = open_session(_settings(settings))
    return describe_flow(str(video), session)


def write_script(video: str | Path, **settings: Any) -> ScriptResult:
    """A timed narration script for `video` (nothing is written; `result.script` is the Script,
    which `voiceover(..., script=...)` speaks after you edit it)."""
    session = open_session(_settings(settings))
    return script_flow(str(video), session)


def voiceover(
    video: str | Path,
    *,
    output: str | Path | None = None,
    script: str | Path | None = None,
    mux: str | Path | None = None,
    replace_audio: bool = False,
    untimed: bool = False,
    **settings: Any,
) -> VoiceoverResult:
    """Narrate `video` into files, as `vnarrate voiceover` does: the audio (`output`, default
    VIDEO.narration.mp3), subtitles, the script and a manifest, and the muxed video with `mux`;
    `script` speaks a script.json instead of writing one. The result lists the files written."""
    loaded = _settings(settings)
    path = str(video)
    flags = VoiceoverFlags(
        script=Path(script) if script is not None else None,
        mux=Path(mux) if mux is not None else None,
        replace_audio=replace_audio,
        untimed=untimed,
    )
    job = VoiceoverJob(
        loaded,
        open_session(loaded),
        SilentReporter(),
        flags,
        output=Path(output) if output is not None else None,
    )
    inp = Input(source=path, kind="video", identity=str(Path(path).resolve()))
    return job.run(path, assign_stems([inp])[inp])[0]
