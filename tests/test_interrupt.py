"""Signals and closed pipes, sent to the real program: Ctrl-C (SIGINT) and SIGTERM at many moments
of a voiceover with --mux, and in a batch stuck in requests, stop at once with 130 / 143, one
line on stderr saying what was interrupted, no temporary file anywhere, and a rerun with
--skip-existing completes the job without --force. A reader that closes stdout ends the run
quietly with 141."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _media import make_video
from fake_server import FakeOpenAI, serve

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
OUTPUTS = {
    "clip.narration.mp3",
    "clip.srt",
    "clip.vtt",
    "clip.script.json",
    "clip.timeline.png",
    "clip.narrated.mp4",
}


def env(key: str = "sk-test-interrupt") -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return {**clean, "OPENAI_API_KEY": key, "PYTHONUNBUFFERED": "1"}


def vnarrate(*args: object) -> list[str]:
    return [sys.executable, "-m", "vnarrate", *map(str, args)]


def leftovers(folder: Path) -> list[str]:
    """Temporary files (and their folders) anywhere under `folder`."""
    return [str(p) for p in folder.rglob("*") if ".part" in p.name or p.name.startswith(".")]


@pytest.fixture(scope="module")
def slow() -> Iterator[FakeOpenAI]:
    """The fake OpenAI server, answering every request after 0.15 s."""
    with serve() as server:
        server.fault = lambda path, body: time.sleep(0.15)  # type: ignore[func-returns-value]
        yield server


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    return make_video(folder / "clip.mp4", seconds=6.0, fps=10)


def voiceover(clip: Path, server: FakeOpenAI, *extra: object) -> list[str]:
    return vnarrate("voiceover", clip, "--mux", "clip.narrated.mp4", "--frames", "3",
                    "--base-url", server.url, "--provider", "openai", "--tts-backend", "speech",
                    *extra)  # fmt: skip


def interrupt(cmd: list[str], cwd: Path, sig: signal.Signals, when: str | float) -> tuple[int, str]:
    """Run `cmd` in `cwd` and send `sig` when stderr shows a line containing `when` (with -v),
    or after `when` seconds; the exit code and all of stderr."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env(), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = ""
    if isinstance(when, str):
        for line in proc.stderr:
            seen += line
            if when in line:
                break
    else:
        time.sleep(when)
    proc.send_signal(sig)
    try:
        rest = proc.communicate(timeout=15)[1]
    finally:
        proc.kill()
    return proc.returncode, seen + rest


# (signal, moment): a line the run prints with -v, or seconds after the start (no -v: stderr
# must then be that one line). From the vision request to the muxing of the video.
MOMENTS = [
    (signal.SIGTERM, "writing a documentary script"),  # the vision request in flight
    (signal.SIGINT, "speech via"),  # speech requests in flight
    (signal.SIGTERM, "muxing into"),
    (signal.SIGINT, 2.0),
]


def one_moment(
    clip: Path, server: FakeOpenAI, folder: Path, sig: signal.Signals, when: str | float
) -> None:
    folder.mkdir()
    verbose = ["-v"] if isinstance(when, str) else []
    code, err = interrupt(voiceover(clip, server, "--no-cache", *verbose), folder, sig, when)
    assert leftovers(folder) == [], (when, err)
    assert "Traceback" not in err and "vnarrate: error" not in err, err
    if code != 0:  # it may have finished before a late signal
        assert code == CODES[sig], (when, code, err)
        lines = err.strip().splitlines()
        # "during voiceover of clip.mp4 (stage)" once the run has started
        assert lines[-1].startswith(f"vnarrate: interrupted ({sig.name})"), err
        if verbose:
            assert f"during voiceover of {clip} (" in lines[-1], err
        assert sum("interrupted" in line for line in lines) == 1, err
        if not verbose:
            assert len(lines) == 1, err
    rerun = subprocess.run(voiceover(clip, server, "--skip-existing"), cwd=folder, env=env(),
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert rerun.returncode == 0, (when, err, rerun.stderr)
    assert {p.name for p in folder.iterdir()} == {*OUTPUTS, "clip.vnarrate.json"}


def test_signals_at_many_moments_of_a_voiceover_leave_a_resumable_job(
    slow: FakeOpenAI, clip: Path, tmp_path: Path
) -> None:
    with ThreadPoolExecutor(len(MOMENTS)) as pool:
        runs = [
            pool.submit(one_moment, clip, slow, tmp_path / f"m{i}", sig, when)
            for i, (sig, when) in enumerate(MOMENTS)
        ]
        for run in runs:
            run.result()


@pytest.fixture
def stuck_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A server that accepts connections and never answers: every request hangs."""
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
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1", held
    finally:
        stop.set()
        for c in held:
            c.close()
        server.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_stuck_batch_promptly(
    tmp_path: Path, stuck_server: tuple[str, list[socket.socket]], sig: signal.Signals
) -> None:
    url, held = stuck_server
    videos = [make_video(tmp_path / f"{n}.mp4", seconds=1.0) for n in "abc"]
    out = tmp_path / "out"
    cmd = vnarrate("describe", *videos, "--out-dir", out, "--base-url", url, "--provider",
                   "openai", "--no-cache", "--jobs", "3", "--frames", "1")  # fmt: skip
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(held) < 3 and time.monotonic() < deadline:  # all three requests in flight
        time.sleep(0.05)
    assert len(held) >= 3
    start = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - start < 5
    assert proc.returncode == CODES[sig]
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vnarrate: interrupted ({sig.name})"), lines
    assert all(f"{v}" in lines[0] for v in videos)  # the three inputs in flight
    assert not out.exists() or list(out.iterdir()) == []


def test_a_closed_stdout_ends_the_run_quietly(slow: FakeOpenAI, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for n in "abcd":
        make_video(folder / f"{n}.mp4", seconds=1.0)
    cmd = vnarrate("describe", folder, "--json", "--jobs", "2", "--frames", "1", "--no-cache",
                   "--base-url", slow.url, "--provider", "openai", "--out-dir", tmp_path / "out")  # fmt: skip
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # what `head -1` does
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert first.startswith(b'{"input"')
    assert proc.returncode == 141, err
    assert err == "", err  # no traceback, no message
    assert leftovers(tmp_path / "out") == []


def test_a_follower_hears_the_stages_set_directly() -> None:
    from vnarrate.runs.interrupt import Activity

    activity = Activity()
    heard: list[tuple[str, str]] = []
    activity.on_stage = lambda label, what: heard.append((label, what))
    activity.begin("voiceover")
    activity.start("a.mp4")
    activity.stage("a.mp4", "writing a.srt")
    assert heard == [("a.mp4", "writing a.srt")]
    assert activity.describe() == "voiceover of a.mp4 (writing a.srt)"  # as before
    reason = "speech via auto: a compatible server, so its /audio/speech endpoint with 'tts-1'"
    activity.note(f"a.mp4: {reason}, 3 segments, --jobs 4")
    assert activity.describe() == "voiceover of a.mp4 (speaking 3 lines)"  # what, not why
