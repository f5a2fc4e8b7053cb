"""Ctrl-C: a batch stuck in requests stops at once with exit 130 and leaves no output behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _media import make_video


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_a_stuck_batch_promptly(tmp_path: Path) -> None:
    # A server that accepts connections and never answers: every request hangs.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    videos = [make_video(tmp_path / f"{n}.mp4", seconds=1.0) for n in "abc"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY="sk-test-interrupt", PYTHONUNBUFFERED="1")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "vnarrate", "describe", *map(str, videos), "--out-dir", str(out),
           "--base-url", f"http://127.0.0.1:{server.getsockname()[1]}/v1", "--provider", "openai",
           "--no-cache", "--jobs", "3", "--frames", "1"]  # fmt: skip
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while len(held) < 3 and time.monotonic() < deadline:  # all three requests in flight
            time.sleep(0.05)
        assert len(held) >= 3
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert time.monotonic() - start < 5
        assert proc.returncode == 130 and b"interrupted" in err
        assert not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith("."))
    finally:
        stop.set()
        for c in held:
            c.close()
        server.close()
