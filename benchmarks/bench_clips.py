"""Benchmark: how speech goes to a transcription server (soundtrack/clips.py).

    python benchmarks/bench_clips.py [--media ../shared/media] [--runs 3]

1. Encoders side by side on 10 minutes of real speech (the shared `dialogue_bunny.mp4`'s audio,
   16 kHz mono, looped): seconds to encode and megabytes, for FLAC (what vnarrate sends), MP3 at
   32 and 48 kbps (LAME at its default and its fastest quality) and Ogg Opus at 24 kbps.
2. The whole cut on an hour: the same clip's audio looped to 1 h of AAC-LC 44.1 kHz stereo
   (cached under /tmp/vnarrate-bench-clips), speech detected with vnarrate's defaults, then
   `speech_clips` over every region: seconds, clips, megabytes, the biggest clip and peak RSS,
   each run in a fresh process (median of --runs), with detection timed beside it so a busy
   machine shows in both.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WORK = Path("/tmp/vnarrate-bench-clips")
RATE = 16000


def speech_16k(clip: Path) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    out = []
    with av.open(str(clip)) as c:
        for frame in c.decode(audio=0):
            out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    return np.concatenate(out)


def encode(x: np.ndarray, codec: str, fmt: str, bit_rate: int | None, **opts: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt, options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=RATE, layout="mono", options=opts)
        if bit_rate:
            stream.bit_rate = bit_rate
        for pos in range(0, len(x), RATE):
            frame = av.AudioFrame.from_ndarray(
                x[pos : pos + RATE].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = RATE, pos
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def encoders(clip: Path) -> None:
    x = speech_16k(clip)
    x = np.tile(x, -(-600 * RATE // len(x)))[: 600 * RATE]
    print("| encoder (10 min of speech, 16 kHz mono) | encode s | MB |")
    print("|---|---|---|")
    for label, args, opts in [
        ("FLAC (sent)", ("flac", "flac", None), {}),
        ("MP3 48 kbps", ("libmp3lame", "mp3", 48000), {}),
        ("MP3 48 kbps, fastest", ("libmp3lame", "mp3", 48000), {"compression_level": "9"}),
        ("MP3 32 kbps", ("libmp3lame", "mp3", 32000), {}),
        ("Ogg Opus 24 kbps", ("libopus", "ogg", 24000), {}),
    ]:
        t = time.perf_counter()
        data = encode(x, *args, **opts)  # type: ignore[arg-type]
        print(f"| {label} | {time.perf_counter() - t:.2f} | {len(data) / 1e6:.1f} |")


def hour_file(clip: Path) -> Path:
    path = WORK / "hour.m4a"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44100)
    with av.open(str(clip)) as c:
        x = np.concatenate(
            [f.to_ndarray() for fr in c.decode(audio=0) for f in resampler.resample(fr)], axis=1
        )
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100, layout="stereo")
        pts = 0
        for _ in range(-(-3600 * 44100 // x.shape[1])):
            for i in range(0, x.shape[1], 1024):
                block = np.ascontiguousarray(x[:, i : i + 1024])
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = 44100, pts, Fraction(1, 44100)
                pts += frame.samples
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


CHILD = """
import resource, sys, time
from vnarrate.pipeline import listen
from vnarrate.session import stage_options
from vnarrate.settings import Settings
from vnarrate.soundtrack.clips import speech_clips
t = time.perf_counter(); heard = listen(sys.argv[1], stage_options(Settings()))
detect = time.perf_counter() - t
t = time.perf_counter(); sizes = [len(c.audio) for c in speech_clips(sys.argv[1], heard.speech.regions)]
cut = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(detect, cut, len(sizes), sum(sizes), max(sizes), heard.speech.speech_s, rss)
"""


def hour(clip: Path, runs: int) -> None:
    path = hour_file(clip)
    rows = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
        )
        rows.append([float(v) for v in out.stdout.split()])
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    detect, cut, n, total, biggest, speech, rss = med
    print("| 1 h AAC stereo | detect s | cut + encode s | clips | speech s | MB | biggest kB |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| median of {runs} | {detect:.1f} | {cut:.1f} | {n:.0f} | {speech:.0f} | "
        f"{total / 1e6:.1f} | {biggest / 1e3:.0f} |"
    )
    print(f"\npeak RSS {rss:.0f} MB (detection and cutting in one process)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=Path(__file__).parents[2] / "shared" / "media")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    clip = args.media / "dialogue_bunny.mp4"
    encoders(clip)
    print()
    hour(clip, args.runs)


if __name__ == "__main__":
    main()
