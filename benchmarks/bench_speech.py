"""Benchmark: speaking a 10-segment script with --jobs 1 vs the default, against a local
speech endpoint that answers every request after 1 s (a stand-in for TTS latency).

    /work/venv/bin/python benchmarks/bench_speech.py [--repeat 3] [--jobs 1 4 8 10]

A real HTTP server on 127.0.0.1 (ThreadingHTTPServer, HTTP/1.1 keep-alive) answers
POST /v1/audio/speech with 2.5 s of 24 kHz PCM after sleeping; the OpenAI client points its
base_url at it, so the SDK, httpx2 and our SpeechEndpointBackend are all on the measured path.
Each run then fits the clips to a 60 s timeline and encodes the mp3, as `voiceover` does.
Prints a markdown table (median wall times) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import openai
from vnarrate.audio import encode_audio, fit_timeline
from vnarrate.speech import SAMPLE_RATE, SpeechEndpointBackend, SpeechOptions, synthesize_all

from vnarrate.models import Clip, Segment
from vnarrate.settings import Settings

LATENCY_S = 1.0
CLIP_S = 2.5
SEGMENTS = 10
VIDEO_S = 60.0


def _pcm(index: int) -> bytes:
    """2.5 s of tone whose pitch encodes the segment index (to check the order came back)."""
    t = np.arange(round(CLIP_S * SAMPLE_RATE)) / SAMPLE_RATE
    wave = 0.3 * np.sin(2 * math.pi * (200 + 20 * index) * t)
    return (wave * 32767).astype("<i2").tobytes()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        time.sleep(LATENCY_S)
        index = int(body["input"].split("#")[1].split(":")[0])
        data = _pcm(index)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _script() -> list[Segment]:
    step = VIDEO_S / SEGMENTS
    return [
        Segment(
            start_s=i * step,
            end_s=(i + 1) * step,
            text=f"Segment #{i}: the heron waits in the shallows for a fish to pass.",
        )
        for i in range(SEGMENTS)
    ]


def run(client: openai.OpenAI, jobs: int, out_dir: Path) -> tuple[float, float]:
    """(speech seconds, whole voiceover seconds) for one run."""
    segments = _script()
    options = SpeechOptions(model="gpt-4o-mini-tts", voice="onyx")
    t0 = time.perf_counter()
    synths = synthesize_all(
        SpeechEndpointBackend(client), [s.text for s in segments], options, jobs=jobs
    )
    t_speech = time.perf_counter() - t0
    assert [s.pcm[:200] for s in synths] == [_pcm(i)[:200] for i in range(SEGMENTS)], "order"
    clips = [Clip(segment=i, text=segments[i].text, pcm=s.pcm) for i, s in enumerate(synths)]
    track, _ = fit_timeline(segments, clips, VIDEO_S, resynthesize=None)
    encode_audio(track, SAMPLE_RATE, out_dir / f"jobs{jobs}.mp3", force=True)
    return t_speech, time.perf_counter() - t0


def main() -> None:
    default_jobs = Settings.model_fields["jobs"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=sorted({1, default_jobs, 8, 10}))
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = openai.OpenAI(
        api_key="sk-bench-not-a-key",
        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
        max_retries=0,
        timeout=30,
    )
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run(client, max(args.jobs), Path(tmp))  # warm-up: imports, connections
        for jobs in args.jobs:
            times = [run(client, jobs, Path(tmp)) for _ in range(args.repeat)]
            results[jobs] = (
                statistics.median(t for t, _ in times),
                statistics.median(t for _, t in times),
            )
    server.shutdown()

    base_speech, base_total = results[min(results)]
    print(
        f"{SEGMENTS} segments, endpoint latency {LATENCY_S:.1f} s per request, "
        f"median of {args.repeat} runs (default --jobs {default_jobs})\n"
    )
    print("| --jobs | speech (s) | speed-up | speech + fit + mp3 (s) | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    for jobs, (speech, total) in results.items():
        mark = " (default)" if jobs == default_jobs else ""
        print(
            f"| {jobs}{mark} | {speech:.2f} | {base_speech / speech:.1f}x "
            f"| {total:.2f} | {base_total / total:.1f}x |"
        )


if __name__ == "__main__":
    main()
