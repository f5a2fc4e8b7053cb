"""Benchmark: three ways to speak many segments over the Realtime API, against the local test
server (tests/realtime_server.py) with simulated connection and response latency.

    /work/venv/bin/python benchmarks/bench_realtime.py [--segments 24] [--jobs 4] [--repeat 3]

- per-segment: what RealtimeBackend does: a new WebSocket session per segment, `jobs` at a time
  (speech.synthesize_all's threads); session.update, the item and response.create sent at once.
- pooled: `jobs` long-lived sessions, each speaking its share of the segments one after another
  (conversation.item.create + response.create on the same session).
- multiplexed: one session, up to `jobs` out-of-band responses in flight at once
  (response.create with conversation "none", input [item], metadata), demultiplexed by id.

The server waits `--connect-delay` before answering each handshake (TLS + session setup),
`--latency` before the first audio of each response, then streams the audio at `--stream`
times real time. Prints a markdown table (median wall times) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import base64
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from openai.types.realtime import (
    ResponseAudioDeltaEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from realtime_server import RealtimeServer
from vnarrate.realtime import RealtimeBackend, session_instructions
from vnarrate.speech import SpeechOptions, synthesize_all

KEY = "sk-bench-0123456789"
MODEL = "gpt-realtime-2.1-mini"
OPTIONS = SpeechOptions(model=MODEL, voice="marin")
SESSION: Any = {
    "type": "realtime",
    "output_modalities": ["audio"],
    "instructions": session_instructions(None),
    "audio": {"output": {"voice": "marin", "format": {"type": "audio/pcm", "rate": 24000}}},
}


def item(text: str) -> Any:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def per_segment(client: openai.OpenAI, texts: list[str], jobs: int) -> list[bytes]:
    results = synthesize_all(RealtimeBackend(client), texts, OPTIONS, jobs=jobs)
    return [r.pcm for r in results]


def pooled(client: openai.OpenAI, texts: list[str], jobs: int) -> list[bytes]:
    todo: queue.Queue[tuple[int, str]] = queue.Queue()
    for pair in enumerate(texts):
        todo.put(pair)
    results: list[bytes] = [b""] * len(texts)

    def worker() -> None:
        with client.realtime.connect(model=MODEL) as conn:
            conn.session.update(session=SESSION)
            while True:
                try:
                    i, text = todo.get_nowait()
                except queue.Empty:
                    return
                conn.conversation.item.create(item=item(text))
                conn.response.create()
                audio = bytearray()
                for event in conn:
                    if isinstance(event, ResponseAudioDeltaEvent):
                        audio += base64.b64decode(event.delta)
                    elif isinstance(event, ResponseDoneEvent):
                        break
                results[i] = bytes(audio)

    threads = [threading.Thread(target=worker) for _ in range(min(jobs, len(texts)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def multiplexed(client: openai.OpenAI, texts: list[str], jobs: int) -> list[bytes]:
    results: list[bytes] = [b""] * len(texts)
    buffers: dict[str, bytearray] = {}
    index: dict[str, int] = {}
    sent = done = 0
    with client.realtime.connect(model=MODEL) as conn:
        conn.session.update(session=SESSION)

        def send_next() -> None:
            nonlocal sent
            text = texts[sent]
            conn.response.create(
                response={
                    "conversation": "none",
                    "input": [item(text)],
                    "metadata": {"i": str(sent)},
                }
            )
            sent += 1

        for _ in range(min(jobs, len(texts))):
            send_next()
        for event in conn:
            if isinstance(event, ResponseCreatedEvent):
                rid = event.response.id or ""
                index[rid] = int((event.response.metadata or {})["i"])
                buffers[rid] = bytearray()
            elif isinstance(event, ResponseAudioDeltaEvent):
                buffers[event.response_id] += base64.b64decode(event.delta)
            elif isinstance(event, ResponseDoneEvent):
                rid = event.response.id or ""
                results[index[rid]] = bytes(buffers.pop(rid))
                done += 1
                if done == len(texts):
                    break
                if sent < len(texts):
                    send_next()
    return results


STRATEGIES: dict[str, Callable[[openai.OpenAI, list[str], int], list[bytes]]] = {
    "per-segment (RealtimeBackend)": per_segment,
    "pooled sessions": pooled,
    "one multiplexed session": multiplexed,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connect-delay", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--latency", type=float, default=0.4)
    parser.add_argument("--stream", type=float, default=4.0)
    args = parser.parse_args()

    texts = [
        f"Segment {i}: the camera pans across the harbour as the boats come in." for i in range(24)
    ][: args.segments]
    texts = (texts * (args.segments // len(texts) + 1))[: args.segments]
    print(
        f"{args.segments} segments, --jobs {args.jobs}, response latency {args.latency} s, "
        f"audio streamed at {args.stream}x real time; median of {args.repeat} runs\n"
    )
    print("| connect delay (s) | strategy | wall (s) | vs per-segment |")
    print("|---:|---|---:|---:|")
    for delay in args.connect_delay:
        medians: dict[str, float] = {}
        for name, run in STRATEGIES.items():
            times = []
            for rep in range(args.repeat + 1):  # the first run warms up
                with RealtimeServer(
                    key=KEY,
                    connect_delay_s=delay,
                    response_latency_s=args.latency,
                    stream_factor=args.stream,
                ) as server:
                    client = openai.OpenAI(api_key=KEY, websocket_base_url=server.base_url)
                    t0 = time.perf_counter()
                    pcm = run(client, texts, args.jobs)
                    elapsed = time.perf_counter() - t0
                    by_text = {s.text: s.pcm for s in server.spoken}
                    assert pcm == [by_text[t] for t in texts], name
                    assert not server.violations, server.violations
                if rep:
                    times.append(elapsed)
            medians[name] = statistics.median(times)
            base = medians[next(iter(STRATEGIES))]
            print(f"| {delay} | {name} | {medians[name]:.2f} | {base / medians[name]:.2f}x |")


if __name__ == "__main__":
    main()
