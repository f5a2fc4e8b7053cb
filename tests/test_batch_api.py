"""--batch through the real entry point, against the Files and Batches endpoints mocked at the HTTP
layer (fake_batch.py): every request and every line of every uploaded file is validated against
the OpenAPI subset (conftest.validate_calls and the fake itself)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest
import respx
from _media import make_video
from conftest import TEST_KEY, run_cli
from fake_batch import FakeBatches, install

from vnarrate.models import Usage
from vnarrate.server.prices import chat_cost

FAST = ["--batch", "--batch-poll", "0.01"]


@pytest.fixture
def fake(api: respx.Router, monkeypatch: pytest.MonkeyPatch) -> FakeBatches:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    return install(api, FakeBatches())


@pytest.fixture
def chat(api: respx.Router) -> respx.Route:
    """The live chat endpoint: a --batch run must never call it."""
    return api.post("/chat/completions").mock(return_value=respx.MockResponse(500))


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    return [
        make_video(tmp_path / "a.mp4", seconds=3.0, cuts_s=(1.0, 2.0)),
        make_video(tmp_path / "b.mp4", seconds=2.0),
    ]


def _states(folder: Path) -> list[Path]:
    return sorted(folder.glob("vnarrate-batch-*.json"))


def _texts(fake: FakeBatches) -> list[str]:
    return [json.dumps(line["body"]["messages"]) for line in fake.lines]


def test_describe_in_batch_rounds_writes_every_output_and_fills_the_cache(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    chunked = ["--frames", "6", "--max-images-per-request", "2", "--pack", "none"]
    r = run_cli(["describe", *clips, *FAST, *chunked, "--out-dir", out, "--json"])
    assert r.code == 0, r
    assert not chat.called
    # Round 1: the three chunks of each video; round 2: one merge per video.
    assert fake.created == 2 and len(fake.lines) == 8 and not fake.errors
    assert sum("consecutive parts" in t for t in _texts(fake)) == 2
    assert "batch_1: completed, 6/6 done" in r.err and "batch_2: completed, 2/2 done" in r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [row["status"] for row in rows] == ["ok", "ok"]
    usage = Usage(prompt_tokens=4000, completion_tokens=800, total_tokens=4800, requests=4)
    full = chat_cost("gpt-5.4-mini", usage)
    assert full is not None
    for row, clip in zip(rows, clips, strict=True):
        assert row["requests"] == 4 and row["usage"]["prompt_tokens"] == 4000
        assert row["cost_usd"] == pytest.approx(full / 2)  # the Batch API's half price
        manifest = json.loads((out / f"{clip.stem}.describe.vnarrate.json").read_text())
        assert manifest["cost_usd"] == pytest.approx(full / 2) and manifest["settings"]["batch"]
        doc = json.loads((out / f"{clip.stem}.description.json").read_text())
        assert doc["title"] == "A test video"
    assert not _states(out) and not list(out.glob("*.jsonl"))  # done: nothing left behind

    # The answers sit in the cache under a normal run's keys: no call, not even to chat.
    log = len(fake.log)
    again = run_cli(["describe", *clips, *chunked, "--out-dir", out, "--force", "--json"])
    assert again.code == 0, again
    assert not chat.called and len(fake.log) == log
    assert [json.loads(x)["cost_usd"] for x in again.out.splitlines()] == [0.0, 0.0]


def test_no_wait_submits_and_a_rerun_collects_without_submitting_again(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["describe", *clips, *FAST, "--frames", "2", "--out-dir", out]
    r = run_cli([*args, "--no-wait"])
    assert r.code == 0, r
    assert r.out.split() == ["batch_1"]
    assert "run the same command again" in r.err
    assert len(_states(out)) == 1 and not list(out.glob("*.md"))
    state = json.loads(_states(out)[0].read_text())
    assert [f["batch_id"] for f in state["files"]] == ["batch_1"]
    assert {r["status"] for r in state["requests"].values()} == {"sent"}

    r = run_cli(args)
    assert r.code == 0, r
    assert "resuming" in r.err
    assert fake.uploads == 1 and fake.created == 1 and not chat.called
    assert sorted(p.name for p in out.glob("*.md")) == ["a.description.md", "b.description.md"]
    assert not _states(out)


@pytest.mark.parametrize("killed", ["after the upload", "after the submission"])
def test_a_run_killed_before_it_wrote_down_an_id_looks_it_up(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path, killed: str
) -> None:
    out = tmp_path / "out"
    args = ["describe", clips[0], *FAST, "--frames", "2", "--out-dir", out]
    assert run_cli([*args, "--no-wait"]).code == 0
    (path,) = _states(out)
    state = json.loads(path.read_text())
    (f,) = state["files"]
    # What a run killed inside the call leaves: the intent written, the answer lost.
    if killed == "after the upload":
        f.update(step="uploading", file_id=None, batch_id=None)
        fake.batches.clear()  # it never got to submit
    else:
        f.update(step="submitting", batch_id=None)
    path.write_text(json.dumps(state))
    r = run_cli(args)
    assert r.code == 0, r
    assert fake.uploads == 1  # the uploaded file was found by its name
    assert fake.created == (2 if killed == "after the upload" else 1)  # never a second batch
    assert (out / "a.description.md").is_file() and not chat.called


def test_a_state_file_is_never_taken_for_another_run(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["describe", clips[0], *FAST, "--out-dir", out]
    assert run_cli([*args, "--frames", "2", "--no-wait"]).code == 0
    (first,) = _states(out)
    # Other settings that shape the requests: another state file, the first left alone.
    r = run_cli([*args, "--frames", "3"])
    assert r.code == 0 and "resuming" not in r.err
    assert _states(out) == [first] and fake.created == 2
    first.write_text("{not json")
    r = run_cli([*args, "--frames", "2"])
    assert r.code == 3 and "is damaged" in r.err and "delete it" in r.err
    assert fake.created == 2


def test_a_failed_line_fails_only_its_input_and_a_rerun_sends_only_it(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    def fail_b(custom_id: str, body: dict[str, Any]) -> tuple[int, str] | None:
        return (400, "injected failure") if "0:02.0" in json.dumps(body["messages"]) else None

    fake.fail_line = fail_b
    out = tmp_path / "out"
    args = ["describe", *clips, *FAST, "--frames", "2", "--out-dir", out, "--json"]
    r = run_cli(args)
    assert r.code == 5, r
    rows = {Path(x["input"]).name: x for x in map(json.loads, r.out.splitlines())}
    assert rows["a.mp4"]["status"] == "ok" and rows["b.mp4"]["status"] == "error"
    assert "injected failure" in rows["b.mp4"]["error"] and rows["b.mp4"]["exit_code"] == 5
    assert (out / "a.description.json").is_file() and not (out / "b.description.json").exists()
    assert len(_states(out)) == 1  # kept: the rerun knows a.mp4 is done

    fake.fail_line = None
    lines = len(fake.lines)
    r = run_cli(args)
    assert r.code == 0, r
    assert len(fake.lines) == lines + 1 and "0:02.0" in _texts(fake)[-1]  # only b.mp4's request
    assert (out / "b.description.json").is_file() and not _states(out) and not chat.called


def test_an_expired_batch_is_sent_again_on_the_next_run(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    fake.expire = {1}  # answers the first half of its lines, then expires
    out = tmp_path / "out"
    args = ["describe", *clips, *FAST, "--frames", "2", "--out-dir", out]
    r = run_cli(args)
    assert r.code == 5, r
    assert "batch_1: expired, 1/2 done" in r.err
    assert "expired before it answered" in r.err and "run the same command again" in r.err
    assert len(list(out.glob("*.md"))) == 1

    r = run_cli(args)
    assert r.code == 0, r
    assert fake.created == 2 and len(fake.lines) == 3  # the unanswered request, once more
    assert len(list(out.glob("*.md"))) == 2 and not chat.called


def test_a_batch_that_fails_validation_says_why(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    fake.reject = {1}
    r = run_cli(["describe", *clips, *FAST, "--frames", "2", "--out-dir", tmp_path / "o"])
    assert r.code == 5, r
    assert "refused batch batch_1: line 1: the file is not valid" in r.err
    assert not chat.called


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (respx.MockResponse(404, json={"error": {"message": "Not Found"}}), "answered 404"),
        (respx.MockResponse(200, text="<html>hello</html>"), "like the Batch API"),
    ],
)
def test_a_server_without_the_batch_api_is_refused_before_anything_is_built(
    api: respx.Router,
    monkeypatch: pytest.MonkeyPatch,
    clips: list[Path],
    tmp_path: Path,
    response: respx.MockResponse,
    reason: str,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    probe = api.get("/batches").mock(return_value=response)
    monkeypatch.chdir(tmp_path)
    r = run_cli(["describe", *clips, *FAST])
    assert r.code == 3, r
    assert probe.call_count == 1  # no retries
    assert reason in r.err and "--batch" in r.err and len(r.err.strip().splitlines()) == 1
    assert not _states(tmp_path) and not list(tmp_path.glob("*.jsonl"))


def test_input_files_are_split_by_size(
    fake: FakeBatches,
    chat: respx.Route,
    clips: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Lines here are ~4 kB (base64 frames count): a 10 kB limit holds two of them.
    limit = 10_000
    monkeypatch.setattr("vnarrate.server.batches.MAX_FILE_BYTES", limit)
    fake.max_file_bytes = limit  # the fake refuses anything larger
    args = ["--frames", "4", "--max-images-per-request", "1", "--pack", "none", "--resize", "96"]
    r = run_cli(["script", *clips, *FAST, *args, "--out-dir", tmp_path / "o"])
    assert r.code == 0, r
    assert "Batch API round 1: 8 request(s) in 4 file(s)" in r.err
    assert fake.created >= 4 and not fake.errors
    sizes = [f["bytes"] for f in fake.files.values() if f["purpose"] == "batch"]
    assert all(s <= limit for s in sizes)
    assert not chat.called


def test_plan_and_dry_run_show_the_batch_price_and_max_cost_uses_it(
    fake: FakeBatches, chat: respx.Route, clips: list[Path]
) -> None:
    clip = clips[0]
    normal = json.loads(run_cli(["plan", clip, "--json"]).out)["plan"]
    batch = json.loads(run_cli(["plan", clip, "--batch", "--json"]).out)["plan"]
    assert batch["chat_cost_usd"] == pytest.approx(normal["chat_cost_usd"] / 2)
    assert batch["max_cost_usd"] == pytest.approx(normal["max_cost_usd"] / 2)
    assert any("Batch API" in n for n in batch["notes"])
    dry = run_cli(["describe", clip, "--batch", "--dry-run", "--json"])
    assert json.loads(dry.out)["plan"]["cost_usd"] == pytest.approx(batch["cost_usd"])
    budget = str((normal["cost_usd"] + batch["cost_usd"]) / 2)  # between the two prices
    refused = run_cli(["describe", clip, "--max-cost", budget])
    assert refused.code == 3 and "exceeds --max-cost" in refused.err
    r = run_cli(["describe", clip, *FAST, "--max-cost", budget])
    assert r.code == 0, r
    assert fake.created == 1 and not chat.called


def test_voiceover_speaks_the_script_the_batch_wrote(
    api: respx.Router, fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    from fake_server import _pcm

    speech = api.post("/audio/speech").mock(
        side_effect=lambda req: respx.MockResponse(
            200, content=_pcm(json.loads(req.content)["input"], 2.5)
        )
    )
    api.get(url__regex=r"/models/").mock(
        return_value=respx.MockResponse(
            200, json={"id": "gpt-4o-mini-tts", "object": "model", "created": 0, "owned_by": "x"}
        )
    )
    out = tmp_path / "out"
    args = ["--frames", "2", "--out-dir", out, "--json", "--tts-backend", "speech"]
    r = run_cli(["voiceover", clips[0], *FAST, *args])
    assert r.code == 0, r
    assert speech.called and not chat.called and fake.created == 1
    row = json.loads(r.out)
    assert (out / "a.narration.mp3").is_file() and row["usage"]["requests"] == 1
    assert json.loads((out / "a.script.json").read_text())["title"] == "A test video"


def test_json_mode_repairs_a_bad_answer_in_a_second_round_as_a_live_run_would(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    def answer(body: dict[str, Any]) -> dict[str, Any] | str:
        if "That JSON is invalid" in json.dumps(body["messages"]):
            return {"title": "Fixed", "description": "Now it fits."}
        return 'Sure! {"title": "x"}'

    fake.answer = answer
    args = ["describe", clips[1], *FAST, "--frames", "2", "--structured", "json_object"]
    r = run_cli([*args, "--json"])
    assert r.code == 0, r
    row = json.loads(r.out)
    assert row["title"] == "Fixed" and row["requests"] == 2  # the answer and its repair
    assert fake.created == 2 and not chat.called
    first, repair = (line["body"] for line in fake.lines)
    assert first["response_format"] == {"type": "json_object"}
    assert repair["messages"][:-2] == first["messages"]
    assert repair["messages"][-2]["content"] == 'Sure! {"title": "x"}'


def test_batch_refuses_no_cache(
    fake: FakeBatches, chat: respx.Route, clips: list[Path], tmp_path: Path
) -> None:
    r = run_cli(["describe", clips[0], *FAST, "--no-cache", "--out-dir", tmp_path / "o"])
    assert r.code == 2 and "--no-cache" in r.err
    assert not fake.log


def _vnarrate(args: list[Any], url: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VNARRATE_"))}
    env.update(
        OPENAI_API_KEY=TEST_KEY,
        OPENAI_BASE_URL=url,
        VNARRATE_PROVIDER="openai",
        VNARRATE_CACHE_DIR=os.environ["VNARRATE_CACHE_DIR"],
        PYTHONUNBUFFERED="1",
    )
    cmd = [sys.executable, "-m", "vnarrate", *map(str, args)]
    return subprocess.Popen(cmd, env=env, cwd=cwd, text=True, stdout=PIPE, stderr=PIPE)


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_or_a_kill_while_waiting_then_the_same_command_resumes(
    clips: list[Path], tmp_path: Path
) -> None:
    from fake_server import serve

    out = tmp_path / "out"
    args = ["describe", *clips, *FAST, "--frames", "2", "--out-dir", out]
    with serve() as server:
        fake: FakeBatches = server.batches
        fake.hold = threading.Event()  # the batch stays in_progress until released

        def polled(n: int) -> Callable[[], bool]:
            return lambda: fake.calls("GET", "/batches/batch_1") >= n

        proc = _vnarrate(args, server.url, tmp_path)
        _until(polled(2))
        proc.send_signal(signal.SIGINT)  # Ctrl-C: stop waiting, leave the batch running
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, err
        assert "keep running on the server (batch_1)" in err
        assert "Run the same command again to resume" in err

        proc = _vnarrate(args, server.url, tmp_path)
        _until(polled(4))
        proc.kill()  # killed outright mid-wait: the state file was written before waiting
        proc.communicate(timeout=20)

        fake.hold.set()
        proc = _vnarrate(args, server.url, tmp_path)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "resuming" in err
        assert fake.uploads == 1 and fake.created == 1  # nothing uploaded or submitted twice
        assert len(fake.lines) == 2 and not fake.errors and not server.errors
        assert server.calls("/chat/completions") == 0
        assert sorted(p.name for p in out.glob("*.md")) == ["a.description.md", "b.description.md"]
        assert not _states(out)
