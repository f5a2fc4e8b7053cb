"""Benchmark of the frames stage: the cookbook notebook's loop against vnarrate's extraction, the
decode floor, sparse sampling of long clips, scene detection, and planning an hour-long video.

    python benchmarks/bench_frames.py                 # everything (~10 min on 2 cores)
    python benchmarks/bench_frames.py --quick         # shared clips + the 60 s 1080p clip, 1 round
    python benchmarks/bench_frames.py --seek-cost     # the measurement behind SEEK_OVERHEAD_FRAMES

Every variant runs in its own subprocess, so wall time, CPU time (user + system) and peak memory
(ru_maxrss) are the whole process's, imports included. Variants of one clip run interleaved, round
after round, and the table shows medians, so the ratios are measured side by side under the same
load. Generated clips go to benchmarks/out/ (gitignored) and are reused; the real clips are read
in place from ../shared/media (never copied).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
MEDIA = ROOT.parent / "shared" / "media"

# name -> (seconds, width, height, fps, gop, preset)
GENERATED = {
    "h264_1080p_60s.mp4": (60, 1920, 1080, 30, 250, "veryfast"),
    "h264_720p_10min.mp4": (600, 1280, 720, 30, 250, "ultrafast"),
    "h264_180p_1h.mp4": (3600, 320, 180, 25, 250, "ultrafast"),
}


# --- generated clips ------------------------------------------------------------------------------


def make_clip(
    path: Path, seconds: float, width: int, height: int, fps: int, gop: int, preset: str
) -> Path:
    """A synthetic clip shaped like real footage: a smooth textured background panned by the camera
    (motion everywhere; a 1080p frame is ~330 KB as a q95 JPEG, as camera footage is), a moving
    disc, and a hard cut every 7 s (to another background of the same colours)."""
    import av
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    backgrounds = []
    for _ in range(3):
        small = rng.integers(0, 255, (height // 24 + 1, width // 24 + 1, 3), dtype=np.uint8)
        backgrounds.append(
            cv2.resize(small, (width * 2, height * 2), interpolation=cv2.INTER_CUBIC)
        )
    n = int(seconds * fps)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "preset": preset,
            "crf": "23",
        }
        for i in range(n):
            t = i / fps
            bg = backgrounds[int(t // 7) % len(backgrounds)]
            x = int(width / 2 * (0.5 + 0.5 * np.sin(2 * np.pi * t / 20)))
            y = int(height / 2 * (0.5 + 0.5 * np.cos(2 * np.pi * t / 27)))
            img = np.ascontiguousarray(bg[y : y + height, x : x + width])
            cx = int(width * (0.5 + 0.4 * np.sin(t)))
            cy = int(height * (0.5 + 0.4 * np.cos(1.3 * t)))
            cv2.circle(img, (cx, cy), height // 8, (255, 255, 255), -1)
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def generated(name: str) -> Path:
    path = OUT / name
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ...", file=sys.stderr, flush=True)
        make_clip(path, *GENERATED[name])
    return path


# --- the variants (each runs in a child process: `--run NAME CLIP [JSON]`) -------------------------
# Each returns what it did and `inner`: the seconds of the work itself, imports excluded.


def v_notebook(clip: str, _: dict[str, Any]) -> dict[str, Any]:
    """The cookbook notebook: read + JPEG + base64 every frame, keep all, then take 1 in 50."""
    import base64

    import cv2

    t0 = time.perf_counter()
    video = cv2.VideoCapture(clip)
    base64_frames = []
    while video.isOpened():
        success, frame = video.read()
        if not success:
            break
        _, buffer = cv2.imencode(".jpg", frame)
        base64_frames.append(base64.b64encode(buffer).decode("utf-8"))
    video.release()
    selected = base64_frames[0::50]
    inner = time.perf_counter() - t0
    return {"frames": len(selected), "decoded": len(base64_frames), "inner": inner}


def v_floor(clip: str, _: dict[str, Any]) -> dict[str, Any]:
    """Decode floor: grab every frame, nothing else."""
    import cv2

    t0 = time.perf_counter()
    cap = cv2.VideoCapture(clip)
    n = 0
    while cap.grab():
        n += 1
    return {"decoded": n, "inner": time.perf_counter() - t0}


def v_pyav_floor(clip: str, _: dict[str, Any]) -> dict[str, Any]:
    """PyAV with frame threads decoding every frame (the engine of the shot-detection pass)."""
    import av

    t0 = time.perf_counter()
    with av.open(clip) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        n = sum(1 for _ in c.decode(s))
    return {"decoded": n, "inner": time.perf_counter() - t0}


def v_vnarrate(clip: str, args: dict[str, Any]) -> dict[str, Any]:
    """vnarrate.frames.sample_frames (probe included) with the given SamplingSpec fields."""
    from vnarrate.frames import sample_frames

    from vnarrate.models import SamplingSpec

    spec = SamplingSpec(**args)
    t0 = time.perf_counter()
    fs = sample_frames(clip, spec)
    inner = time.perf_counter() - t0
    return {
        "frames": len(fs.frames),
        "jpeg_kb": round(sum(len(f.jpeg) for f in fs.frames) / 1024),
        "size": f"{fs.frames[0].width}x{fs.frames[0].height}",
        "shots": len(fs.shot_starts_s),
        "inner": inner,
    }


def v_detect(clip: str, args: dict[str, Any]) -> dict[str, Any]:
    """Shot detection alone (one decoding pass over thumbnails)."""
    from vnarrate.frames import detect_shots

    t0 = time.perf_counter()
    shots = detect_shots(clip, **args)
    inner = time.perf_counter() - t0
    fps = shots.frame_count / shots.duration_s
    starts = [round(t * fps) for t in shots.starts_s]
    return {"shots": len(starts), "starts": starts, "decoded": shots.frame_count, "inner": inner}


def v_pyscenedetect(clip: str, _: dict[str, Any]) -> dict[str, Any]:
    """PySceneDetect's ContentDetector with its defaults, for comparison (not a dependency)."""
    from scenedetect import ContentDetector, detect

    t0 = time.perf_counter()
    scenes = detect(clip, ContentDetector())
    inner = time.perf_counter() - t0
    starts = [s[0].get_frames() for s in scenes] or [0]
    return {"shots": len(starts), "starts": starts, "inner": inner}


def v_plan(clip: str, args: dict[str, Any]) -> dict[str, Any]:
    """What `plan` needs without decoding: probe + select_times."""
    from vnarrate.frames import probe, select_times

    from vnarrate.models import SamplingSpec

    t0 = time.perf_counter()
    info = probe(clip)
    times = select_times(info, SamplingSpec(**args))
    inner = time.perf_counter() - t0
    return {"frames": len(times), "frame_count": info.frame_count, "inner": inner}


VARIANTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "notebook": v_notebook,
    "floor": v_floor,
    "pyav_floor": v_pyav_floor,
    "vnarrate": v_vnarrate,
    "detect": v_detect,
    "plan": v_plan,
    "pyscenedetect": v_pyscenedetect,
}


def child(name: str, clip: str, args_json: str) -> None:
    result = VARIANTS[name](clip, json.loads(args_json))
    print(json.dumps(result))


def measure(name: str, clip: Path, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one variant in a fresh process: wall, CPU and peak RSS of that process."""
    cmd = [sys.executable, __file__, "--run", name, str(clip), json.dumps(args or {})]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} on {clip.name} failed:\n{err}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime, rss_mb=usage.ru_maxrss / 1024)
    return result


def rounds(
    clip: Path, variants: list[tuple[str, str, dict[str, Any]]], n: int
) -> dict[str, dict[str, Any]]:
    """Run the variants interleaved, `n` rounds; per label, the medians of wall/inner/cpu/rss."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in variants}
    for _ in range(n):
        for label, name, args in variants:
            runs[label].append(measure(name, clip, args))
    out = {}
    for label, rs in runs.items():
        med = dict(rs[0])
        for key in ("wall", "inner", "cpu", "rss_mb"):
            med[key] = statistics.median(r[key] for r in rs)
        out[label] = med
    return out


# --- reporting ------------------------------------------------------------------------------------


def table(title: str, rows: list[list[str]], header: list[str]) -> str:
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def cell(r: dict[str, Any]) -> str:
    """process wall (work only) / CPU / peak memory."""
    return f"{r['wall']:.2f} ({r['inner']:.2f}) / {r['cpu']:.2f} / {r['rss_mb']:.0f}"


def ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    """a / b by process wall time, then by the work alone."""
    return f"{a['wall'] / b['wall']:.2f}× ({a['inner'] / b['inner']:.2f}×)"


CELL = "s (work s) / CPU s / MB"


def bench_notebook(clips: list[Path], n: int) -> str:
    """Stride 50 (the notebook's frames): notebook vs vnarrate vs the decode floor."""
    rows = []
    stride = {"mode": "stride", "stride": 50, "max_frames": 100_000}
    for clip in clips:
        variants = [
            ("floor", "floor", {}),
            ("notebook", "notebook", {}),
            ("vn", "vnarrate", stride),
            ("vnfull", "vnarrate", {**stride, "resize": 0}),
        ]
        res = rounds(clip, variants, n)
        fl, nb, vn, vf = res["floor"], res["notebook"], res["vn"], res["vnfull"]
        rows.append(
            [
                f"`{clip.name}`",
                f"{fl['decoded']} → {vn['frames']}",
                cell(fl),
                cell(nb),
                cell(vn),
                cell(vf),
                ratio(vn, fl),
                ratio(vf, fl),
                ratio(nb, vn),
            ]
        )
        print(f"  {clip.name}: done", file=sys.stderr, flush=True)
    header = [
        "clip",
        "frames → kept",
        f"decode floor: {CELL}",
        f"notebook: {CELL}",
        f"vnarrate (768 px): {CELL}",
        f"vnarrate full size: {CELL}",
        "vnarrate ÷ floor",
        "full size ÷ floor",
        "notebook ÷ vnarrate",
    ]
    return table(
        f"Stride 50, the notebook's frames (medians of {n} interleaved rounds)", rows, header
    )


def bench_long(n: int) -> str:
    """Few frames from long clips vs the decode floor; memory vs video length."""
    rows = []
    for name in ("h264_1080p_60s.mp4", "h264_720p_10min.mp4", "h264_180p_1h.mp4"):
        clip = generated(name)
        variants = [
            ("floor", "floor", {}),
            ("count20", "vnarrate", {"mode": "count", "count": 20}),
            ("default", "vnarrate", {}),
            ("stride", "vnarrate", {"mode": "stride", "stride": 50, "max_frames": 100_000}),
        ]
        res = rounds(clip, variants, n)
        fl = res["floor"]
        rows.append([f"`{name}`", "decode floor", str(fl["decoded"]), cell(fl), ""])
        for label, what in (
            ("count20", "--frames 20"),
            ("default", "default: every 1 s, max 48"),
            ("stride", "--stride 50, no cap"),
        ):
            r = res[label]
            faster = r["wall"] < fl["wall"]
            rows.append(
                [
                    "",
                    what,
                    str(r["frames"]),
                    cell(r),
                    f"**{fl['wall'] / r['wall']:.1f}× faster** ({fl['inner'] / r['inner']:.1f}×)"
                    if faster
                    else f"{ratio(r, fl)} the floor",
                ]
            )
        print(f"  {name}: done", file=sys.stderr, flush=True)
    header = ["clip", "sampling", "frames", CELL, "vs decode floor"]
    return table(
        f"Long clips: sparse targets seek, dense ones read on (medians of {n} interleaved rounds)",
        rows,
        header,
    )


def bench_plan(n: int) -> str:
    clip = generated("h264_180p_1h.mp4")
    variants = [
        ("plan16", "plan", {"mode": "count", "count": 16}),
        ("plan_default", "plan", {}),
        ("sample16", "vnarrate", {"mode": "count", "count": 16}),
        ("sample_default", "vnarrate", {}),
        ("floor", "floor", {}),
    ]
    res = rounds(clip, variants, n)
    rows = [
        ["probe + select_times, --frames 16", cell(res["plan16"])],
        ["probe + select_times, default (every 1 s, max 48)", cell(res["plan_default"])],
        ["sample_frames --frames 16 (decoded, resized, JPEG)", cell(res["sample16"])],
        ["sample_frames default (48 frames)", cell(res["sample_default"])],
        ["decode floor (every frame)", cell(res["floor"])],
    ]
    return table(
        f"Planning a 1-hour video (`{clip.name}`: 320x180, 25 fps, 90,000 frames, GOP 250; "
        f"medians of {n})",
        rows,
        ["what", CELL],
    )


def bench_scenes(clips: list[Path], n: int) -> str:
    import importlib.util

    # Run with PySceneDetect importable (see BENCHMARKS.md) to compare; it is not a dependency.
    psd = importlib.util.find_spec("scenedetect") is not None
    rows = []
    for clip in clips:
        variants = [
            ("floor", "floor", {}),
            ("pyav", "pyav_floor", {}),
            ("detect", "detect", {}),
            ("scenes", "vnarrate", {"mode": "scenes"}),
        ]
        if psd:
            variants.append(("psd", "pyscenedetect", {}))
        res = rounds(clip, variants, n)
        fl, pv, de, sc = res["floor"], res["pyav"], res["detect"], res["scenes"]
        row = [
            f"`{clip.name}`",
            str(de["decoded"]),
            cell(fl),
            cell(pv),
            cell(de),
            f"{de['decoded'] / de['inner']:.0f}",
            ratio(de, fl),
            f"{de['shots']}: starts {de['starts']}",
            f"{cell(sc)}, {sc['frames']} frames",
            ratio(sc, fl),
        ]
        if psd:
            ps = res["psd"]
            row.append(f"{cell(ps)}; starts {ps['starts']}")
        rows.append(row)
        print(f"  {clip.name}: done", file=sys.stderr, flush=True)
    header = [
        "clip",
        "frames",
        f"cv2 decode floor: {CELL}",
        f"PyAV decode floor: {CELL}",
        f"detect_shots: {CELL}",
        "detect fps",
        "detect ÷ cv2 floor",
        "shots (first frames)",
        f"--sample scenes: {CELL}",
        "scenes ÷ cv2 floor",
    ]
    if psd:
        header.append(f"PySceneDetect ContentDetector: {CELL}")
    return table(f"Shot detection (medians of {n} interleaved rounds)", rows, header)


def seek_cost() -> str:
    """Seek overhead in frame-decodes, the measurement behind SEEK_OVERHEAD_FRAMES: seek to 40
    frames past a keyframe and grab, minus 40 frames' worth of reading on, over one frame's worth.
    (40, not fewer: OpenCV backs off 16 frames before seeking, and the index holds decode times,
    which come a frame or two before presentation times when there are B-frames.)"""
    import av
    import cv2

    rows = []
    clips = [generated("h264_1080p_60s.mp4"), generated("h264_180p_1h.mp4")]
    clips += [MEDIA / "big_buck_bunny_0_30.webm"] if MEDIA.is_dir() else []
    for clip in clips:
        with av.open(str(clip)) as c:
            s = c.streams.video[0]
            if len(s.index_entries) < 2:
                c.seek(0, stream=s)
            start = s.start_time or 0
            fps = float(s.average_rate)
            keys = [
                float((e.timestamp - start) * s.time_base) for e in s.index_entries if e.is_keyframe
            ]
        gaps = [b - a for a, b in itertools.pairwise(keys)]
        keys = [k for k, g in zip(keys, gaps, strict=False) if k > 1.0 and g * fps > 60][:12]
        cap = cv2.VideoCapture(str(clip))
        n, t0 = 0, time.perf_counter()
        while cap.grab() and n < 1500:
            n += 1
        per_frame = (time.perf_counter() - t0) / n
        costs = []
        for k in keys:
            cap = cv2.VideoCapture(str(clip))
            cap.grab()
            t0 = time.perf_counter()
            cap.set(cv2.CAP_PROP_POS_FRAMES, round(k * fps) + 40)
            cap.grab()
            costs.append(time.perf_counter() - t0)
        med = statistics.median(costs)
        rows.append(
            [
                f"`{clip.name}`",
                f"{per_frame * 1000:.2f}",
                f"{med * 1000:.1f}",
                f"{(med - 40 * per_frame) / per_frame:.0f}",
            ]
        )
    return table(
        "Seek overhead (seek to 40 frames past a keyframe and grab; median of up to 12 seeks)",
        rows,
        ["clip", "ms per frame reading on", "ms per seek", "overhead in frame-decodes"],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--run", nargs=3, metavar=("VARIANT", "CLIP", "ARGS"), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="one round; skip the long clips")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seek-cost", action="store_true", help="only measure the seek overhead")
    ap.add_argument(
        "--only", choices=["notebook", "long", "plan", "scenes"], action="append", default=[]
    )
    ns = ap.parse_args()
    if ns.run:
        child(*ns.run)
        return
    if ns.seek_cost:
        print(seek_cost())
        return
    n = 1 if ns.quick else ns.rounds
    shared = (
        sorted(p for p in MEDIA.iterdir() if p.suffix in {".mp4", ".mkv", ".webm", ".mov"})
        if MEDIA.is_dir()
        else []
    )
    big = generated("h264_1080p_60s.mp4")
    parts = ns.only or ["notebook", "long", "plan", "scenes"]
    if ns.quick:
        parts = [p for p in parts if p in ("notebook", "scenes")]
    import platform

    import cv2

    print(
        f"Python {platform.python_version()}, OpenCV {cv2.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start\n"
    )
    if "notebook" in parts:
        print(bench_notebook([*shared, big], n), flush=True)
    if "long" in parts:
        print(bench_long(n), flush=True)
    if "plan" in parts:
        print(bench_plan(n), flush=True)
    if "scenes" in parts:
        cut_clips = [p for p in shared if p.name in ("big_buck_bunny_0_30.webm", "nasa_13013.mp4")]
        print(bench_scenes([*cut_clips, big], n), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
