"""Load: a batch of 100 inputs with --jobs 8 against a mocked API that fails 10 of them (keyed by
input, so a rerun can succeed): the 90 succeed, the 10 are reported one JSONL line each, the exit
code says so, and a rerun with --skip-existing asks the API only about the 10 (decided by the run
manifests, which also catch outputs changed or removed since)."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from pathlib import Path

import cv2
import httpx2
import numpy as np
import pytest
import respx
from _media import make_video
from conftest import TEST_KEY, chat_response, run_cli

N = 100
FAILING = {i for i in range(N) if i % 10 == 3}  # 10 inputs, spread through the batch
FAIL_WIDTH = 96  # the failing inputs are wider, which the mocked API can see in the image
DESC = {"title": "A small clip", "description": "A grey square slides over red."}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 tiny clips: two generated (0.5 s, 64x48 and 96x48), copied under distinct names."""
    root = tmp_path_factory.mktemp("load")
    ok = make_video(root / "ok.mp4", seconds=0.5, size=(64, 48))
    bad = make_video(root / "bad.mp4", seconds=0.5, size=(FAIL_WIDTH, 48))
    folder = root / "videos"
    folder.mkdir()
    for i in range(N):
        shutil.copyfile(bad if i in FAILING else ok, folder / f"clip_{i:03d}.mp4")
    return folder


def _image_width(request: httpx2.Request) -> int:
    body = json.loads(request.content)
    parts = body["messages"][1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    jpeg = base64.b64decode(url.split(",", 1)[1])
    return int(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[1])


class FlakyApi:
    """Answers describe requests; while `failing`, a request from a wide input gets a 400.
    Records how many requests were in flight at once."""

    def __init__(self) -> None:
        self.failing = True
        self.widths: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> respx.MockResponse:
        width = _image_width(request)
        with self._lock:
            self.widths.append(width)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(0.01)  # long enough for requests to overlap
            if self.failing and width == FAIL_WIDTH:
                return respx.MockResponse(
                    400, json={"error": {"message": "injected failure", "code": "test"}}
                )
            return respx.MockResponse(200, json=chat_response(DESC))
        finally:
            with self._lock:
                self.in_flight -= 1


def _rows(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_100_inputs_with_failures_then_a_rerun_of_only_the_failures(
    api: respx.Router, batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    flaky = FlakyApi()
    route = api.post("/chat/completions").mock(side_effect=flaky)
    out = tmp_path / "out"
    args = [
        "describe", batch, "--out-dir", out, "--jobs", "8", "--json", "--frames", "1",
        "--no-cache", "--max-retries", "0", "--skip-existing",
    ]  # fmt: skip
    names = [f"clip_{i:03d}.mp4" for i in range(N)]

    # First run: 90 succeed, 10 fail, every input reported once, in input order.
    r = run_cli(args)
    assert r.code == 5, r  # the documented API-failure code (the first failed input's)
    rows = _rows(r.out)
    assert [Path(str(row["input"])).name for row in rows] == names
    failed = {i for i, row in enumerate(rows) if row["status"] == "error"}
    assert failed == FAILING
    assert all(rows[i]["status"] == "ok" for i in range(N) if i not in FAILING)
    for i in FAILING:
        assert rows[i]["exit_code"] == 5 and "injected failure" in str(rows[i]["error"])
        assert "outputs" not in rows[i]
    assert route.call_count == N  # --no-cache: every input asked once; 400s are not retried
    assert 1 < flaky.max_in_flight <= 8  # concurrent, and bounded by --jobs
    assert sorted(flaky.widths).count(FAIL_WIDTH) == len(FAILING)
    errors = [ln for ln in r.err.splitlines() if ln.startswith("vnarrate: error:")]
    assert len(errors) == len(FAILING) and all("injected failure" in ln for ln in errors)
    assert f"{N} inputs: {N - len(FAILING)} ok, {len(FAILING)} failed" in r.err
    manifests = sorted(p.name for p in out.glob("*.describe.vnarrate.json"))
    assert manifests == [
        f"clip_{i:03d}.describe.vnarrate.json" for i in range(N) if i not in FAILING
    ]
    assert len(list(out.glob("*.description.json"))) == N - len(FAILING)

    # Rerun: the API is asked only about the 10, which now succeed.
    flaky.failing = False
    flaky.widths.clear()
    route.reset()
    r = run_cli(args)
    assert r.code == 0, r
    rows = _rows(r.out)
    assert [Path(str(row["input"])).name for row in rows] == names
    assert {i for i, row in enumerate(rows) if row["status"] == "ok"} == FAILING
    assert all(rows[i]["status"] == "skipped" for i in range(N) if i not in FAILING)
    assert route.call_count == len(FAILING)
    assert flaky.widths == [FAIL_WIDTH] * len(FAILING)
    assert f"{N} inputs: {len(FAILING)} ok, {N - len(FAILING)} skipped" in r.err
    assert len(list(out.glob("*.describe.vnarrate.json"))) == N

    # Third run: nothing to do, no request.
    route.reset()
    r = run_cli(args)
    assert r.code == 0 and route.call_count == 0, r
    assert all(row["status"] == "skipped" for row in _rows(r.out))

    # Skipping trusts the manifest's record of the outputs, not their mere existence: an output
    # edited, one removed, and a manifest removed are each redone (and need --force to replace
    # what is still there).
    (out / "clip_000.description.json").write_text('{"edited": true}\n')
    (out / "clip_001.description.json").unlink()
    (out / "clip_002.describe.vnarrate.json").unlink()
    route.reset()
    r = run_cli([*args, "--force"])
    assert r.code == 0, r
    redone = [Path(str(row["input"])).name for row in _rows(r.out) if row["status"] == "ok"]
    assert redone == ["clip_000.mp4", "clip_001.mp4", "clip_002.mp4"]
    assert route.call_count == 3
    assert json.loads((out / "clip_000.description.json").read_text())["title"] == DESC["title"]


def test_skip_existing_counts_only_the_same_commands_manifest(
    api: respx.Router, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A complete `describe` does not make `script` complete for the same input and folder."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    script = {
        "title": "t",
        "language": "en",
        "segments": [{"start_s": 0.0, "end_s": 0.9, "text": "Red."}],
    }

    def answer(request: httpx2.Request) -> respx.MockResponse:
        body = json.loads(request.content)
        name = body["response_format"]["json_schema"]["name"]
        return respx.MockResponse(200, json=chat_response(script if "Script" in name else DESC))

    route = api.post("/chat/completions").mock(side_effect=answer)
    clip = make_video(tmp_path / "clip.mp4", seconds=1.0)
    out = tmp_path / "out"
    common = ["--out-dir", out, "--skip-existing", "--json", "--no-cache", "--frames", "1"]
    assert run_cli(["describe", clip, *common]).code == 0
    r = run_cli(["script", clip, *common])
    assert r.code == 0 and _rows(r.out)[0]["status"] == "ok", r
    assert (out / "clip.script.json").is_file()
    assert route.call_count == 2
    r = run_cli(["script", clip, *common])
    assert r.code == 0 and _rows(r.out)[0]["status"] == "skipped", r
    assert route.call_count == 2
