"""The Python API: the same settings, session and flows as the command line, from Python."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import respx
from conftest import TEST_KEY, chat_response
from test_voiceover import LINES, SCRIPT, FakeApi

import vnarrate
from vnarrate.errors import ConfigError, InputError, UsageError
from vnarrate.models import DescribeResult, Plan, ScriptResult, VoiceoverResult

DESC = {"title": "Three colours", "description": "A square slides across red, green and blue."}


def test_import_is_light_and_the_api_loads_on_use() -> None:
    code = "import sys, vnarrate; print('pydantic' in sys.modules); vnarrate.plan; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    with pytest.raises(AttributeError):
        vnarrate.nothing_here  # noqa: B018


def test_plan_is_offline_and_takes_settings_as_keywords(video: Path) -> None:
    plan = vnarrate.plan(video, task="voiceover", frames=4, model="gpt-4o")
    assert isinstance(plan, Plan)
    assert len(plan.frame_times_s) == 4 and plan.model == "gpt-4o" and plan.task == "voiceover"
    assert plan.speech_characters > 0


def test_describe_returns_the_result_and_writes_nothing(
    api: respx.Router, monkeypatch: pytest.MonkeyPatch, video: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    before = sorted(Path.cwd().iterdir())
    result = vnarrate.describe(video, frames=3)
    assert isinstance(result, DescribeResult)
    assert result.title == DESC["title"] and result.frames_sent == 3
    assert sorted(Path.cwd().iterdir()) == before
    body = json.loads(route.calls[0].request.content)
    assert sum(p["type"] == "image_url" for p in body["messages"][1]["content"]) == 3


def test_errors_are_the_exceptions_with_their_exit_codes(video: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        vnarrate.describe(video)  # no key
    assert exc.value.exit_code == 3
    with pytest.raises(InputError):
        vnarrate.plan(Path("missing.mp4"))
    with pytest.raises(
        UsageError, match="unknown setting 'max_framez' \\(did you mean 'max_frames'\\?\\)"
    ):
        vnarrate.describe(video, max_framez=3)  # a typo is not silently ignored
    with pytest.raises(UsageError, match=r"'bogus_option'$"):
        vnarrate.voiceover(video, bogus_option=True)


def test_write_script_then_voiceover_with_the_edited_script(
    api: respx.Router, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from _media import make_video

    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("VNARRATE_TTS_BACKEND", "speech")  # the endpoint FakeApi mocks
    fake = FakeApi(api, SCRIPT)
    clip = make_video(tmp_path / "clip.mp4", seconds=6.0, fps=10, cuts_s=(2.5, 4.5))
    made = vnarrate.write_script(clip, frames=3)
    assert isinstance(made, ScriptResult)
    assert [s.text for s in made.script.segments] == list(LINES)
    edited = tmp_path / "edited.json"
    edited.write_text(made.script.model_dump_json())
    result = vnarrate.voiceover(clip, script=edited, output=tmp_path / "out" / "n.wav")
    assert isinstance(result, VoiceoverResult)
    assert fake.chat.call_count == 1  # the script came from the file: no second vision call
    assert {o.kind for o in result.outputs} == {"audio", "srt", "vtt", "script", "timeline"}
    assert all(Path(o.path).parent == tmp_path / "out" for o in result.outputs)
    # Every output of the run is named after -o's audio file.
    assert {Path(o.path).name for o in result.outputs} == {
        "n.wav", "n.srt", "n.vtt", "n.script.json", "n.timeline.png"
    }  # fmt: skip
    manifest = json.loads((tmp_path / "out" / "n.vnarrate.json").read_text())
    assert manifest["status"] == "complete" and manifest["command"] == "voiceover"
    assert manifest["sources"][0]["path"] == str(edited)  # the script it spoke
