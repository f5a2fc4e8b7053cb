"""media.load_media_libraries: every thread vnarrate starts to decode (the frames stream, the
soundtrack's decoder, the inputs of --jobs) starts after numpy, PyAV and OpenCV were imported, so
no two threads import them at once (a real run failed at random with numpy's "partially
initialized module" when speech detection and frame decoding started together)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _media import make_video

# Each case runs in a fresh interpreter (this one imported everything long ago) and records, at
# the start of each of vnarrate's threads, which of the three libraries were not yet imported.
WATCH = """
import json, sys, threading
seen = []
start = threading.Thread.start
def watched(self):
    if self.name.startswith("vnarrate"):
        seen.append([self.name, [m for m in ("numpy", "av", "cv2") if m not in sys.modules]])
    start(self)
threading.Thread.start = watched
a, b = sys.argv[1:3]
"""
CLI = """
from vnarrate.cli import main
try:
    main(["plan", *ARGS, "--task", "script", "--json", "-q"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(json.dumps(seen))
"""
STREAM = """
from vnarrate.session import stage_options
from vnarrate.settings import Settings
from vnarrate.vision.stream import choose_frames
o = stage_options(Settings(sample="count", frames=4))
frames, ahead = choose_frames(a, o.sampling, o.pack, warn=print, start=True)
assert ahead is not None
ahead.finish()
print(json.dumps(seen))
"""
CASES = {
    "inputs": (CLI.replace("*ARGS", "a, b, '--jobs', '2'"), "vnarrate-input"),
    "soundtrack": (CLI.replace("*ARGS", "a"), "vnarrate-soundtrack-decode"),
    "frames": (STREAM, "vnarrate-frames"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_decoding_thread_starts_after_the_media_libraries(tmp_path: Path, case: str) -> None:
    code, thread = CASES[case]
    a = make_video(tmp_path / "a.mp4", seconds=2.0, audio=True)
    b = make_video(tmp_path / "b.mp4", seconds=2.0, audio=True)
    done = subprocess.run(
        [sys.executable, "-c", WATCH + code, str(a), str(b)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(name.startswith(thread) for name, _ in seen), seen
    assert all(missing == [] for _, missing in seen), seen
