"""Streaming (vision/stream.py): a long video's requests leave while its later frames are decoded.

Through the real entry point, with the decoder watched (and held) at chosen frames: the first
request leaves before decoding ends; the run sends exactly what it sends without overlap, and what
`vnarrate plan` shows; frames are bucketed by their target, so a frame lost in decoding never
moves a request's bounds; and a failure on either side (a request, decoding, a refused budget, a
signal) stops the other, with no thread left running.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import respx
from _media import make_video
from conftest import TEST_KEY, chat_response, run_cli
from fake_server import serve

from vnarrate import pipeline
from vnarrate.errors import InputError
from vnarrate.models import Frame
from vnarrate.runs import jobs
from vnarrate.vision import stream as streaming
from vnarrate.vision.stream import FrameStream

# 8 frames, 2 a request: 4 requests (and a merge for a description).
CHUNKED = ["--frames", "8", "--max-images-per-request", "2", "--pack", "none"]
WAIT_S = 10.0  # a hold that is never released fails the test after this, rather than hang it
Hook = Callable[[Frame, FrameStream], None]


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    return TEST_KEY


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stream")
    return make_video(folder / "clip.mp4", seconds=8.0, fps=10, gop=10)


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    yield
    names = ("vnarrate-frames", "vnarrate-ask")
    assert not [t.name for t in threading.enumerate() if t.name.startswith(names)]


def watch(
    monkeypatch: pytest.MonkeyPatch,
    after: Hook | None = None,
    *,
    drop: Callable[[Frame], bool] | None = None,
) -> list[Frame]:
    """Watch the decoder: `after(frame, stream)` runs once the stream took each frame (it may
    hold decoding there, or raise as a decoder would); `drop` loses frames as if they failed to
    decode. Gives the frames the stream took."""
    real = streaming.sample_frames
    took: list[Frame] = []

    def sample(path: Any, spec: Any, *, progress: Any = None, keep: Any = None) -> Any:
        stream = keep.__self__

        def watched(frame: Frame) -> Frame:
            if drop is not None and drop(frame):
                return frame
            kept = keep(frame)
            took.append(frame)
            if after is not None:
                after(frame, stream)
            return kept

        return real(path, spec, progress=progress, keep=watched)

    monkeypatch.setattr(streaming, "sample_frames", sample)
    return took


def wait_until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def answer_by_part(request: httpx2.Request) -> respx.MockResponse:
    """Each part described as itself; the merge names the parts it was given, in order."""
    text = json.dumps(json.loads(request.content)["messages"])
    if "consecutive parts" in text:
        parts = [n for n in range(1, 9) if f"Part {n}." in text]
        merged = {"title": "All parts", "description": f"Parts {parts}."}
        return respx.MockResponse(200, json=chat_response(merged))
    n = int(text.split("This is part ")[1][0]) if "This is part " in text else 1
    return respx.MockResponse(
        200, json=chat_response({"title": f"P{n}", "description": f"Part {n}."})
    )


def images(body: dict[str, Any]) -> int:
    return sum(p["type"] == "image_url" for m in body["messages"] if isinstance(m["content"], list)
               for p in m["content"])  # fmt: skip


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in route.calls]


def test_the_first_request_leaves_while_later_frames_are_decoded(
    api: respx.Router, key: str, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = threading.Event()
    held: list[bool] = []

    def hold(frame: Frame, stream: FrameStream) -> None:
        if len(took) == 3:  # request 1's frames are all there: decoding waits for its request
            held.append(asked.wait(WAIT_S))

    took = watch(monkeypatch, hold)
    decoded_when_asked: list[int] = []

    def answer(request: httpx2.Request) -> respx.MockResponse:
        decoded_when_asked.append(len(took))
        asked.set()
        return answer_by_part(request)

    api.post("/chat/completions").mock(side_effect=answer)
    r = run_cli(["describe", clip, *CHUNKED, "--json"])
    assert r.code == 0, r
    assert held == [True] and decoded_when_asked[0] == 3 and len(took) == 8
    doc = json.loads(r.out)
    assert doc["requests"] == 5 and doc["description"] == "Parts [1, 2, 3, 4]."
    assert doc["frames_sent"] == 8 and len(doc["frame_times_s"]) == 8


@pytest.mark.parametrize("command", ["describe", "script"])
def test_the_run_sends_what_it_sends_without_overlap_and_what_the_plan_shows(
    api: respx.Router, key: str, clip: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    script = {"title": "T", "language": "en",
              "segments": [{"start_s": 0.5, "end_s": 1.5, "text": "A line."}]}  # fmt: skip

    def answer(request: httpx2.Request) -> respx.MockResponse:
        if command == "describe":
            return answer_by_part(request)
        return respx.MockResponse(200, json=chat_response(script))

    route = api.post("/chat/completions").mock(side_effect=answer)
    args = [command, clip, *CHUNKED, "--transcribe", "off", "--no-cache"]
    args += ["--json"] if command == "describe" else ["-o", "-"]  # the script on stdout
    overlapped = run_cli(args)
    assert overlapped.code == 0, overlapped
    sent = bodies(route)
    flow = pipeline.describe if command == "describe" else pipeline.write_script
    name = "describe_flow" if command == "describe" else "write_script"
    monkeypatch.setattr(jobs, name, functools.partial(flow, overlap=False))
    at_once = run_cli(args)
    assert at_once.code == 0, at_once
    assert overlapped.out == at_once.out
    key_of = functools.partial(json.dumps, sort_keys=True)
    assert sorted(map(key_of, sent)) == sorted(map(key_of, bodies(route)[len(sent) :]))
    # `vnarrate plan` shows these requests (without decoding a frame: the frames sampling will
    # give are known before).
    monkeypatch.setattr(streaming, "sample_frames", None)
    plan = run_cli(["plan", clip, *CHUNKED, "--json", "--task", command])
    assert plan.code == 0, plan
    planned = json.loads(plan.out)["plan"]["requests"]
    frames = [r for r in planned if r["kind"] == "frames"]
    assert sorted(r["images"] for r in frames) == sorted(images(b) for b in sent if images(b))
    assert len(planned) == len(sent)


def test_a_frame_lost_in_decoding_never_moves_the_requests(
    api: respx.Router, key: str, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = api.post("/chat/completions").mock(side_effect=answer_by_part)
    plan = json.loads(run_cli(["plan", clip, *CHUNKED, "--json"]).out)["plan"]
    second = plan["frame_times_s"][2]  # the first frame of request 2
    watch(monkeypatch, drop=lambda f: abs(f.time_s - second) < 0.05)
    r = run_cli(["describe", clip, *CHUNKED, "--json"])
    assert r.code == 0, r
    by_part = {int(json.dumps(b).split("This is part ")[1][0]): images(b)
               for b in bodies(route) if images(b)}  # fmt: skip
    assert by_part == {1: 2, 2: 1, 3: 2, 4: 2}
    assert json.loads(r.out)["frames_sent"] == 7


def test_a_request_left_without_frames_is_not_asked(
    api: respx.Router, key: str, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = api.post("/chat/completions").mock(side_effect=answer_by_part)
    times = json.loads(run_cli(["plan", clip, *CHUNKED, "--json"]).out)["plan"]["frame_times_s"]
    lost = times[2:4]  # both frames of request 2
    watch(monkeypatch, drop=lambda f: min(abs(f.time_s - t) for t in lost) < 0.05)
    r = run_cli(["describe", clip, *CHUNKED, "--json"])
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert doc["requests"] == 4 and doc["description"] == "Parts [1, 3, 4]."
    assert route.call_count == 4


def test_a_failed_request_stops_decoding_and_the_requests_not_yet_sent(
    api: respx.Router, key: str, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[bool] = []

    def hold(frame: Frame, stream: FrameStream) -> None:
        if len(took) == 3:  # request 1 can leave: decoding goes on only once the run stops it
            held.append(wait_until(lambda: stream.stopped))

    took = watch(monkeypatch, hold)
    failure = {"error": {"message": "the model is overloaded", "type": "server_error"}}
    route = api.post("/chat/completions").mock(return_value=respx.MockResponse(400, json=failure))
    r = run_cli(["describe", clip, *CHUNKED, "--jobs", "1"])
    assert r.code == 5, r
    assert "overloaded" in r.err and "Traceback" not in r.err
    assert held == [True] and len(took) == 3 and route.call_count == 1


def test_a_decoding_failure_stops_the_requests(
    api: respx.Router, key: str, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(frame: Frame, stream: FrameStream) -> None:
        if len(took) == 5:  # the first frame of request 3
            raise InputError(f"{clip}: the disk went away")

    took = watch(monkeypatch, fail)
    route = api.post("/chat/completions").mock(side_effect=answer_by_part)
    r = run_cli(["describe", clip, *CHUNKED])
    assert r.code == 4, r
    assert "the disk went away" in r.err and "Traceback" not in r.err
    # Requests 1 and 2 may have left (their frames were there); no other request, no merge.
    assert route.call_count <= 2
    assert all("consecutive parts" not in json.dumps(b) for b in bodies(route))


def test_a_refused_budget_sends_nothing_and_stops_decoding(
    api: respx.Router, key: str, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[bool] = []

    def hold(frame: Frame, stream: FrameStream) -> None:
        if len(took) == 1:
            held.append(wait_until(lambda: stream.stopped))

    took = watch(monkeypatch, hold)
    route = api.post("/chat/completions").mock(side_effect=answer_by_part)
    r = run_cli(["describe", clip, *CHUNKED, "--max-cost", "0.000001"])
    assert r.code == 3, r
    assert "exceeds --max-cost" in r.err
    # Decoding stopped at its first frame (or before it came).
    assert route.call_count == 0 and held in ([], [True]) and len(took) <= 1


def test_a_video_of_one_request_is_planned_from_its_decoded_frames(
    api: respx.Router, key: str, clip: Path
) -> None:
    api.post("/chat/completions").mock(side_effect=answer_by_part)
    plan = json.loads(run_cli(["plan", clip, "--frames", "4", "--json"]).out)["plan"]
    assert "planned before they are decoded" not in json.dumps(plan["notes"])
    r = run_cli(["describe", clip, "--frames", "4", "--json"])
    assert r.code == 0, r
    assert json.loads(r.out)["frame_times_s"] == plan["frame_times_s"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_a_streamed_run_at_once(clip: Path, tmp_path: Path, sig: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY="sk-test-stream", PYTHONUNBUFFERED="1")
    with serve() as server:
        server.latency_s = 5.0
        cmd = [sys.executable, "-m", "vnarrate", "describe", str(clip), *CHUNKED, "-v",
               "--base-url", server.url, "--provider", "openai", "--no-cache"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        seen = ""
        for line in proc.stderr:
            seen += line
            if "request 1/4" in line:
                break
        started = time.monotonic()
        proc.send_signal(sig)
        rest = proc.stderr.read()
        code = proc.wait(timeout=WAIT_S)
    assert code == 128 + sig, seen + rest
    assert time.monotonic() - started < 4.0  # not after the requests in flight
    # (-v lines already on their way may come before it)
    lines = rest.strip().splitlines()
    assert "Traceback" not in rest and [ln for ln in lines if "interrupt" in ln] == lines[-1:]
    assert f"interrupted ({signal.Signals(sig).name})" in lines[-1]
