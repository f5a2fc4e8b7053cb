"""`vnarrate script` end to end, in-process, against a mocked chat endpoint: where the script goes,
what the prompt asks for (style, language, word budgets), and what happens to a model's answer
before it is written (repair, and the one shortening request for lines over their budget)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import respx
from _media import make_video
from conftest import TEST_KEY, chat_response, run_cli

from vnarrate.models import Script
from vnarrate.vision.prompts import SCRIPT_STYLES

DURATION = 6.0
SCRIPT = {
    "title": "Three colours",
    "language": "en",
    "segments": [
        {"start_s": 0.5, "end_s": 2.3, "text": "A red field."},
        {"start_s": 2.5, "end_s": 4.3, "text": "Green now, and long."},
        {"start_s": 4.5, "end_s": 6.0, "text": "Blue at last."},
    ],
}
# 10 words for the 1.8 s slot at 2.5 s: its budget is floor(1.8 * 2.5 words/s * 0.9) = 4 words.
WORDY = "Green grass waves slowly in the warm summer wind today."


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    return TEST_KEY


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", seconds=DURATION, fps=10, cuts_s=(2.5, 4.5))


def answers(api: respx.Router, *contents: dict[str, Any]) -> respx.Route:
    """The chat route answering each request with the next of `contents`."""
    return api.post("/chat/completions").mock(
        side_effect=[respx.MockResponse(200, json=chat_response(c)) for c in contents]
    )


def body(route: respx.Route, n: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(route.calls[n].request.content)
    return result


def user_text(request: dict[str, Any]) -> str:
    content = request["messages"][1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p["type"] == "text")


def with_segment(index: int, **changes: Any) -> dict[str, Any]:
    script = json.loads(json.dumps(SCRIPT))
    script["segments"][index].update(changes)
    return script


def written(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


# --- where the script goes -----------------------------------------------------------------------


def test_writes_clip_script_json_and_a_manifest(api: respx.Router, key: str, clip: Path) -> None:
    route = answers(api, SCRIPT)
    r = run_cli(["script", clip, "--frames", "3"])
    assert r.code == 0, r
    assert r.out == ""
    assert "clip.script.json (3 segments)" in r.err
    assert sorted(p.name for p in Path.cwd().iterdir()) == [
        "clip.script.json",
        "clip.script.vnarrate.json",
    ]
    assert written(Path("clip.script.json")) == SCRIPT
    assert route.call_count == 1
    request = body(route)
    assert request["response_format"]["type"] == "json_schema"
    schema = request["response_format"]["json_schema"]["schema"]
    assert {"title", "language", "segments"} <= set(schema["properties"])
    assert sum(p["type"] == "image_url" for p in request["messages"][1]["content"]) == 3
    manifest = Path("clip.script.vnarrate.json").read_text()
    assert TEST_KEY not in manifest
    doc = json.loads(manifest)
    assert doc["command"] == "script" and doc["input"] == str(clip)
    assert [o["kind"] for o in doc["outputs"]] == ["script"]
    assert doc["usage"]["requests"] == 1


def test_dash_prints_the_script_and_writes_nothing(api: respx.Router, key: str, clip: Path) -> None:
    answers(api, SCRIPT)
    r = run_cli(["script", clip, "--frames", "3", "-o", "-"])
    assert r.code == 0, r
    assert json.loads(r.out) == SCRIPT
    assert list(Path.cwd().iterdir()) == []


def test_named_output_and_out_dir(api: respx.Router, key: str, clip: Path, tmp_path: Path) -> None:
    answers(api, SCRIPT, SCRIPT)
    r = run_cli(["script", clip, "--frames", "3", "-o", "mine.json"])
    assert r.code == 0, r
    assert written(Path("mine.json")) == SCRIPT
    assert Path("mine.script.vnarrate.json").is_file()  # named after -o
    r = run_cli(["script", clip, "--frames", "3", "--out-dir", tmp_path / "out"])
    assert r.code == 0, r
    assert written(tmp_path / "out" / "clip.script.json") == SCRIPT
    r = run_cli(["script", clip, "--frames", "3", "-o", "mine.json"])
    assert r.code == 6 and "already exists" in r.err


# --- the prompt ----------------------------------------------------------------------------------


def test_style_language_and_instructions_reach_the_prompt(
    api: respx.Router, key: str, clip: Path
) -> None:
    route = answers(api, SCRIPT, SCRIPT)
    assert run_cli(["script", clip, "--frames", "3", "-o", "-"]).code == 0
    default = body(route, 0)
    assert default["messages"][0]["content"] == SCRIPT_STYLES["documentary"]
    assert "Language: English" in user_text(default)

    r = run_cli(
        [
            "script",
            clip,
            "--frames",
            "3",
            "-o",
            "-",
            "--style",
            "audio-description",
            "--language",
            "de",
            "--instructions",
            "Name the colours.",
        ]
    )
    assert r.code == 0, r
    request = body(route, 1)
    system = request["messages"][0]["content"]
    assert system == SCRIPT_STYLES["audio-description"] and "audio description" in system
    text = user_text(request)
    assert "Language: de" in text and "Name the colours." in text
    # The prompt gives the duration, timestamps and a word budget per slot.
    assert "6.00 s" in text and "at most" in text and "words" in text
    assert "[0:01.0]" in text


# --- what happens to the model's answer ----------------------------------------------------------


def test_a_line_over_budget_is_shortened_by_one_more_request(
    api: respx.Router, key: str, clip: Path
) -> None:
    route = answers(
        api, with_segment(1, text=WORDY), {"lines": [{"id": 1, "text": "Green grass waves."}]}
    )
    r = run_cli(["script", clip, "--frames", "3", "--json"])
    assert r.code == 0, r
    assert route.call_count == 2
    shorten = body(route, 1)
    assert shorten["response_format"]["type"] == "json_schema"
    asked = user_text(shorten)
    assert WORDY in asked and "(4 words max)" in asked
    assert "A red field." not in asked  # only the line over budget is sent back
    script = written(Path("clip.script.json"))
    assert [s["text"] for s in script["segments"]] == [
        "A red field.",
        "Green grass waves.",
        "Blue at last.",
    ]
    assert [s["start_s"] for s in script["segments"]] == [0.5, 2.5, 4.5]
    record = json.loads(r.out)
    assert record["usage"]["requests"] == 2
    assert any("shortened 1 segment" in n for n in record["notes"])
    assert "still over budget" not in r.err


def test_a_line_still_over_budget_is_noted_and_not_asked_again(
    api: respx.Router, key: str, clip: Path
) -> None:
    route = answers(
        api,
        with_segment(1, text=WORDY),
        {"lines": [{"id": 1, "text": "Green grass waves slowly in the wind."}]},  # 7 > 4
    )
    r = run_cli(["script", clip, "--frames", "3"])
    assert r.code == 0, r
    assert route.call_count == 2  # one shortening request, no more
    assert "1 segment(s) still over budget" in r.err
    assert "vnarrate: warning:" in r.err
    script = written(Path("clip.script.json"))
    assert script["segments"][1]["text"] == "Green grass waves slowly in the wind."


def test_lines_within_budget_cost_no_shortening_request(
    api: respx.Router, key: str, clip: Path
) -> None:
    route = answers(api, SCRIPT)
    assert run_cli(["script", clip, "--frames", "3", "-o", "-"]).code == 0
    assert route.call_count == 1


def test_overlaps_and_out_of_range_segments_are_repaired(
    api: respx.Router, key: str, clip: Path
) -> None:
    messy = {
        "title": "Messy",
        "language": "en",
        "segments": [
            {"start_s": 4.5, "end_s": 9.0, "text": "Blue at last."},  # ends after the video
            {"start_s": 0.5, "end_s": 3.0, "text": "A red field."},  # overlaps the next
            {"start_s": 2.5, "end_s": 4.3, "text": "Green now."},
            {"start_s": 3.5, "end_s": 3.9, "text": "   "},  # empty
            {"start_s": 7.5, "end_s": 8.0, "text": "After the end."},  # outside the video
        ],
    }
    answers(api, messy)
    r = run_cli(["script", clip, "--frames", "3"])
    assert r.code == 0, r
    segs = written(Path("clip.script.json"))["segments"]
    assert [(s["start_s"], s["end_s"], s["text"]) for s in segs] == [
        (0.5, 2.5, "A red field."),
        (2.5, 4.3, "Green now."),
        (4.5, DURATION, "Blue at last."),
    ]
    for a, b in itertools.pairwise(segs):
        assert a["end_s"] <= b["start_s"]
    notes = (
        "dropped an empty segment",
        "dropped a segment starting after the video ends (7.5 s)",
        "sorted segments",
        "trimmed the overlap after 0.5 s",
    )
    for note in notes:
        assert note in r.err


def test_no_usable_segment_is_an_api_error(api: respx.Router, key: str, clip: Path) -> None:
    answers(api, {"title": "None", "language": "en", "segments": []})
    r = run_cli(["script", clip, "--frames", "3"])
    assert r.code == 5, r
    assert "no usable narration" in r.err
    assert list(Path.cwd().iterdir()) == []


# --- the format ----------------------------------------------------------------------------------


def test_schema_prints_the_shipped_json_schema_of_the_script_format() -> None:
    r = run_cli(["script", "--schema"])  # no input needed, like --help
    assert r.code == 0, r
    shipped = json.loads(r.out)
    assert shipped == {"$schema": "https://json-schema.org/draft/2020-12/schema",
                       **Script.model_json_schema()}, (
        "regenerate src/vnarrate/data/script.schema.json from models.Script"
    )  # fmt: skip
    assert shipped["required"] == ["title", "language", "segments"]


def test_a_written_script_validates_against_the_schema(
    api: respx.Router, key: str, clip: Path
) -> None:
    import jsonschema

    answers(api, SCRIPT)
    assert run_cli(["script", clip, "--frames", "3"]).code == 0
    schema = json.loads(run_cli(["script", "--schema"]).out)
    jsonschema.validate(written(Path("clip.script.json")), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"title": "t", "segments": []}, schema)  # no language
