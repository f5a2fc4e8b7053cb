"""Voicing: a script -> every line spoken and fitted into the video, with what fitting did.

Takes a Script, the speech backend and voice, each line's Room (narration/gaps.py; None when
nobody speaks in the video) and the fitting bounds; gives the track, the Placements, the lines
left out, the characters billed, and notes. `fit_summary` counts what happened to the lines
(placed, placed clear of speech, sped up, cut, dropped, seconds over speech) for the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import Clip, Placement, Script
from .gaps import Gaps, Room, over_speech
from .speech import SpeechBackend, SpeechOptions, Synthesis, faithfulness_note, synthesize_all
from .timeline import FitOptions, fit_lines, timing_notes, untimed_placements, untimed_track

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.int16]


@dataclass
class Spoken:
    """A script spoken and placed: the track and where each line landed."""

    track: Samples
    placements: list[Placement]
    dropped: list[int] = field(default_factory=list)
    characters: int = 0  # billed: cache hits count 0
    notes: list[str] = field(default_factory=list)


def speak_script(
    backend: SpeechBackend,
    script: Script,
    voice: SpeechOptions,
    duration_s: float,
    *,
    rooms: Sequence[Room] | None,
    fit: FitOptions,
    jobs: int,
    untimed: bool = False,
) -> Spoken:
    """Speak every line (`jobs` at a time), then fit the speech into the video (or, `untimed`,
    one line after another). Lines are spoken again (faster, or cut) only as fitting needs."""
    texts = [seg.text for seg in script.segments]
    synths = synthesize_all(backend, texts, voice, jobs=jobs)
    spoken = Spoken(track=untimed_track([]), placements=[])
    spoken.characters = sum(s.characters for s in synths)
    spoken.notes.extend(n for i, s in enumerate(synths) if (n := faithfulness_note(i, s)))
    clips = [_clip(i, texts[i], s, voice.speed) for i, s in enumerate(synths)]

    def resynthesize(i: int, speed: float, text: str | None = None) -> Clip:
        syn = backend.synthesize(text or texts[i], voice.model_copy(update={"speed": speed}))
        spoken.characters += syn.characters
        spoken.notes.extend(n for n in [faithfulness_note(i, syn)] if n)
        return _clip(i, text or texts[i], syn, speed)

    if untimed:
        spoken.track, spoken.placements = untimed_track(clips), untimed_placements(clips)
        return spoken
    fitted = fit_lines(
        script.segments, clips, duration_s, resynthesize=resynthesize, options=fit, rooms=rooms
    )
    spoken.track, spoken.placements, spoken.dropped = (
        fitted.track,
        fitted.placements,
        fitted.dropped,
    )
    spoken.notes.extend(fitted.notes)
    spoken.notes.extend(timing_notes(fitted.placements, duration_s))
    spoken.notes.extend(_fit_notes(script, fitted.placements, fitted.dropped, rooms))
    return spoken


def _clip(i: int, text: str, syn: Synthesis, speed: float) -> Clip:
    return Clip(segment=i, text=text, pcm=syn.pcm, sample_rate=syn.sample_rate, speed=speed)


def _fit_notes(
    script: Script,
    placements: Sequence[Placement],
    dropped: Sequence[int],
    rooms: Sequence[Room] | None,
) -> list[str]:
    notes = [
        f'segment {p.segment + 1} was cut after its last sentence that fits its gap: "{p.text}"'
        for p in placements
        if p.cut
    ]
    for i in dropped:
        room = rooms[i] if rooms is not None else None
        where = f" ({room.start_s:.1f}–{room.end_s:.1f} s)" if room is not None else ""
        notes.append(
            f"segment {i + 1} left out: no room for it in its gap{where}: "
            f'"{script.segments[i].text}"'
        )
    return notes


def fit_summary(
    spoken: Spoken, script: Script, *, base_speed: float, gaps: Gaps | None
) -> dict[str, Any]:
    """What fitting did, counted in lines (fields of VoiceoverResult); the placements with how
    much of each lies over detected speech."""
    regions = gaps.regions if gaps is not None else []
    placements = over_speech(spoken.placements, regions)
    spoken.placements = placements
    return {
        "speech_regions": len(regions),
        "speech_s": round(sum(b - a for a, b in regions), 3),
        "lines": len(script.segments),
        "placed": len(placements),
        "placed_in_gaps": sum(1 for p in placements if p.over_speech_s <= 0.0),
        "sped_up": sum(1 for p in placements if p.speed > base_speed + 1e-6 or p.stretch > 1.001),
        "cut": sum(1 for p in placements if p.cut),
        "dropped": list(spoken.dropped),
        "seconds_over_speech": round(sum(p.over_speech_s for p in placements), 3),
    }
