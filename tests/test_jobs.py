"""The runs layer's plain jobs (runs/jobs.py): what `vnarrate frames` writes, as it writes it;
`vnarrate plan --task voiceover` as `voiceover --dry-run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import respx
from _media import make_soundtrack, make_video, place, speechlike
from conftest import run_cli

from vnarrate.media.frames import sample_frames
from vnarrate.runs.jobs import FrameFiles
from vnarrate.server.cache import ResponseCache
from vnarrate.session import sampling_spec, stage_options
from vnarrate.settings import Settings, load_settings


def test_frames_are_written_as_they_come_and_read_back_for_the_sheet(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", seconds=3.0, fps=10)
    settings = Settings(sample="count", frames=6)
    files = FrameFiles(tmp_path / "out", settings)
    fs = sample_frames(video, sampling_spec(settings), keep=files.keep)
    assert len(fs.frames) == 6 and all(f.jpeg == b"" for f in fs.frames)  # no bytes held
    assert [p.name[:10] for p in files.written] == [f"frame_{n:04d}" for n in range(1, 7)]
    assert files.finish(fs, None) == 6
    doc = json.loads((tmp_path / "out" / "frames.json").read_text())
    for rec, path in zip(doc["frames"], files.written, strict=True):
        assert rec["file"] == path.name and rec["bytes"] == path.stat().st_size > 500
    assert (tmp_path / "out" / "contact_sheet.jpg").stat().st_size > 2000


def test_a_run_that_fails_takes_back_the_frames_it_wrote(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", seconds=3.0, fps=10)
    settings = Settings(sample="count", frames=6)
    files = FrameFiles(tmp_path / "out", settings)
    (tmp_path / "out" / "mine.txt").write_text("the user's own")

    def keep_three(frame):  # type: ignore[no-untyped-def]
        if len(files.written) == 3:
            raise KeyboardInterrupt
        return files.keep(frame)

    with pytest.raises(KeyboardInterrupt):
        sample_frames(video, sampling_spec(settings), keep=keep_three)
    assert len(files.written) == 3
    files.discard()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mine.txt"]


# --- plan --task voiceover: the voiceover's flags, the voiceover's numbers -------------------------

TTS = "http://127.0.0.1:8766/v1"


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s with two stretches of a synthetic voice (2-4 s, 6-8 s)."""
    parts = [(2.0, speechlike(2.0, f0=120, seed=1)), (6.0, speechlike(2.0, f0=200, seed=2))]
    return make_soundtrack(
        tmp_path_factory.mktemp("talk") / "talk.mp4", [place(10.0, parts)], rate=16000
    )


@pytest.mark.parametrize(
    "flags",
    [
        ("--verify", "--subtitles", "both", "--tts-base-url", TTS, "--voice", "amy",
         "--wer-threshold", "0.3", "--verify-onset", "0.5", "--min-gap", "1.5"),
        ("--over-speech", "duck", "--tts-model", "tts-1-hd", "--tts-backend", "speech",
         "--stt-base-url", "http://localhost:11434/v1", "--transcribe", "on", "--speed", "1.2"),
    ],
    ids=["verify-dialogue-own-voice", "duck-local-stt"],
)  # fmt: skip
def test_plan_for_a_voiceover_takes_its_flags_and_gives_its_dry_runs_numbers(
    api: respx.Router, talk: Path, tmp_path: Path, flags: tuple[str, ...]
) -> None:
    cache = tmp_path / "cache"
    # This voice was measured by an earlier run on its server (the pace is in the cache).
    tts = dict(zip(flags[::2], flags[1::2], strict=False)).get("--tts-base-url")
    settings = load_settings(cache_dir=cache, tts_base_url=tts, voice="amy" if tts else None)
    ResponseCache(cache).put_json(stage_options(settings).pace.key, {"words_per_second": 3.448})
    common = ["--frames", "3", "--json", "--cache-dir", str(cache), *flags]
    planned = run_cli(["plan", talk, "--task", "voiceover", *common])
    dry = run_cli(["voiceover", talk, "--dry-run", *common])
    assert planned.code == dry.code == 0, (planned, dry)
    plan, dry_plan = json.loads(planned.out)["plan"], json.loads(dry.out)["plan"]
    assert plan == dry_plan
    assert plan["cost_usd"] == dry_plan["cost_usd"] and plan["notes"] == dry_plan["notes"]
    pace = "3.448 words/s (measured" if tts else "2.5 words/s (the default"
    assert any(pace in note for note in plan["notes"]), plan["notes"]
    if "--verify" in flags:
        assert plan["verify_model"] == "gpt-transcribe" and plan["transcription_requests"] == 2
        assert plan["speech_model"] == "tts-1" and plan["speech_pricing"] == "unknown"
    else:
        assert plan["speech_model"] == "tts-1-hd" and plan["stt_pricing"] == "free"
    assert not api.calls


def test_plan_for_a_voiceover_refuses_what_the_voiceover_refuses(talk: Path) -> None:
    for args in (["--subtitles", "dialogue", "--transcribe", "off"], ["--voice", "nobody"]):
        planned = run_cli(["plan", talk, "--task", "voiceover", *args])
        dry = run_cli(["voiceover", talk, "--dry-run", *args])
        assert planned.code == dry.code == 2, (planned, dry)
        assert planned.err == dry.err
