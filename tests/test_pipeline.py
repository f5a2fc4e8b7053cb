"""Pipeline helpers that need no API: output naming, manifests, public settings, plans as text.
(The stages in order are exercised end to end in test_cli, test_voiceover and test_media.)"""

from __future__ import annotations

import json
from pathlib import Path

from vnarrate.models import Plan, PlannedRequest
from vnarrate.pipeline import (
    VoiceoverPaths,
    manifest_complete,
    manifest_suffix,
    public_settings,
    record_output,
    render_plan,
    write_manifest,
)
from vnarrate.settings import load_settings


def test_voiceover_paths_default_and_with_output(tmp_path: Path) -> None:
    p = VoiceoverPaths("clip", tmp_path)
    assert [x.name for x in p.products()] == [
        "clip.narration.mp3",
        "clip.srt",
        "clip.vtt",
        "clip.script.json",
    ]
    assert p.manifest.name == "clip.vnarrate.json"
    q = VoiceoverPaths("clip", None, audio=tmp_path / "sub" / "n.wav", subtitles=False)
    assert q.srt is None and q.vtt is None
    assert q.script is not None and q.script.parent == tmp_path / "sub"
    assert q.manifest.parent == tmp_path / "sub"  # everything beside the named audio


def test_manifest_complete_only_while_outputs_match(tmp_path: Path) -> None:
    out = tmp_path / "clip.narration.mp3"
    out.write_bytes(b"mp3 data")
    manifest = tmp_path / f"clip{manifest_suffix('voiceover')}"
    settings = load_settings(api_key="sk-test-SECRET-0123456789abcdef")
    write_manifest(
        manifest,
        settings,
        {"outputs": [record_output("audio", out).model_dump()]},
        command="voiceover",
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


def test_render_plan_mentions_what_a_person_needs() -> None:
    plan = Plan(
        input="clip.mp4", model="gpt-5.4-mini", duration_s=30, frame_times_s=[0.0, 15.0],
        frame_width=768, frame_height=432, image_tokens_per_frame=404, image_rule="rule",
        requests=[PlannedRequest(index=1, kind="frames", images=2, start_s=0, end_s=30,
                                 input_tokens=1000, expected_output_tokens=600)],
        input_tokens=1000, expected_output_tokens=600, chat_cost_usd=0.01,
        max_chat_cost_usd=0.05, cost_usd=0.01, max_cost_usd=0.05, prices_as_of="2026-11-24",
        notes=["a note"],
    )  # fmt: skip
    text = render_plan(plan)
    for part in ("2 at 768x432", "0:15.0", "request 1", "~1000 input", "$0.010", "a note"):
        assert part in text, part
