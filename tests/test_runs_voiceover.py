"""The voiceover job's output naming (the job itself runs end to end in test_voiceover)."""

from __future__ import annotations

from pathlib import Path

from vnarrate.runs.voiceover import VoiceoverPaths


def test_voiceover_paths_default_and_with_output(tmp_path: Path) -> None:
    p = VoiceoverPaths("clip", tmp_path)
    assert [x.name for x in p.products()] == [
        "clip.narration.mp3",
        "clip.srt",
        "clip.vtt",
        "clip.script.json",
        "clip.timeline.png",
    ]
    assert p.manifest.name == "clip.vnarrate.json"
    q = VoiceoverPaths("clip", None, audio=tmp_path / "sub" / "n.wav", subtitles=False)
    assert q.srt is None and q.vtt is None
    assert q.timeline is not None and q.timeline == tmp_path / "sub" / "n.timeline.png"
    assert VoiceoverPaths("clip", tmp_path, timeline=False).timeline is None
    assert q.script is not None and q.script.parent == tmp_path / "sub"
    assert q.manifest.parent == tmp_path / "sub"  # everything beside the named audio


def test_output_names_every_output_after_itself(tmp_path: Path) -> None:
    p = VoiceoverPaths("clip", None, audio=tmp_path / "narration.wav", mux=tmp_path / "m.mp4")
    assert [x.name for x in [*p.products(), p.manifest]] == [
        "narration.wav",
        "narration.srt",
        "narration.vtt",
        "narration.script.json",
        "narration.timeline.png",
        "m.mp4",
        "narration.vnarrate.json",
    ]
    # A trailing .narration is not part of the name: -o out/clip.narration.mp3 names as
    # --out-dir out does.
    q = VoiceoverPaths("clip", None, audio=tmp_path / "clip.narration.mp3")
    d = VoiceoverPaths("clip", tmp_path)
    assert [*q.products(), q.manifest] == [*d.products(), d.manifest]
