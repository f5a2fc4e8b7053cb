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
