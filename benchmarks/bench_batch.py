"""Benchmark: batch throughput (inputs per second) of `vnarrate describe FOLDER --jobs N` for
--jobs 1, 4 and 8, side by side, against a local chat endpoint with a fixed latency.

    /work/venv/bin/python benchmarks/bench_batch.py [--inputs 24] [--latency 0.5] [--repeat 3]

A real HTTP server on 127.0.0.1 (ThreadingHTTPServer, HTTP/1.1 keep-alive) answers
POST /v1/chat/completions after sleeping --latency seconds with a canned structured answer, and
counts the requests in flight. Each run is the real command in a fresh process
(`python -m vnarrate describe DIR --out-dir ... --json --no-cache --provider openai --base-url
http://127.0.0.1:PORT/v1`), so start-up, input listing, frame extraction, the SDK, httpx2,
outputs and manifests are all on the measured path. The inputs are --inputs copies of one
generated 0.5 s 64x48 clip under distinct names. The --jobs values are interleaved within each
repeat so that machine load affects them alike. Prints a markdown table (medians) for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _media import make_video

ANSWER = {"title": "A small clip", "description": "A grey square slides over a red field."}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    latency_s: ClassVar[float] = 0.5
    lock: ClassVar[threading.Lock] = threading.Lock()
    in_flight: ClassVar[int] = 0
    max_in_flight: ClassVar[int] = 0
    requests: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        cls = type(self)
        with cls.lock:
            cls.requests += 1
            cls.in_flight += 1
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
        try:
            time.sleep(cls.latency_s)
            doc = _completion(body.get("model", "gpt-5.4-mini"))
        finally:
            with cls.lock:
                cls.in_flight -= 1
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": json.dumps(ANSWER), "refusal": None},
            }
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340},
    }


def run(folder: Path, out: Path, jobs: int, url: str, latency: float) -> tuple[float, int]:
    """(wall seconds, max requests in flight) for one whole `vnarrate describe` process."""
    _Handler.latency_s = latency
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VNARRATE_"))}
    env["OPENAI_API_KEY"] = "sk-bench-not-a-key"
    cmd = [
        sys.executable, "-m", "vnarrate", "describe", str(folder), "--out-dir", str(out),
        "--json", "--no-cache", "--frames", "1", "--jobs", str(jobs), "--provider", "openai",
        "--base-url", url, "--max-retries", "0",
    ]  # fmt: skip
    _Handler.max_in_flight = 0
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"vnarrate failed ({done.returncode}): {done.stderr[-2000:]}")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == len(list(folder.iterdir())) and all(r["status"] == "ok" for r in rows)
    return wall, _Handler.max_in_flight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per request")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"

    walls: dict[int, list[float]] = {j: [] for j in args.jobs}
    bare: dict[int, list[float]] = {j: [] for j in args.jobs}  # the same with no latency
    peaks: dict[int, int] = dict.fromkeys(args.jobs, 0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = make_video(root / "clip.mp4", seconds=0.5, size=(64, 48))
        folder = root / "videos"
        folder.mkdir()
        for i in range(args.inputs):
            shutil.copyfile(clip, folder / f"clip_{i:03d}.mp4")
        run(folder, root / "out", max(args.jobs), url, 0.0)  # warm-up: caches, bytecode
        for _ in range(args.repeat):
            for jobs in args.jobs:
                wall, peak = run(folder, root / "out", jobs, url, args.latency)
                walls[jobs].append(wall)
                peaks[jobs] = max(peaks[jobs], peak)
                bare[jobs].append(run(folder, root / "out", jobs, url, 0.0)[0])
    server.shutdown()

    print(
        f"{args.inputs} inputs (0.5 s 64x48 clips, 1 frame each), chat latency "
        f"{args.latency:.2f} s per request, median of {args.repeat} runs, whole process\n"
    )
    print(
        "| --jobs | wall (s) | inputs/s | speed-up | requests in flight (max) "
        "| latency floor (s) | same run, no latency (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    base = statistics.median(walls[min(args.jobs)])
    for jobs in args.jobs:
        wall = statistics.median(walls[jobs])
        rounds = -(-args.inputs // jobs)
        print(
            f"| {jobs} | {wall:.2f} | {args.inputs / wall:.2f} | {base / wall:.1f}x "
            f"| {peaks[jobs]} | {rounds * args.latency:.2f} | {statistics.median(bare[jobs]):.2f} |"
        )


if __name__ == "__main__":
    main()
