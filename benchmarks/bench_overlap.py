"""Benchmark of a long video described in several requests: decoding and requests one after the
other (before) against overlapped (after), with a local OpenAI-compatible server that answers
every request after a fixed latency (tests/fake_server.py, 2 s by default).

    python benchmarks/bench_overlap.py                   # 3 rounds, the 2-hour clip, --jobs 4 and 2
    python benchmarks/bench_overlap.py --rounds 1 --latency 2 --jobs 4

Every variant runs in a process of its own (the real command line); the variants of a table run
interleaved, round after round, and each cell is the median, so they are measured side by side
under the same load. The clip is generated into benchmarks/out/ (gitignored) and reused: the
1-hour 180p H.264 clip of bench_frames.py, twice over (packets copied).

The variants:
- frames: `vnarrate frames CLIP SAMPLING`: the decoding alone (with the JPEGs written);
- before: `vnarrate describe CLIP SAMPLING ASK` with the flows' `overlap` off: every frame is
  decoded, then the requests are asked (`--jobs` at a time), then the merge: the behaviour
  before requests overlapped decoding, with the same requests;
- after: `vnarrate describe CLIP SAMPLING ASK` as it is;
- ideal: frames + one request + the merge (2 x latency), computed.
"first request" is when the first chat request reached the server, from the process's start.
Needs the project's test dependencies (the fake server validates requests with them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_frames import OUT, generated, repeat_clip  # noqa: E402

CLIP_2H = "h264_180p_2h.mp4"
SAMPLING = ["--every", "5", "--max-frames", "1440"]  # 1,440 frames, one every 5 s
ASK = ["--max-images-per-request", "60", "--pack", "none", "--provider", "compatible"]
# The flows with overlap off: the same command line, every frame decoded before any request.
BEFORE = (
    "import functools, sys\n"
    "from vnarrate import pipeline\n"
    "from vnarrate.runs import jobs\n"
    "jobs.describe_flow = functools.partial(pipeline.describe, overlap=False)\n"
    "from vnarrate.cli import main\n"
    "sys.argv[0] = 'vnarrate'\n"
    "main()\n"
)


def clip_2h() -> Path:
    path = OUT / CLIP_2H
    if not path.exists():
        one = generated("h264_180p_1h.mp4")
        print(f"generating {path} ...", file=sys.stderr, flush=True)
        repeat_clip(one, path, 2)
    return path


class Server:
    """The fake OpenAI server in this process, noting when each chat request arrives."""

    def __init__(self, latency: float) -> None:
        from fake_server import serve

        self._cm = serve()
        self.state = self._cm.__enter__()
        self.state.latency_s = latency
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

        def note(path: str, body: dict[str, Any]) -> None:
            if path.endswith("/chat/completions"):
                with self._lock:
                    self.arrivals.append(time.perf_counter())

        self.state.fault = note

    def reset(self) -> None:
        with self._lock:
            self.arrivals.clear()
        self.state.log.clear()

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def measure(kind: str, clip: Path, server: Server, jobs: int) -> dict[str, Any]:
    """One run in a fresh process: wall, CPU and peak memory; the chat requests it made."""
    with tempfile.TemporaryDirectory(prefix="bench-overlap-") as tmp:
        env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "VNARRATE_CACHE_DIR": tmp}
        if kind == "frames":
            cmd = [sys.executable, "-m", "vnarrate", "frames", str(clip), "-o", f"{tmp}/f"]
            cmd += SAMPLING
        else:
            head = ["-c", BEFORE] if kind == "before" else ["-m", "vnarrate"]
            cmd = [sys.executable, *head, "describe", str(clip), *SAMPLING, *ASK]
            cmd += ["--base-url", server.state.url, "--jobs", str(jobs), "--no-cache", "--json"]
        server.reset()
        with open(f"{tmp}/err", "w+b") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
            out = proc.stdout.read() if proc.stdout else b""
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            if os.waitstatus_to_exitcode(status) != 0:
                err.seek(0)
                raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{err.read().decode()}")
        result: dict[str, Any] = {
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "mb": usage.ru_maxrss / 1024,
        }
        if kind != "frames":
            doc = json.loads(out.decode().strip().splitlines()[-1])
            result.update(requests=doc["requests"], frames=doc["frames_sent"], title=doc["title"])
            result["first"] = min(server.arrivals) - t0
            result["sizes"] = sorted(len(json.dumps(b)) for _, b in server.state.log)
        return result


def rounds(clip: Path, server: Server, jobs: int, n: int) -> dict[str, dict[str, Any]]:
    runs: dict[str, list[dict[str, Any]]] = {"frames": [], "before": [], "after": []}
    for r in range(n):
        for kind in runs:
            runs[kind].append(measure(kind, clip, server, jobs))
        print(f"  --jobs {jobs}: round {r + 1}/{n} done", file=sys.stderr, flush=True)
    before, after = runs["before"][-1], runs["after"][-1]
    # The same requests either way: as many, and the same bodies (by size; the answers are
    # the fake server's).
    assert before["requests"] == after["requests"] and before["sizes"] == after["sizes"]
    assert before["frames"] == after["frames"] and before["title"] == after["title"]
    out = {}
    for kind, rs in runs.items():
        med = dict(rs[-1])
        for key in ("wall", "cpu", "mb", "first"):
            if key in med:
                med[key] = statistics.median(x[key] for x in rs)
        out[kind] = med
    return out


def table(results: dict[int, dict[str, dict[str, Any]]], latency: float) -> str:
    lines = [
        "| --jobs | requests | frames (decoding alone) | before: decode, then ask | "
        "after: overlapped | ideal: decode + 2 requests | first request, before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    for jobs, r in results.items():
        f, b, a = r["frames"], r["before"], r["after"]
        ideal = f["wall"] + 2 * latency
        lines.append(
            f"| {jobs} | {a['requests']} | {f['wall']:.1f} s | {b['wall']:.1f} s "
            f"({b['mb']:.0f} MiB) | **{a['wall']:.1f} s** ({a['mb']:.0f} MiB) | {ideal:.1f} s | "
            f"{b['first']:.1f} s → {a['first']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", type=float, default=2.0, help="seconds per request")
    ap.add_argument("--jobs", type=int, nargs="+", default=[4, 2])
    ap.add_argument("--clip", type=Path, default=None, help="another clip (default: 2-hour)")
    args = ap.parse_args()
    clip = args.clip or clip_2h()
    server = Server(args.latency)
    try:
        results = {jobs: rounds(clip, server, jobs, args.rounds) for jobs in args.jobs}
    finally:
        server.close()
    print(f"{clip.name}, `{' '.join(SAMPLING + ASK)}`, {args.latency:g} s a request, "
          f"medians of {args.rounds} rounds (process wall time, peak memory):\n")  # fmt: skip
    print(table(results, args.latency))


if __name__ == "__main__":
    main()
