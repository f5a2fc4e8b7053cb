"""The flows for one input (the others run end to end in test_cli, test_voiceover, test_media)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import MEDIA, requires_media

from vnarrate.pipeline import listen, prepare
from vnarrate.session import stage_options
from vnarrate.settings import Settings


def test_listen_without_an_audio_track_is_none(video: Path) -> None:
    assert listen(str(video), stage_options(Settings())) is None


def test_prepare_samples_and_plans_offline(video: Path) -> None:
    prep = prepare(str(video), stage_options(Settings(frames=3)), "describe")
    assert len(prep.chosen.frames) == 3 and prep.sent == prep.chosen
    assert prep.plan.frame_times_s == [round(f.time_s, 3) for f in prep.chosen.frames]
    assert [len(c) for c in prep.chunks()] == [3]


@requires_media
def test_listen_finds_the_lines_of_dialogue_nasa() -> None:
    truth = json.loads((MEDIA / "dialogue_nasa.json").read_text())
    heard = listen(str(MEDIA / "dialogue_nasa.mp4"), stage_options(Settings()))
    assert heard is not None and not heard.transcribed
    assert len(heard.lines) == len(heard.speech.regions)
    # Every line of the truth lies inside a region found (0.35 s pauses do not split speech).
    for said in truth["speech"]:
        assert any(
            a <= said["start"] + 0.1 and said["end"] - 0.1 <= b for a, b in heard.speech.regions
        )
