"""Run manifests: written last, no secrets, trusted only while the outputs still match."""

from __future__ import annotations

import json
from pathlib import Path

from vnarrate.runs.manifest import (
    manifest_complete,
    manifest_suffix,
    public_settings,
    record_output,
    write_manifest,
)
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
