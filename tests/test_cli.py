"""CLI: the commands end to end in-process against a mocked API; exit codes and one-line errors
for every bad input; stdout carries only the product."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx2
import pytest
import respx
from _media import make_audio_only, make_video
from conftest import TEST_KEY, chat_response, run_cli

DESC = {"title": "Red, green and blue", "description": "A square slides across three colours."}


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    return TEST_KEY


def test_help_lists_commands_and_exit_codes() -> None:
    r = run_cli(["--help"])
    assert r.code == 0
    for word in ("describe", "voiceover", "script", "plan", "frames", "Exit codes", "130", "141"):
        assert word in r.out
    r = run_cli(["describe", "--help"])
    assert r.code == 0 and "--max-frames" in r.out and "--detail" in r.out


def _option_help(command: str, flag: str) -> str:
    """The help of one option of `command`, on one line (click wraps it)."""
    lines = run_cli([command, "--help"]).out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(flag + " "))
    text = [lines[start].strip()]
    for line in lines[start + 1 :]:
        if line.strip().startswith("-") or not line.startswith(" " * 10):
            break
        text.append(line.strip())
    return " ".join(text)


@pytest.mark.parametrize("command", ["describe", "script", "voiceover", "plan", "frames"])
def test_the_help_of_shared_options_is_true_for_every_command(command: str) -> None:
    """`--jobs` said "Inputs (and speech requests) at once" in frames and plan, which make no
    requests; plan's `--batch` said it sends the requests (it prices them)."""
    jobs = _option_help(command, "--jobs")
    assert "Inputs processed at once; for runs that call a server" in jobs
    if command != "frames":
        batch = _option_help(command, "--batch")
        assert "Send the" not in batch and "price them so" in batch.replace("- ", "-")


def test_plan_offers_what_changes_a_voiceovers_plan() -> None:
    flags = set(re.findall(r"(--[a-z-]+)", run_cli(["plan", "--help"]).out))
    wanted = {"--verify", "--wer-threshold", "--verify-onset", "--subtitles", "--voice",
              "--speed", "--tts-backend", "--tts-base-url", "--tts-model", "--realtime-model",
              "--stt-model", "--stt-base-url", "--transcribe", "--cache-dir", "--no-cache",
              "--over-speech", "--min-gap", "--words-per-second", "--prices", "--batch"}  # fmt: skip
    assert wanted <= flags, wanted - flags


def test_version() -> None:
    r = run_cli(["--version"])
    assert r.code == 0 and "vnarrate" in r.out


def test_describe_markdown_on_stdout(api: respx.Router, key: str, video: Path) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    r = run_cli(["describe", video, "--frames", "4"])
    assert r.code == 0, r
    assert r.out == "# Red, green and blue\n\nA square slides across three colours.\n"
    body = json.loads(route.calls[0].request.content)
    parts = body["messages"][1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 4
    assert body["model"] == "gpt-5.4-mini" and "max_completion_tokens" in body
    assert key not in r.out + r.err


def test_describe_json_and_output_file(
    api: respx.Router, key: str, video: Path, tmp_path: Path
) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    r = run_cli(["describe", video, "--json", "--frames", "3", "--no-cache"])
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc["title"] == DESC["title"] and doc["frames_sent"] == 3
    assert doc["model"] == "gpt-5.4-mini" and doc["usage"]["prompt_tokens"] == 1000
    out = tmp_path / "d.md"
    r = run_cli(["describe", video, "-o", out, "--no-cache"])
    assert r.code == 0 and r.out == "" and out.read_text().startswith("# Red")
    r = run_cli(["describe", video, "-o", out, "--no-cache"])
    assert r.code == 6 and "already exists" in r.err


def test_cache_makes_a_rerun_free(api: respx.Router, key: str, video: Path) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    assert run_cli(["describe", video, "--frames", "2"]).code == 0
    assert run_cli(["describe", video, "--frames", "2"]).code == 0
    assert route.call_count == 1
    assert run_cli(["describe", video, "--frames", "3"]).code == 0  # other frames: a new request
    assert route.call_count == 2


def test_missing_key_is_a_config_error(video: Path) -> None:
    r = run_cli(["describe", video])
    assert r.code == 3
    assert "OPENAI_API_KEY" in r.err and "--api-key" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_frames_offline(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    r = run_cli(["frames", video, "-o", out, "--every", "0.5"])
    assert r.code == 0, r
    doc = json.loads((out / "frames.json").read_text())
    assert len(doc["frames"]) == 6
    assert (out / "contact_sheet.jpg").stat().st_size > 1000
    for rec in doc["frames"]:
        assert (out / rec["file"]).is_file()
    times = [rec["time_s"] for rec in doc["frames"]]
    assert times == sorted(times)
    assert run_cli(["frames", video, "-o", out]).code == 6
    assert run_cli(["frames", video, "-o", out, "--force"]).code == 0


def _text_mp4(tmp: Path) -> Path:
    p = tmp / "notes.mp4"
    p.write_text("this is not a video\n")
    return p


def _truncated(tmp: Path) -> Path:
    full = make_video(tmp / "full.mp4", seconds=2.0)
    cut = tmp / "truncated.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    return cut


def _empty(tmp: Path) -> Path:
    p = tmp / "empty.mp4"
    p.write_bytes(b"")
    return p


def _zero_frames(tmp: Path) -> Path:
    # A real MP4 header whose video samples were wiped: it opens but nothing decodes.
    full = make_video(tmp / "full2.mp4", seconds=1.0)
    data = bytearray(full.read_bytes())
    at = data.find(b"mdat")
    for i in range(at + 4, len(data)):
        data[i] = 0
    p = tmp / "zero.mp4"
    p.write_bytes(bytes(data))
    return p


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda t: t / "missing.mp4", "no such file"),
        (lambda t: t, "no video files found"),
        (_empty, "empty"),
        (_text_mp4, ""),
        (_truncated, ""),
        (_zero_frames, ""),
        (lambda t: make_audio_only(t / "sound.m4a"), "no video"),
    ],
    ids=["missing", "directory", "empty", "text-as-mp4", "truncated", "zero-frames", "audio-only"],
)
def test_bad_inputs_exit_4_with_one_line(tmp_path: Path, key: str, make, words: str) -> None:
    path = make(tmp_path)
    r = run_cli(["describe", path])
    assert r.code == 4, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vnarrate: error:"), r.err
    assert words in lines[0].lower()
    assert "Traceback" not in r.err and r.out == ""


def test_one_frame_video_works(api: respx.Router, key: str, tmp_path: Path) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    one = make_video(tmp_path / "one.mp4", seconds=0.1, fps=10)
    r = run_cli(["describe", one, "--json", "--no-cache"])
    assert r.code == 0, r
    assert json.loads(r.out)["frames_sent"] == 1


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--stride", "0"], "--stride"),
        (["--frames", "-3"], "--frames"),
        (["--resize", "5"], "--resize"),
        (["--detail", "ultra"], "--detail"),
        (["--jobs", "100000"], "--jobs"),
        (["--frames", "3", "--every", "2"], "--frames"),
    ],
)
def test_bad_flags_exit_2(video: Path, key: str, args: list[str], flag: str) -> None:
    r = run_cli(["describe", video, *args])
    assert r.code == 2, r
    assert flag in r.err and len(r.err.strip().splitlines()) == 1


def test_api_errors_exit_5(api: respx.Router, key: str, video: Path) -> None:
    api.post("/chat/completions").respond(401, json={"error": {"message": "bad key"}})
    r = run_cli(["describe", video, "--max-retries", "0", "--no-cache"])
    assert r.code == 5 and "401" in r.err and TEST_KEY not in r.err


def test_batch_keeps_going_and_reports_jsonl(api: respx.Router, key: str, tmp_path: Path) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    a = make_video(tmp_path / "a.mp4", seconds=1.0)
    missing = tmp_path / "nope.mp4"
    b = make_video(tmp_path / "b.mp4", seconds=1.0)
    r = run_cli(["describe", a, missing, b, "--json", "--frames", "2"])
    assert r.code == 4
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [row["status"] for row in rows] == ["ok", "error", "ok"]
    assert rows[1]["exit_code"] == 4 and "no such file" in rows[1]["error"]
    assert "3 inputs: 2 ok, 1 failed" in r.err


def test_paths_from_stdin(api: respx.Router, key: str, tmp_path: Path) -> None:
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    folder = tmp_path / "my vidéos"
    folder.mkdir()
    a = make_video(folder / "clip one.mp4", seconds=1.0)
    r = run_cli(["describe", "-", "--json", "--frames", "1"], stdin=f"{a}\n\n")
    assert r.code == 0, r
    assert json.loads(r.out)["input"] == str(a)


def test_voiceover_dry_run_with_a_script_plans_speech_only(video: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps(
            {
                "title": "t",
                "language": "en",
                "segments": [{"start_s": 0.5, "end_s": 2.0, "text": "Hello there."}],
            }
        )
    )
    r = run_cli(["voiceover", video, "--script", script, "--dry-run", "--json"])
    assert r.code == 0, r  # no key needed, no request made (no route is mocked)
    plan = json.loads(r.out)["plan"]
    assert plan["requests"] == [] and plan["speech_characters"] == len("Hello there.")
    assert plan["speech_cost_usd"] is not None and plan["speech_cost_usd"] > 0


def test_plan_packs_frames_like_the_run_for_one_image_servers(video: Path) -> None:
    r = run_cli(
        ["plan", video, "--json", "--frames", "6", "--base-url", "http://localhost:8000/v1"]
    )
    assert r.code == 0, r
    plan = json.loads(r.out)["plan"]
    assert plan["provider"] == "vllm"
    # vLLM takes one image per request: the six frames travel as one contact sheet, as they
    # would in `describe`, not as six requests.
    assert [req["images"] for req in plan["requests"]] == [1]


def test_voiceover_budget_counts_the_speech(api: respx.Router, key: str, video: Path) -> None:
    # No route is mocked: a request would fail the test. The speech model has no price, so a
    # voiceover budget cannot be checked and is refused before anything is sent.
    r = run_cli(["voiceover", video, "--max-cost", "100", "--tts-model", "no-such-tts"])
    assert r.code == 3, r
    assert "no-such-tts" in r.err


def test_plan_refuses_images_in_one_line(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    r = run_cli(["plan", photo])
    assert r.code == 4, r
    assert "takes videos" in r.err and len(r.err.strip().splitlines()) == 1


def test_long_video_chunks_are_asked_at_once_then_merged(
    api: respx.Router, key: str, video: Path
) -> None:
    parts = [{"title": f"Part {i}", "description": f"Colour {i}."} for i in (1, 2, 3)]
    merged = {"title": "Three colours", "description": "Red, then green, then blue."}

    def answer(request: httpx2.Request) -> respx.MockResponse:
        body = json.loads(request.content)
        text = json.dumps(body["messages"])
        if "consecutive parts" in text:
            return respx.MockResponse(200, json=chat_response(merged))
        n = int(text.split("This is part ")[1][0])
        return respx.MockResponse(200, json=chat_response(parts[n - 1]))

    route = api.post("/chat/completions").mock(side_effect=answer)
    args = ["--frames", "6", "--max-images-per-request", "2", "--pack", "none", "--json"]
    r = run_cli(["describe", video, *args])
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc["title"] == "Three colours" and doc["requests"] == 4
    bodies = [json.loads(c.request.content) for c in route.calls]
    chunked = [b for b in bodies if "This is part" in json.dumps(b["messages"])]
    assert len(chunked) == 3
    for b in chunked:  # each part stands alone: no part waits for another's answer
        assert sum(p["type"] == "image_url" for p in b["messages"][1]["content"]) == 2
        assert "Colour" not in json.dumps(b["messages"])
    merge = next(b for b in bodies if "consecutive parts" in json.dumps(b["messages"]))
    text = merge["messages"][1]["content"]
    assert text.index("Colour 1") < text.index("Colour 2") < text.index("Colour 3")


def test_a_panorama_is_warned_about(tmp_path: Path) -> None:
    strip = make_video(tmp_path / "strip.mp4", seconds=1.0, fps=5, size=(2000, 40))
    r = run_cli(["plan", strip, "--frames", "1"])
    assert r.code == 0, r
    assert "warning: " in r.err and "too thin" in r.err and "768x15" in r.out


def test_every_listed_command_is_found_by_its_name() -> None:
    from vnarrate.cli.commands import BY_NAME
    from vnarrate.cli.texts import COMMANDS

    assert set(BY_NAME) == set(COMMANDS)
    assert all(BY_NAME[name].name == name for name in COMMANDS)
