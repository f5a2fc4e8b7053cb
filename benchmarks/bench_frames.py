"""Benchmark of the frames stage: `vnarrate frames` (the whole process: start-up, probe, decode,
JPEGs, frames.json, contact sheet) against the cookbook notebook's loop, the decode floor and
keyframe-only decoding, on the shared clips and on generated long-GOP clips.

    python benchmarks/bench_frames.py                  # every table (~40 min on 2 cores)
    python benchmarks/bench_frames.py --quick          # 1 round, no 1-hour clips
    python benchmarks/bench_frames.py --only targets   # the issue's table alone
    python benchmarks/bench_frames.py --choices        # the measurements behind the design

Every variant runs in a process of its own: wall time, CPU time (user + system) and peak memory
(ru_maxrss, from wait4) are the whole process's. The variants of one table run interleaved,
round after round, and each cell is the median, so ratios are measured side by side under the
same load. Generated clips go to benchmarks/out/ (gitignored) and are reused; the real clips are
read in place from ../shared/media. Needs only the project's own dependencies (PyAV, OpenCV).

The variants:
- notebook: the cookbook's loop: read() every frame, JPEG (q95, full size) + base64 each, keep
  them all, then take [0::50];
- floor: OpenCV grab() every frame, nothing else (the decode floor);
- keyframes N: PyAV seeks to the keyframe nearest each of N evenly spread times and decodes that
  one frame (no JPEG): the physical limit of sparse sampling;
- vnarrate ARGS: `python -m vnarrate frames CLIP -o TMP ARGS`, the real command.
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
MEDIA = ROOT.parent / "shared" / "media"

# name -> (seconds, width, height, fps, keyframe interval in frames, x264 preset); a hard cut
# every 10 s. The 1-hour 720p clip is the 3-minute one twenty times over (packets copied).
GENERATED: dict[str, tuple[float, int, int, int, int, str]] = {
    "h264_720p_24s.mp4": (24, 1280, 720, 30, 250, "veryfast"),
    "h264_720p_3min.mp4": (180, 1280, 720, 30, 250, "veryfast"),
    "h264_180p_1h.mp4": (3600, 320, 180, 25, 250, "ultrafast"),
}
REPEATED = {"h264_720p_1h.mp4": ("h264_720p_3min.mp4", 20)}
CUT_EVERY_S = 10.0


# --- generated clips ------------------------------------------------------------------------------


def make_clip(
    path: Path, seconds: float, width: int, height: int, fps: int, gop: int, preset: str
) -> Path:
    """A synthetic clip shaped like real footage: a smooth textured background panned by the camera
    (motion everywhere), a moving disc, and a hard cut every CUT_EVERY_S to another background of
    the same colours. x264 with B-frames (veryfast) unless the preset is ultrafast."""
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
            bg = backgrounds[int(t // CUT_EVERY_S) % len(backgrounds)]
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


def repeat_clip(src: Path, dst: Path, times: int) -> Path:
    """`src` played `times` over in one file: its video packets copied with shifted times."""
    import av

    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        ist = inp.streams.video[0]
        ost = out.add_stream_from_template(ist)
        assert ist.duration and ist.time_base
        span = ist.duration
        for k in range(times):
            inp.seek(0, stream=ist)
            for packet in inp.demux(ist):
                if packet.dts is None or packet.pts is None:
                    continue
                packet.pts += k * span
                packet.dts += k * span
                packet.stream = ost
                out.mux(packet)
    tmp.replace(dst)
    return dst


def generated(name: str) -> Path:
    """benchmarks/out/NAME, made first if missing (in a child process: the parent stays small, so
    that the peak memory the children report is their own)."""
    path = OUT / name
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        if name in REPEATED:
            generated(REPEATED[name][0])
        print(f"generating {path} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, "--make", name], check=True)
    return path


def make(name: str) -> None:
    path = OUT / name
    if name in REPEATED:
        src, times = REPEATED[name]
        repeat_clip(OUT / src, path, times)
    else:
        make_clip(path, *GENERATED[name])


# --- the variants that run in a child process (`--run NAME CLIP ARGS`) ------------------------------
# Each returns what it did and `inner`: the seconds of the work itself, imports excluded.


def v_notebook(clip: str, _: Any) -> dict[str, Any]:
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
    return {
        "frames": len(selected),
        "decoded": len(base64_frames),
        "inner": time.perf_counter() - t0,
    }


def v_floor(clip: str, _: Any) -> dict[str, Any]:
    """Decode floor: OpenCV grabs every frame, nothing else."""
    import cv2

    t0 = time.perf_counter()
    cap = cv2.VideoCapture(clip)
    n = 0
    while cap.grab():
        n += 1
    return {"decoded": n, "inner": time.perf_counter() - t0}


def v_keyframes(clip: str, n: Any) -> dict[str, Any]:
    """The physical limit of sparse sampling: for each of `n` evenly spread times, seek to the
    nearest keyframe and decode that one frame (PyAV, no conversion, no JPEG)."""
    import av

    t0 = time.perf_counter()
    decoded = 0
    with av.open(clip) as c:
        s = c.streams.video[0]
        entries = s.index_entries
        if len(entries) < 2:
            c.seek(0, stream=s)
            entries = s.index_entries
        first, last = entries[0].timestamp, entries[len(entries) - 1].timestamp
        seen = set()
        for i in range(int(n)):
            ts = round(first + (i + 0.5) * (last - first) / int(n))
            k = entries.search_timestamp(ts, backward=True)
            if k < 0 or k in seen:
                continue
            seen.add(k)
            c.seek(entries[k].timestamp + 1, stream=s, backward=True)
            for packet in c.demux(s):
                frames = s.codec_context.decode(packet) + s.codec_context.decode(None)
                decoded += len(frames[:1])
                break
            s.codec_context.flush_buffers()
    return {"decoded": decoded, "inner": time.perf_counter() - t0}


VARIANTS: dict[str, Callable[[str, Any], dict[str, Any]]] = {
    "notebook": v_notebook,
    "floor": v_floor,
    "keyframes": v_keyframes,
}


# --- measuring ----------------------------------------------------------------------------------


def measure(kind: str, clip: Path, arg: Any = None) -> dict[str, Any]:
    """One run in a fresh process: wall, CPU and peak RSS of that process."""
    folder = None
    if kind == "vnarrate":
        folder = Path(tempfile.mkdtemp(prefix="bench-frames-"))
        cmd = [sys.executable, "-m", "vnarrate", "frames", str(clip), "-o", str(folder / "f")]
        cmd += list(arg or [])
    elif kind == "help":
        cmd = [str(Path(sys.executable).parent / "vnarrate"), "--help"]
    else:
        cmd = [sys.executable, __file__, "--run", kind, str(clip), json.dumps(arg)]
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # wait4 before reading pipes is safe here: every child writes a few lines at most.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err}")
        result: dict[str, Any] = {}
        if kind not in ("vnarrate", "help"):
            result = json.loads(out.strip().splitlines()[-1])
        elif folder is not None:
            doc = json.loads((folder / "f" / "frames.json").read_text())
            frames = doc["frames"]
            result = {"frames": len(frames), "snapped": sum(f["snapped"] for f in frames)}
        result.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime, mb=usage.ru_maxrss / 1024)
        return result
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


Variant = tuple[str, str, Path, Any]  # label, kind, clip, argument


def rounds(variants: list[Variant], n: int) -> dict[str, dict[str, Any]]:
    """The variants interleaved, `n` rounds; per label the medians of wall, CPU and memory."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in variants}
    for r in range(n):
        for label, kind, clip, arg in variants:
            runs[label].append(measure(kind, clip, arg))
        print(f"  round {r + 1}/{n} done", file=sys.stderr, flush=True)
    out = {}
    for label, rs in runs.items():
        med = dict(rs[-1])
        for key in ("wall", "cpu", "mb"):
            med[key] = statistics.median(x[key] for x in rs)
        out[label] = med
    return out


# --- reporting ------------------------------------------------------------------------------------


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def cell(r: dict[str, Any]) -> str:
    """process wall / CPU / peak memory"""
    return f"{r['wall']:.2f} / {r['cpu']:.2f} / {r['mb']:.0f}"


CELL = "s / CPU s / MiB"
STRIDE = ["--stride", "50"]
FRAMES20 = ["--frames", "20"]
SCENES30 = ["--sample", "scenes", "--max-frames", "30"]


def bench_targets(n: int, long: bool) -> str:
    """The issue's table: each case against its reference, measured in one interleaved run."""
    short, mid = generated("h264_720p_24s.mp4"), generated("h264_720p_3min.mp4")
    variants: list[Variant] = [
        ("nb24", "notebook", short, None),
        ("vn24", "vnarrate", short, STRIDE),
        ("floor3", "floor", mid, None),
        ("key3", "keyframes", mid, 20),
        ("stride3", "vnarrate", mid, STRIDE),
        ("frames3", "vnarrate", mid, FRAMES20),
        ("exact3", "vnarrate", mid, [*FRAMES20, "--exact-times"]),
        ("scenes3", "vnarrate", mid, SCENES30),
        ("many3", "vnarrate", mid, ["--every", "0.12", "--max-frames", "1500"]),
        ("help", "help", short, None),
    ]
    hours = ["h264_720p_1h.mp4", "h264_180p_1h.mp4"] if long else []
    for name in hours:
        clip = generated(name)
        variants += [
            (f"floor-{name}", "floor", clip, None),
            (f"key-{name}", "keyframes", clip, 20),
            (f"frames-{name}", "vnarrate", clip, FRAMES20),
            (f"stride-{name}", "vnarrate", clip, STRIDE),
        ]
        if "180p" in name:  # 1,500 frames of 720p from an hour is reading on for ~2 minutes
            variants.append((f"many-{name}", "vnarrate", clip, ["--max-frames", "1500"]))
    r = rounds(variants, n)

    def times(a: str, b: str) -> float:
        return float(r[a]["wall"] / r[b]["wall"])

    rows = [
        [
            "`frames --stride 50`, 24 s 720p, vs the notebook's loop",
            f"{times('nb24', 'vn24'):.2f}× faster ({r['vn24']['wall']:.2f} s vs "
            f"{r['nb24']['wall']:.2f} s)",
            "≥ 3.5× faster",
        ],
        [
            "`--stride 50`, 3 min 720p (GOP 250), vs the decode floor",
            f"{times('stride3', 'floor3'):.2f}× ({r['stride3']['wall']:.2f} s vs "
            f"{r['floor3']['wall']:.2f} s)",
            "≤ 1.15×",
        ],
        [
            "`--frames 20`, same clip, vs the decode floor",
            f"{times('frames3', 'floor3'):.2f}× ({r['frames3']['wall']:.2f} s; keyframe-only "
            f"limit {r['key3']['wall']:.2f} s; `--exact-times` {times('exact3', 'floor3'):.2f}×)",
            "≤ 0.33×",
        ],
    ]
    for name in hours:
        rows.append(
            [
                f"`--frames 20`, `{name}`, vs the decode floor",
                f"{times(f'floor-{name}', f'frames-{name}'):.1f}× faster "
                f"({r[f'frames-{name}']['wall']:.2f} s vs {r[f'floor-{name}']['wall']:.2f} s; "
                f"keyframe-only limit {r[f'key-{name}']['wall']:.2f} s)",
                "≥ 20× faster",
            ]
        )
    rows.append(
        [
            "`--sample scenes --max-frames 30`, 3 min (a cut every 10 s), vs the decode floor",
            f"{times('scenes3', 'floor3'):.2f}×, one pass ({r['scenes3']['wall']:.2f} s)",
            "≤ 1.3×, one pass",
        ]
    )
    mem = [r["vn24"]["mb"], r["stride3"]["mb"], *(r[f"stride-{h}"]["mb"] for h in hours)]
    many = [r["many3"], *(r[f"many-{h}"] for h in hours if f"many-{h}" in r)]
    rows.append(
        [
            "peak memory, `--stride 50`, 24 s → 3 min" + (" → 1 h" if hours else ""),
            " → ".join(f"{m:.0f}" for m in mem)
            + " MiB; 1,500 frames: "
            + ", ".join(f"{m['mb']:.0f} MiB ({m['frames']} frames)" for m in many)
            + " (3 min 720p every 0.12 s; 1 h 180p)",
            "flat with length and < 150 MiB",
        ]
    )
    rows.append(["`vnarrate --help`", f"{r['help']['wall'] * 1000:.0f} ms", "< 150 ms"])
    detail = [
        [label, str(x.get("frames", x.get("decoded", ""))), str(x.get("snapped", "")), cell(x)]
        for label, x in r.items()
    ]
    return (
        table(
            f"Targets (issue 13), medians of {n} interleaved rounds",
            ["case", "now", "target"],
            rows,
        )
        + "\n"
        + table("The runs behind it", ["run", "frames", "snapped", CELL], detail)
    )


def bench_clips(n: int) -> str:
    """Per shared clip: notebook, floor, keyframe-only, and vnarrate's --stride 50 / --frames 20."""
    clips = sorted(p for p in MEDIA.iterdir() if p.suffix in {".mp4", ".mkv", ".webm"})
    rows = []
    for clip in clips:
        variants: list[Variant] = [
            ("floor", "floor", clip, None),
            ("nb", "notebook", clip, None),
            ("key", "keyframes", clip, 20),
            ("stride", "vnarrate", clip, STRIDE),
            ("frames", "vnarrate", clip, FRAMES20),
        ]
        r = rounds(variants, n)
        rows.append(
            [
                f"`{clip.name}`",
                str(r["floor"]["decoded"]),
                cell(r["nb"]),
                cell(r["floor"]),
                cell(r["key"]),
                f"{cell(r['stride'])} ({r['stride']['frames']})",
                f"{cell(r['frames'])} ({r['frames']['snapped']} snapped)",
                f"{r['nb']['wall'] / r['stride']['wall']:.1f}×",
                f"{r['stride']['wall'] / r['floor']['wall']:.2f}×",
            ]
        )
        print(f"  {clip.name}: done", file=sys.stderr, flush=True)
    header = [
        "clip",
        "frames",
        f"notebook: {CELL}",
        f"decode floor: {CELL}",
        f"keyframe-only (20): {CELL}",
        f"vnarrate --stride 50: {CELL} (frames)",
        f"vnarrate --frames 20: {CELL}",
        "notebook ÷ --stride 50",
        "--stride 50 ÷ floor",
    ]
    return table(f"The shared clips (medians of {n} interleaved rounds)", header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--run", nargs=3, metavar=("VARIANT", "CLIP", "ARG"), help=argparse.SUPPRESS)
    ap.add_argument("--make", metavar="NAME", help=argparse.SUPPRESS)
    ap.add_argument("--versions", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="one round; no 1-hour clips")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["targets", "clips"], action="append", default=[])
    ap.add_argument("--choices", action="store_true", help="the measurements behind the design")
    ns = ap.parse_args()
    if ns.run:
        name, clip, arg = ns.run
        print(json.dumps(VARIANTS[name](clip, json.loads(arg))))
        return
    if ns.make:
        make(ns.make)
        return
    if ns.versions:
        import av
        import cv2

        print(f"OpenCV {cv2.__version__}, PyAV {av.__version__}")
        return
    if ns.choices:
        from bench_choices import main as choices

        choices(generated("h264_720p_3min.mp4"), generated("h264_180p_1h.mp4"))
        return
    import platform

    n = 1 if ns.quick else ns.rounds
    parts = ns.only or ["targets", "clips"]
    versions = subprocess.run(
        [sys.executable, __file__, "--versions"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(
        f"Python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start\n",
        flush=True,
    )
    if "targets" in parts:
        print(bench_targets(n, long=not ns.quick), flush=True)
    if "clips" in parts and MEDIA.is_dir():
        print(bench_clips(n), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
