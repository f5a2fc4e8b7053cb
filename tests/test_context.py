"""What the user knows about a video (vision/context.py): --context, --context-file and
VIDEO.context.md beside the video, in that order, cut when long, and into every prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import respx
from conftest import TEST_KEY, chat_response, run_cli

from vnarrate.errors import ConfigError
from vnarrate.vision.context import MAX_CONTEXT_CHARS, beside, context_for, read_context_file

DESC = {"title": "A clip", "description": "Something happens."}


def test_the_given_text_comes_first_then_the_file_beside_the_video(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    assert beside(str(video)) == tmp_path / "clip.context.md"
    assert context_for(str(video), None) == (None, [])
    beside(str(video)).write_text("# Notes\n\nThe man in blue is  Ada.\n", encoding="utf-8")
    assert context_for(str(video), None) == ("# Notes The man in blue is Ada.", [])
    assert context_for(str(video), "Filmed in Oslo.") == ("Filmed in Oslo.", [])


def test_a_long_context_is_cut_and_an_unreadable_one_is_a_warning(tmp_path: Path) -> None:
    text, notes = context_for("clip.mp4", "word " * 2000)
    assert text is not None and len(text) <= MAX_CONTEXT_CHARS + 2 and text.endswith("…")
    assert notes and "only the first" in notes[0]
    video = tmp_path / "clip.mp4"
    beside(str(video)).write_bytes(b"\xff\xfe not utf-8 \xc3")
    text, notes = context_for(str(video), None)
    assert text is None and "going on without it" in notes[0]


def test_a_context_file_that_cannot_be_read_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_context_file(tmp_path / "missing.md")
    (tmp_path / "notes.md").write_text("Ada and Bo.", encoding="utf-8")
    assert read_context_file(tmp_path / "notes.md") == "Ada and Bo."


def prompt_text(route: respx.Route) -> str:
    return str(json.loads(route.calls[-1].request.content)["messages"][1]["content"][0]["text"])


def test_the_context_reaches_the_prompt_flag_over_file_over_beside(
    api: respx.Router, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    chat = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    beside(str(video)).write_text("Beside: a test pattern.", encoding="utf-8")
    notes = tmp_path / "notes.md"
    notes.write_text("File: squares by Ada.", encoding="utf-8")
    base = ["describe", video, "--frames", "2", "--no-cache"]
    assert run_cli(base).code == 0
    assert "What the user knows about this video" in prompt_text(chat)
    assert "Beside: a test pattern." in prompt_text(chat)
    assert run_cli([*base, "--context-file", notes]).code == 0
    assert "File: squares by Ada." in prompt_text(chat)
    assert run_cli([*base, "--context-file", notes, "--context", "Flag: Oslo."]).code == 0
    assert "Flag: Oslo." in prompt_text(chat) and "Ada" not in prompt_text(chat)
    r = run_cli([*base, "--context-file", tmp_path / "nope.md"])
    assert r.code == 3 and "context file" in r.err and len(chat.calls) == 3


def test_the_plan_counts_the_contexts_tokens(api: respx.Router, video: Path) -> None:
    plain = json.loads(run_cli(["plan", video, "--frames", "2", "--json"]).out)["plan"]
    told = run_cli(["plan", video, "--frames", "2", "--json", "--context", "word " * 200])
    assert json.loads(told.out)["plan"]["input_tokens"] >= plain["input_tokens"] + 190
    assert not api.calls
