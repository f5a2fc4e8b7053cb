"""Resuming: a voiceover stopped at any moment (between any two renames, or between recording an
output and renaming it) completes on a rerun with --skip-existing, without --force, and still
never replaces a file vnarrate did not write or one the user changed since. Also the edit in the
middle (`script`, edit, `voiceover --script`), and -o naming every output of a run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import respx
from _media import make_video
from conftest import TEST_KEY, CliResult, run_cli
from test_voiceover import DURATION, FakeApi, listing, sha256, voiceover

from vnarrate.runs.manifest import manifest_complete


@pytest.fixture
def fake(api: respx.Router, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("VNARRATE_TTS_BACKEND", "speech")  # the mocked speech endpoint
    return FakeApi(api)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    (tmp_path / "videos").mkdir()
    return make_video(tmp_path / "videos" / "clip.mp4", seconds=DURATION, fps=10)


OUTPUTS = [
    "clip.narration.mp3",
    "clip.srt",
    "clip.vtt",
    "clip.script.json",
    "clip.timeline.png",
    "narrated.mp4",
]


class Killed(BaseException):
    """Stands for SIGKILL or a power cut: nothing of vnarrate's catches it."""


def stop_at(monkeypatch: pytest.MonkeyPatch, n: int, *, renamed: bool) -> None:
    """End the run at the n-th rename of a finished temporary file (an output or the manifest),
    just after it (`renamed`) or just before it."""
    real = os.replace
    count = 0

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        nonlocal count
        if ".part" not in str(src):  # the response cache's own writes
            return real(src, dst)
        count += 1
        if count == n and not renamed:
            raise Killed
        real(src, dst)
        if count == n:
            raise Killed

    monkeypatch.setattr(os, "replace", replace)


# Renames of a voiceover with --mux: for each of the 6 outputs, the partial manifest naming it,
# then the output itself; the complete manifest last (13).
@pytest.mark.parametrize(
    ("n", "renamed"),
    [(2, False), (2, True), (11, True), (12, True)],
    ids=["audio-on-record-not-renamed", "audio-landed", "mux-on-record", "mux-landed"],
)
def test_a_stopped_voiceover_resumes_with_skip_existing(
    fake: FakeApi, clip: Path, monkeypatch: pytest.MonkeyPatch, n: int, renamed: bool
) -> None:
    real = os.replace
    stop_at(monkeypatch, n, renamed=renamed)
    with pytest.raises(Killed):
        voiceover(clip, "--mux", "narrated.mp4")
    monkeypatch.setattr(os, "replace", real)
    assert not [p for p in listing(Path.cwd()) if ".part" in p]  # the finally clauses ran
    assert not manifest_complete(Path("clip.vnarrate.json"))

    landed = [p for p in OUTPUTS if Path(p).exists()]
    r = voiceover(clip, "--mux", "narrated.mp4")  # a plain rerun still refuses to overwrite
    assert r.code == (6 if landed else 0), r
    if landed:
        r = voiceover(clip, "--mux", "narrated.mp4", "--skip-existing")
        assert r.code == 0, r
    assert listing(Path.cwd()) == sorted([*OUTPUTS, "clip.vnarrate.json"])
    assert manifest_complete(Path("clip.vnarrate.json"), command="voiceover")
    assert fake.chat.call_count == 1  # the rerun's answers came from the cache
    r = voiceover(clip, "--mux", "narrated.mp4", "--skip-existing", "-v")
    assert r.code == 0 and "skipped (already complete)" in r.err, r


def test_skip_existing_never_replaces_a_file_it_did_not_write(
    fake: FakeApi, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.replace
    stop_at(monkeypatch, 4, renamed=True)  # the audio and the subtitles landed
    with pytest.raises(Killed):
        voiceover(clip)
    monkeypatch.setattr(os, "replace", real)
    Path("clip.vtt").write_text("the user's own subtitles\n")  # not ours
    r = voiceover(clip, "--skip-existing")
    assert r.code == 6 and "clip.vtt already exists" in r.err, r
    assert Path("clip.vtt").read_text() == "the user's own subtitles\n"
    Path("clip.vtt").unlink()

    Path("clip.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nedited\n")  # ours, changed
    r = voiceover(clip, "--skip-existing")
    assert r.code == 6 and "clip.srt was changed since vnarrate wrote it" in r.err, r
    assert "edited" in Path("clip.srt").read_text()
    r = voiceover(clip, "--skip-existing", "--force")
    assert r.code == 0, r
    assert manifest_complete(Path("clip.vnarrate.json"), command="voiceover")


def test_a_manifest_that_is_not_ours_is_not_replaced(fake: FakeApi, clip: Path) -> None:
    Path("clip.vnarrate.json").write_text('{"mine": true}\n')
    r = voiceover(clip, "--skip-existing")
    assert r.code == 6 and "clip.vnarrate.json already exists" in r.err, r
    assert Path("clip.vnarrate.json").read_text() == '{"mine": true}\n'


def test_the_edit_in_the_middle_works_as_the_readme_writes_it(fake: FakeApi, clip: Path) -> None:
    # vnarrate script clip.mp4 && $EDITOR clip.script.json && vnarrate voiceover clip.mp4
    #   --script clip.script.json
    r = run_script(clip)
    assert r.code == 0, r
    script = Path("clip.script.json")
    edited = json.loads(script.read_text())
    edited["segments"][1]["text"] = "Something greener."
    script.write_text(json.dumps(edited, indent=4) + "\n")  # the editor's own layout
    before = script.read_bytes()
    r = voiceover(clip, "--script", script)
    assert r.code == 0, r
    assert script.read_bytes() == before  # never touched
    assert "Something greener." in {b["input"] for b in fake.speech_bodies()}
    manifest = json.loads(Path("clip.vnarrate.json").read_text())
    kinds = [o["kind"] for o in manifest["outputs"]]
    assert kinds == ["audio", "srt", "vtt", "timeline"]  # not the script: it is not ours
    assert manifest["sources"][0] == {
        "kind": "script",
        "path": str(script),
        "bytes": len(before),
        "sha256": sha256(script),
    }
    r = voiceover(clip, "--script", script, "--force")  # --force does not rewrite it either
    assert r.code == 0, r
    assert script.read_bytes() == before

    r = voiceover(clip, "--script", script, "--skip-existing")
    assert r.code == 0 and "clip.mp4: skipped (already complete)" in r.err, r  # said, not -v
    edited["segments"][1]["text"] = "Greener still."
    script.write_text(json.dumps(edited))
    r = voiceover(clip, "--script", script, "--skip-existing")  # edited again: stale, redone
    assert r.code == 0 and "skipped" not in r.err, r
    assert "Greener still." in {b["input"] for b in fake.speech_bodies()}


def test_an_unedited_script_is_listed_as_an_output(fake: FakeApi, clip: Path) -> None:
    assert run_script(clip).code == 0
    r = voiceover(clip, "--script", "clip.script.json")
    assert r.code == 0, r
    manifest = json.loads(Path("clip.vnarrate.json").read_text())
    kinds = [o["kind"] for o in manifest["outputs"]]
    assert kinds == ["audio", "srt", "vtt", "timeline", "script"]
    assert "wrote" in r.err and "clip.script.json" not in r.err  # listed, but it was only read


def test_output_names_every_output_of_the_run(fake: FakeApi, clip: Path) -> None:
    r = voiceover(clip, "-o", "out/clip.narration.mp3", "--json")
    assert r.code == 0, r
    names = [*OUTPUTS[:5], "clip.vnarrate.json"]
    assert listing(Path("out")) == sorted(names)  # as --out-dir out names them
    assert [Path(p).name for p in json.loads(r.out)["outputs"]] == names
    r = voiceover(clip, "-o", "out/clip.narration.mp3", "--skip-existing", "-v")
    assert r.code == 0 and "skipped" in r.err, r  # the manifest is found where it was written


def run_script(clip: Path) -> CliResult:
    return run_cli(["script", clip, "--frames", "3"])
