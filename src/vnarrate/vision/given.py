"""The plan of a given script (`voiceover --script`): no vision request, only what speaking it
takes.

Takes the script, where people speak in the video (offline, or None), and the options of the
stages it will go through (plan, gaps, transcription, --verify); gives the script repaired into
the gaps between speech (as the run will speak it), the notes of that repair, and a Plan with its
speech, the dialogue's transcription (for --subtitles dialogue or both) and --verify's hearing
back. `voiceover --script --dry-run` shows this plan and the run checks --max-cost against it:
one computation, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Plan, Script, Soundtrack
from ..narration.gaps import GapOptions, Gaps, find_gaps, repair_into_gaps
from ..narration.script import repair
from ..narration.verify import VerifyOptions, plan_verify
from ..soundtrack.transcribe import TranscribeOptions, plan_transcription
from .plan import PlanOptions, plan_speech


@dataclass(frozen=True)
class GivenScript:
    """A given script repaired into the gaps between speech, and the plan of speaking it."""

    script: Script
    notes: list[str]  # what the repair changed
    heard: Soundtrack | None  # where people speak (not yet what they say)
    gaps: Gaps | None  # None: nobody speaks (or no audio)
    plan: Plan


def plan_given_script(
    path: str,
    script: Script,
    duration_s: float,
    heard: Soundtrack | None,
    options: PlanOptions,
    gaps: GapOptions,
    *,
    stt: TranscribeOptions | None,
    verify: VerifyOptions | None,
    untimed: bool = False,
) -> GivenScript:
    """The script repaired into the gaps, and its plan. `stt`: transcribe what people say
    (dialogue subtitles), None when the run will not. `untimed`: spoken in one piece, not
    fitted between speech."""
    found = None if untimed else find_gaps(heard, duration_s, gaps)
    script, notes = (
        repair(script, duration_s) if found is None else repair_into_gaps(script, duration_s, found)
    )
    plan = plan_speech(path, script, duration_s, options, notes=list(notes))
    if heard is not None:  # where people speak is shown; priced when it will be transcribed
        plan = plan_transcription(plan, heard.speech, stt)
    plan = plan_verify(plan, verify, len(script.segments))
    return GivenScript(script, notes, heard, found, plan)
