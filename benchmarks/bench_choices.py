"""The measurements behind the frames stage's design choices (run by bench_frames.py --choices):
decoder and threads, skipping unreferenced frames, resizing inside the colour conversion, the
cost of a seek, and contact-sheet tiles decoded small. In-process timings, medians of 5.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _median(fn: Callable[[], Any], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def decoders(clip: Path) -> list[list[str]]:
    """Every frame of `clip`: OpenCV grab() against PyAV's thread types and skip_frame."""
    import av
    import cv2

    def opencv() -> None:
        cap = cv2.VideoCapture(str(clip))
        while cap.grab():
            pass

    def pyav(thread: str | None, skip: str = "DEFAULT") -> Callable[[], None]:
        def run() -> None:
            with av.open(str(clip)) as c:
                s = c.streams.video[0]
                if thread:
                    s.thread_type = thread
                else:
                    s.codec_context.thread_count = 1
                s.codec_context.skip_frame = skip
                for _ in c.decode(s):
                    pass

        return run

    variants = [
        ("PyAV, one thread", pyav(None)),
        ('PyAV, thread_type="SLICE" (PyAV\'s default)', pyav("SLICE")),
        ('PyAV, "AUTO" (frame threads)', pyav("AUTO")),
        ('PyAV, "SLICE", skip_frame="NONREF" (reading on)', pyav("SLICE", "NONREF")),
        ('PyAV, "AUTO", skip_frame="NONREF"', pyav("AUTO", "NONREF")),
        ('PyAV, skip_frame="NONKEY" (keyframes only)', pyav("SLICE", "NONKEY")),
    ]
    runs: dict[str, list[float]] = {"OpenCV grab() (the decode floor)": []}
    runs |= {label: [] for label, _ in variants}
    for _ in range(3):  # interleaved, medians
        runs["OpenCV grab() (the decode floor)"].append(_median(opencv, 1))
        for label, fn in variants:
            runs[label].append(_median(fn, 1))
    base = statistics.median(runs["OpenCV grab() (the decode floor)"])
    rows = []
    for label, times in runs.items():
        t = statistics.median(times)
        rows.append([f"`{clip.name}`", label, f"{t:.2f}", f"{t / base:.2f}×"])
    return rows


def conversions(clip: Path) -> list[list[str]]:
    """One 1280x720 frame to a 768x432 BGR array, and the JPEG after it."""
    import av
    import cv2
    import numpy as np

    with av.open(str(clip)) as c:
        frames = [f for i, f in zip(range(60), c.decode(video=0), strict=False) if i % 6 == 0]
    w, h = 768, 432

    def full_then_resize() -> None:
        for f in frames:
            cv2.resize(f.to_ndarray(format="bgr24"), (w, h), interpolation=cv2.INTER_AREA)

    from av.video.reformatter import VideoReformatter

    shared = VideoReformatter()

    def reformat(interp: str) -> Callable[[], None]:
        def run() -> None:
            for f in frames:
                shared.reformat(
                    f, width=w, height=h, format="bgr24", interpolation=interp
                ).to_ndarray()

        return run

    def fresh() -> None:
        for f in frames:
            f.reformat(width=w, height=h, format="bgr24", interpolation="AREA").to_ndarray()

    ref = [
        cv2.resize(f.to_ndarray(format="bgr24"), (w, h), interpolation=cv2.INTER_AREA)
        for f in frames
    ]

    def psnr(interp: str) -> float:
        out = []
        for f, r in zip(frames, ref, strict=True):
            a = f.reformat(width=w, height=h, format="bgr24", interpolation=interp).to_ndarray()
            mse = float(np.mean((a.astype(float) - r.astype(float)) ** 2))
            out.append(10 * np.log10(255**2 / max(mse, 1e-9)))
        return statistics.median(out)

    def jpeg() -> None:
        for r in ref:
            cv2.imencode(".jpg", r, [cv2.IMWRITE_JPEG_QUALITY, 85])

    n = len(frames)
    rows = [
        [
            "to_ndarray (full size) + cv2.resize INTER_AREA",
            f"{_median(full_then_resize) / n * 1000:.1f}",
            "(reference)",
        ]
    ]
    rows.append(
        [
            'frame.reformat(768x432, bgr24, "AREA"), a new swscale context each frame',
            f"{_median(fresh) / n * 1000:.1f}",
            "",
        ]
    )
    for interp in ("AREA", "BILINEAR"):
        rows.append(
            [
                f'VideoReformatter.reformat(768x432, bgr24, "{interp}"), one context kept',
                f"{_median(reformat(interp)) / n * 1000:.1f}",
                f"{psnr(interp):.1f} dB",
            ]
        )
    rows.append(
        ["JPEG q85 of the 768x432 result (cv2.imencode)", f"{_median(jpeg) / n * 1000:.1f}", ""]
    )
    return rows


def seek_cost(clip: Path) -> list[list[str]]:
    """A seek + decoding the keyframe it lands on, against decoding one frame reading on."""
    import av

    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        s.thread_type = "SLICE"  # as the frames stage decodes H.264
        entries = s.index_entries
        keys = [e.timestamp for e in entries if e.is_keyframe][1:13]
        t0 = time.perf_counter()
        n = sum(1 for _ in zip(range(600), c.decode(s), strict=False))
        per_frame = (time.perf_counter() - t0) / n
        costs = []
        for ts in keys:
            t0 = time.perf_counter()
            c.seek(ts + 1, stream=s, backward=True)
            packet = next(c.demux(s))
            s.codec_context.decode(packet)
            s.codec_context.decode(None)
            s.codec_context.flush_buffers()
            costs.append(time.perf_counter() - t0)
    seek = statistics.median(costs)
    return [
        [
            f"`{clip.name}`",
            f"{per_frame * 1000:.2f}",
            f"{seek * 1000:.2f}",
            f"{seek / per_frame - 1:.1f}",
        ]
    ]


def main(mid: Path, hour: Path) -> None:
    from bench_frames import MEDIA, table

    vp8 = MEDIA / "big_buck_bunny_0_30.webm"
    print(
        table(
            "Decoding every frame (s, medians of 3 interleaved rounds)",
            ["clip", "decoder", "s", "vs OpenCV"],
            decoders(mid) + (decoders(vp8) if vp8.exists() else []),
        )
    )
    print(
        table(
            f"Shrinking a frame of `{mid.name}` to 768 px (ms per frame; PSNR vs INTER_AREA)",
            ["how", "ms", "PSNR"],
            conversions(mid),
        )
    )
    print(
        table(
            "What a seek costs (seek to a keyframe, decode it, drain; median of 12)",
            ["clip", "ms per frame reading on", "ms per seek + keyframe", "overhead (frames)"],
            seek_cost(mid) + seek_cost(hour),
        )
    )
