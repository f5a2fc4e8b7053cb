"""Start-up of the command line: `vnarrate --help` and a command's `--help`, wall time and peak
memory from `/usr/bin/time -v`, the commands interleaved, medians.

    python benchmarks/bench_startup.py                                # this checkout's vnarrate
    python benchmarks/bench_startup.py --before /tmp/old/venv/bin/vnarrate   # and an older one
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path


def run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak MB) of one run."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+\.\d+)", out.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    assert wall and rss, out.stderr
    return float(wall.group(2)) + 60 * int(wall.group(1) or 0), int(rss.group(1)) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(sys.executable).with_name("vnarrate")
    ap.add_argument("--after", default=str(here), help="this checkout's vnarrate")
    ap.add_argument("--before", help="an older vnarrate to compare with")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    if not shutil.which("/usr/bin/time"):
        sys.exit("needs /usr/bin/time (Debian: apt install time)")
    cmds: dict[str, list[str]] = {}
    for label, exe in (("before", args.before), ("after", args.after)):
        if exe:
            for argv in (["--help"], ["describe", "--help"], ["voiceover", "--help"]):
                cmds[f"vnarrate {' '.join(argv)}, {label}"] = [exe, *argv]
    rows: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for name, cmd in cmds.items():
            rows.setdefault(name, []).append(run(cmd))
    print("| command | wall | peak memory |\n|---|---:|---:|")
    for name, runs in rows.items():
        wall = statistics.median(w for w, _ in runs)
        mb = statistics.median(m for _, m in runs)
        print(f"| `{name}` | {wall:.3f} s | {mb:.1f} MB |")


if __name__ == "__main__":
    main()
