"""Run manifests: no secrets, trusted only while the outputs (and sources) still match; partial\nwhile outputs land, each on record before it takes its name; what a rerun may replace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnarrate.errors import OutputError
from vnarrate.runs.manifest import (
    Claim,
    Journal,
    claim_targets,
    manifest_complete,
    manifest_suffix,
    public_settings,
    record_output,
    sha256_of,
    source_file,
    write_manifest,
)
from vnarrate.runs.output import atomic_path, write_text
from vnarrate.settings import load_settings


def test_manifest_complete_only_while_outputs_match(tmp_path: Path) -> None:
    out = tmp_path / "clip.narration.mp3"
    out.write_bytes(b"mp3 data")
    manifest = tmp_path / f"clip{manifest_suffix('voiceover')}"
    settings = load_settings(api_key="sk-test-SECRET-0123456789abcdef")
    write_manifest(
        manifest,
        settings,
        {"usage": {}},
        command="voiceover",
        input="clip.mp4",
        outputs=[record_output("audio", out)],
    )
    text = manifest.read_text()
    assert "SECRET" not in text and json.loads(text)["status"] == "complete"
    assert manifest_complete(manifest, command="voiceover")
    assert not manifest_complete(manifest, command="describe")
    out.write_bytes(b"mp3 dat!")  # same size, other bytes
    assert not manifest_complete(manifest, command="voiceover")
    out.unlink()
    assert not manifest_complete(manifest, command="voiceover")
    assert not manifest_complete(tmp_path / "missing.json", command="voiceover")


def test_public_settings_drop_keys_and_url_credentials() -> None:
    s = load_settings(
        api_key="sk-abc-123456789", base_url="http://user:pw@localhost:11434/v1?token=x"
    )
    data = public_settings(s)
    assert "api_key" not in data and "tts_api_key" not in data
    assert data["base_url"] == "http://localhost:11434/v1"


# --- the journal: partial while outputs land, and what a rerun may replace -----------------------


def journal(tmp_path: Path, claim: Claim | None = None) -> Journal:
    settings = load_settings()
    manifest = tmp_path / "clip.vnarrate.json"
    return Journal(manifest, settings, command="voiceover", input="clip.mp4", claim=claim)


def test_each_output_is_on_record_before_it_takes_its_name(tmp_path: Path) -> None:
    j = journal(tmp_path)
    target = tmp_path / "clip.srt"
    seen: list[dict[str, object]] = []

    def landing(tmp: Path) -> None:
        j.lands("srt", target)(tmp)
        assert not target.exists()  # recorded first...
        seen.append(json.loads(j.manifest.read_text()))

    write_text(target, "1\n", force=False, landing=landing)
    assert target.exists()  # ...then renamed
    assert seen[0]["status"] == "partial"
    assert seen[0]["outputs"] == [
        {"kind": "srt", "path": str(target), "bytes": 2, "sha256": sha256_of(target)}
    ]
    assert not manifest_complete(j.manifest)
    j.complete({"usage": {}})
    assert manifest_complete(j.manifest, command="voiceover")


def test_a_rerun_may_replace_only_unchanged_files_of_ours(tmp_path: Path) -> None:
    j = journal(tmp_path)
    ours, changed, theirs = (tmp_path / n for n in ("clip.srt", "clip.vtt", "clip.mp3"))
    for path in (ours, changed):
        write_text(path, path.name, force=False, landing=j.lands(path.suffix[1:], path))
    changed.write_text("edited by hand\n")
    theirs.write_text("not ours\n")

    def claim(*targets: Path, resume: bool = True, force: bool = False) -> Claim:
        return claim_targets(
            list(targets), j.manifest, command="voiceover", force=force, resume=resume
        )

    got = claim(ours)
    assert got.force(ours) and got.force(j.manifest)  # the manifest is ours to update
    with pytest.raises(OutputError, match="already exists"):
        claim(ours, resume=False)  # only --skip-existing resumes
    with pytest.raises(OutputError, match=r"clip\.vtt was changed since vnarrate wrote it"):
        claim(changed)
    with pytest.raises(OutputError, match=r"clip\.mp3 already exists"):
        claim(theirs)
    assert claim(changed, theirs, force=True).force(theirs)
    with pytest.raises(OutputError, match="already exists"):  # another command's run
        claim_targets([ours], j.manifest, command="describe", force=False, resume=True)


def test_an_earlier_runs_file_stays_ours_until_this_run_replaces_it(tmp_path: Path) -> None:
    """Stopped between recording a new version of a file and renaming it, the disk still holds
    the earlier version: the rerun must still recognise it."""
    first = journal(tmp_path)
    srt = tmp_path / "clip.srt"
    write_text(srt, "old\n", force=False, landing=first.lands("srt", srt))
    first.complete({})
    claim = claim_targets([srt], first.manifest, command="voiceover", force=False, resume=True)
    second = journal(tmp_path, claim)
    with pytest.raises(KeyboardInterrupt), atomic_path(srt, force=True) as tmp:
        tmp.write_text("new\n")
        second.lands("srt", srt)(tmp)  # recorded...
        raise KeyboardInterrupt  # ...but stopped before the rename
    assert srt.read_text() == "old\n"
    doc = json.loads(first.manifest.read_text())
    assert doc["status"] == "partial" and doc["earlier_outputs"][0]["path"] == str(srt)
    again = claim_targets([srt], first.manifest, command="voiceover", force=False, resume=True)
    assert again.force(srt)


def test_a_changed_source_makes_a_complete_run_stale(tmp_path: Path) -> None:
    script = tmp_path / "clip.script.json"
    script.write_text('{"title": "t"}\n')
    out = tmp_path / "clip.narration.mp3"
    out.write_bytes(b"mp3")
    manifest = tmp_path / "clip.vnarrate.json"
    write_manifest(
        manifest,
        load_settings(),
        {},
        command="voiceover",
        input="clip.mp4",
        outputs=[record_output("audio", out)],
        sources=[source_file("script", script)],
    )
    assert manifest_complete(manifest, command="voiceover")
    script.write_text('{"title": "edited"}\n')
    assert not manifest_complete(manifest, command="voiceover")
