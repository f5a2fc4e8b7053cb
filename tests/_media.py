"""Test media made on the fly (no binary media in git): videos, audio-only files, PCM speech."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Distinct flat colours (RGB) so that a test can tell shots apart, and a cut is unmistakable.
SHOT_COLOURS = [
    (220, 40, 40),
    (40, 200, 60),
    (40, 60, 220),
    (230, 220, 40),
    (200, 40, 200),
    (40, 210, 210),
    (250, 250, 250),
    (20, 20, 20),
]


def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (160, 120),
    codec: str = "libx264",
    gop: int = 12,
    cuts_s: Sequence[float] = (),
    audio: bool = False,
    rotate: int = 0,
    moving: bool = True,
) -> Path:
    """Write a small video: a moving square over flat shots that change at `cuts_s`.

    Each frame's index is drawn as a bar code in the top row, so a test can read back which frame
    it got. `size` is (width, height). With `audio`, a 440 Hz AAC track of the same length is added.
    """
    width, height = size
    n = max(1, round(seconds * fps))
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        if codec == "libx264":
            vs.options = {
                "g": str(gop),
                "keyint_min": str(gop),
                "sc_threshold": "0",
                "preset": "ultrafast",
            }
        if rotate:
            vs.metadata["rotate"] = str(rotate)
        as_ = None
        if audio:
            as_ = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(n):
            t = i / fps
            shot = sum(1 for c in cuts_s if t >= c)
            img = np.empty((height, width, 3), np.uint8)
            img[:] = SHOT_COLOURS[shot % len(SHOT_COLOURS)]
            if moving:
                s = max(4, min(width, height) // 6)
                x = int((width - s) * (i / max(1, n - 1)))
                img[height // 2 - s // 2 : height // 2 + s // 2, x : x + s] = (128, 128, 128)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if as_ is not None:
            sr = 48000
            total = int(seconds * sr)
            tone = (0.2 * np.sin(2 * math.pi * 440 * np.arange(total) / sr)).astype(np.float32)
            step = 1024
            for start in range(0, total, step):
                chunk = tone[start : start + step].reshape(1, -1)
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate = sr
                af.pts = start
                af.time_base = Fraction(1, sr)
                for packet in as_.encode(af):
                    out.mux(packet)
            for packet in as_.encode():
                out.mux(packet)
    return path


def make_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An .m4a (AAC) file with a tone and no video stream."""
    sr = 48000
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("aac", rate=sr, layout="mono")
        total = int(seconds * sr)
        tone = (0.2 * np.sin(2 * math.pi * 440 * np.arange(total) / sr)).astype(np.float32)
        for start in range(0, total, 1024):
            af = av.AudioFrame.from_ndarray(
                tone[start : start + 1024].reshape(1, -1), format="fltp", layout="mono"
            )
            af.sample_rate = sr
            af.pts = start
            af.time_base = Fraction(1, sr)
            for packet in st.encode(af):
                out.mux(packet)
        for packet in st.encode():
            out.mux(packet)
    return path


def speech_pcm(seconds: float, *, sample_rate: int = 24000, freq: float = 220.0) -> bytes:
    """Stand-in for TTS output: a tone burst of exactly `seconds`, s16le mono."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    wave = 0.5 * np.sin(2 * math.pi * freq * t) * (1 + 0.3 * np.sin(2 * math.pi * 3 * t))
    return (wave * 32767 * 0.8).astype("<i2").tobytes()
