"""The bad-input matrix through the CLI (besides the cases in test_cli.py): unreadable files,
output folders that cannot be written, existing outputs, names with spaces and unicode, symlink
loops, a huge frame, absurd --jobs, a malformed .env, and broken --script files. Each ends in the
documented exit code and one line naming the cause, and none pays for an API call it cannot use."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import respx
from _media import make_video, speech_pcm
from conftest import TEST_KEY, THREE_SHOT_SCRIPT, chat_response, run_cli

DESC = {"title": "Colours", "description": "Flat colours and a square."}
SCRIPT = THREE_SHOT_SCRIPT


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    return TEST_KEY


def error_line(err: str) -> str:
    """The one stderr line of a failed single-input run (besides warnings)."""
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("vnarrate: warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("vnarrate: error: "), err
    assert "Traceback" not in err and TEST_KEY not in err
    return lines[0]


# --- an unreadable file ------------------------------------------------------------------------


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root reads a chmod 000 file anyway; test_unreadable_file_mocked covers this case",
)
def test_unreadable_file_real_permissions(api: respx.Router, video: Path) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    video.chmod(0)
    try:
        r = run_cli(["describe", video, "--no-cache"])
    finally:
        video.chmod(0o644)
    assert r.code == 4, r
    line = error_line(r.err)
    assert "cannot read (Permission denied)" in line and line.count(str(video)) == 1
    assert route.call_count == 0


def test_unreadable_file_mocked(
    api: respx.Router, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root can read a chmod 000 file, so the denial is simulated where it happens: PyAV's open
    raises av.PermissionError (errno 13), exactly what it raises for an unprivileged user (checked
    by hand with `setpriv --reuid=65534`). It is an OSError *and* an FFmpegError: it must be
    reported as unreadable, not as a corrupt video. The other input of the batch still runs."""
    locked = tmp_path / "locked.mp4"
    locked.write_bytes(video.read_bytes())
    real_open = av.open

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(locked):
            raise av.error.PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", fake_open)
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    r = run_cli(["describe", locked, video, "--json", "--no-cache", "--frames", "2"])
    assert r.code == 4, r
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [row["status"] for row in rows] == ["error", "ok"]
    assert rows[0]["exit_code"] == 4
    assert rows[0]["error"] == f"{locked}: cannot read (Permission denied)"
    assert route.call_count == 1  # only for the readable one
    errors = [ln for ln in r.err.splitlines() if ln.startswith("vnarrate: error:")]
    assert errors == [f"vnarrate: error: {locked}: cannot read (Permission denied)"]


# --- not a regular file -------------------------------------------------------------------------


@pytest.fixture
def fifos(tmp_path: Path) -> Any:
    """A FIFO named like a video and one named like an image. Reading one would block until a
    writer comes: a thread plays that writer after 10 s, so a regression fails instead of
    hanging."""
    made = [tmp_path / "pipe.mp4", tmp_path / "pipe.jpg"]
    for path in made:
        os.mkfifo(path)

    def unblock() -> None:
        for path in made:
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)

    timer = threading.Timer(10.0, unblock)
    timer.start()
    yield made
    timer.cancel()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_or_a_device_is_not_a_regular_file(
    api: respx.Router, video: Path, fifos: list[Path]
) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    inputs = [*fifos, *(["/dev/zero"] if Path("/dev/zero").exists() else []), video]
    r = run_cli(["describe", *inputs, "--json", "--no-cache", "--frames", "2"])
    assert r.code == 4, r
    rows = {row["input"]: row for row in map(json.loads, r.out.splitlines())}
    for bad in inputs[:-1]:
        assert rows[str(bad)]["exit_code"] == 4
        assert rows[str(bad)]["error"].startswith(f"{bad}: not a regular file"), rows[str(bad)]
    assert rows[str(video)]["status"] == "ok"
    assert route.call_count == 1  # only the video
    r = run_cli(["voiceover", fifos[0]])
    assert r.code == 4 and "not a regular file" in error_line(r.err), r


# --- outputs that cannot or must not be written ------------------------------------------------


@pytest.mark.parametrize("command", ["describe", "script", "voiceover"])
def test_out_dir_under_a_regular_file_fails_before_any_api_call(
    api: respx.Router, video: Path, tmp_path: Path, command: str
) -> None:
    chat = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    speech = api.post("/audio/speech").respond(200, content=speech_pcm(0.5))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    r = run_cli([command, video, "--out-dir", blocker / "out", "--no-cache", "--frames", "2"])
    assert r.code == 6, r
    line = error_line(r.err)
    assert f"{blocker} is not a directory" in line
    assert chat.call_count == 0 and speech.call_count == 0  # nothing paid for
    assert blocker.read_text() == "not a folder\n"


def test_frames_into_a_folder_under_a_regular_file(video: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = run_cli(["frames", video, "-o", blocker / "frames"])
    assert r.code == 6, r
    assert "is not a directory" in error_line(r.err)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root writes into a read-only folder anyway"
)
def test_read_only_out_dir(api: respx.Router, video: Path, tmp_path: Path) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        r = run_cli(["describe", video, "--out-dir", locked / "sub", "--no-cache"])
    finally:
        locked.chmod(0o755)
    assert r.code == 6, r
    assert "is not writable" in error_line(r.err)
    assert route.call_count == 0


def test_existing_output_without_force_in_a_batch(api: respx.Router, tmp_path: Path) -> None:
    """One input's output exists: that input fails with exit 6 before its request is paid for,
    the other one runs, and the existing file is untouched; --force then overwrites it."""
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    a = make_video(tmp_path / "a.mp4", seconds=1.0)
    b = make_video(tmp_path / "b.mp4", seconds=1.0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.description.json").write_text("mine\n")  # --json writes JSON files
    r = run_cli(["describe", a, b, "--out-dir", out, "--json", "--no-cache"])
    assert r.code == 6, r
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [(row["status"], row.get("exit_code")) for row in rows] == [("error", 6), ("ok", None)]
    assert "already exists" in rows[0]["error"] and "--force" in rows[0]["error"]
    assert route.call_count == 1
    assert (out / "a.description.json").read_text() == "mine\n"
    assert json.loads((out / "b.description.json").read_text())["title"] == "Colours"
    r = run_cli(["describe", a, b, "--out-dir", out, "--json", "--no-cache", "--force"])
    assert r.code == 0, r
    assert json.loads((out / "a.description.json").read_text())["title"] == "Colours"


@pytest.mark.parametrize("existing", ["clip.narration.mp3", "clip.srt", "clip.script.json"])
def test_voiceover_refuses_existing_outputs_before_paying(
    api: respx.Router, video: Path, tmp_path: Path, existing: str
) -> None:
    chat = api.post("/chat/completions").respond(200, json=chat_response(SCRIPT))
    speech = api.post("/audio/speech").respond(200, content=speech_pcm(0.5))
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_bytes(b"keep")
    r = run_cli(["voiceover", video, "--out-dir", out, "--tts-backend", "speech", "--no-cache"])
    assert r.code == 6, r
    line = error_line(r.err)
    assert existing in line and "already exists" in line and "--force" in line
    assert chat.call_count == 0 and speech.call_count == 0
    assert sorted(p.name for p in out.iterdir()) == [existing]
    assert (out / existing).read_bytes() == b"keep"


# --- names with spaces and unicode -------------------------------------------------------------


def test_spaces_and_unicode_in_names(api: respx.Router, tmp_path: Path) -> None:
    chat = api.post("/chat/completions").respond(200, json=chat_response(SCRIPT))
    api.post("/audio/speech").respond(200, content=speech_pcm(0.5))
    folder = tmp_path / "Vidéos d'été 🎬"
    folder.mkdir()
    clip = make_video(folder / "Ünïcødé clip — 東京 (1).mp4", seconds=3.0, cuts_s=(1.5,))
    out = tmp_path / "sortie à part"
    r = run_cli(
        ["voiceover", clip, "--out-dir", out, "--tts-backend", "speech", "--json", "--no-cache"]
    )
    assert r.code == 0, r
    row = json.loads(r.out)
    assert row["input"] == str(clip) and row["status"] == "ok"
    stem = "Ünïcødé clip — 東京 (1)"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{stem}{s}"
        for s in (
            ".narration.mp3",
            ".srt",
            ".vtt",
            ".script.json",
            ".timeline.png",
            ".vnarrate.json",
        )
    )
    manifest = json.loads((out / f"{stem}.vnarrate.json").read_text(encoding="utf-8"))
    assert manifest["input"] == str(clip)
    assert chat.call_count == 1
    # The same input again with --skip-existing: recognised as complete through its manifest.
    r = run_cli(["voiceover", clip, "--out-dir", out, "--skip-existing", "--json", "--no-cache"])
    assert r.code == 0 and json.loads(r.out)["status"] == "skipped", r
    assert chat.call_count == 1


# --- a symlink loop in a recursive folder ------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_loop_in_a_recursive_folder(api: respx.Router, tmp_path: Path) -> None:
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    make_video(root / "sub" / "deep.mp4", seconds=1.0)
    make_video(root / "top.mp4", seconds=1.0)
    (root / "sub" / "back-up").symlink_to(root)  # a loop to an ancestor
    (root / "sub" / "me").symlink_to(".")  # a loop to itself
    out = tmp_path / "out"
    r = run_cli(["describe", root, "-r", "--out-dir", out, "--json", "--no-cache", "--frames", "1"])
    assert r.code == 0, r
    rows = [json.loads(line) for line in r.out.splitlines()]
    # Each video once, in the folder's sorted order, however many ways the loops lead to it.
    assert [Path(row["input"]).relative_to(root).as_posix() for row in rows] == [
        "sub/deep.mp4",
        "top.mp4",
    ]
    assert all(row["status"] == "ok" for row in rows)
    assert route.call_count == 2
    warnings = [ln for ln in r.err.splitlines() if "symbolic link loop" in ln]
    assert len(warnings) == 2 and all(ln.startswith("vnarrate: warning:") for ln in warnings)


# --- a 10,000 x 10,000 video -------------------------------------------------------------------


def _huge_video(path: Path, size: int = 10_000) -> Path:
    """One flat-colour frame of size x size, H.264: x264 ultrafast makes it in ~1 s, ~300 KB."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=1)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "40", "threads": "1", "rc-lookahead": "0"}
        frame = av.VideoFrame(size, size, "yuv420p")
        for plane, value in zip(frame.planes, (81, 90, 240), strict=True):  # a flat red
            plane.update(np.full(plane.buffer_size, value, np.uint8).tobytes())
        for packet in [*vs.encode(frame), *vs.encode()]:
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _huge_video(tmp_path_factory.mktemp("huge") / "huge 10000x10000.mp4")


def test_huge_frame_is_resized_and_sent_small(api: respx.Router, huge: Path) -> None:
    import base64

    import cv2

    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    r = run_cli(["describe", huge, "--json", "--no-cache"])
    assert r.code == 0, r
    assert json.loads(r.out)["frames_sent"] == 1
    parts = json.loads(route.calls[0].request.content)["messages"][1]["content"]
    (url,) = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    jpeg = base64.b64decode(url.split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (768, 768)  # --resize's default, not 10,000 px
    assert len(jpeg) < 100_000
    b, g, red = (int(v) for v in img.mean(axis=(0, 1)))
    assert red > 200 and g < 60 and b < 60  # the picture survived, colours the right way round


def test_huge_frame_memory_is_bounded(huge: Path, tmp_path: Path) -> None:
    """In a fresh process (so the peak is this run's): one 10,000 x 10,000 frame is 300 MB as
    RGB and 150 MB as YUV; the probe and the frame reader each decode it once. Holding several
    full-size copies (or every frame, as the notebook does) would break this bound."""
    code = (
        "import resource, sys\n"
        "from vnarrate.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = tmp_path / "frames"
    done = subprocess.run(
        [sys.executable, "-c", code, "frames", str(huge), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split()[-1]) / 1024
    assert peak_mb < 1500, f"peak RSS {peak_mb:.0f} MB"
    doc = json.loads((out / "frames.json").read_text())
    assert (doc["video"]["width"], doc["video"]["height"]) == (10_000, 10_000)
    assert [(f["width"], f["height"]) for f in doc["frames"]] == [(768, 768)]


# --- absurd --jobs -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["describe", "script", "voiceover", "plan", "frames"])
@pytest.mark.parametrize("jobs", ["0", "-4", "65", "1e9", "lots"])
def test_absurd_jobs_is_a_usage_error(video: Path, command: str, jobs: str) -> None:
    r = run_cli([command, video, "--jobs", jobs])
    assert r.code == 2, r
    line = error_line(r.err)
    assert "--jobs" in line and r.out == ""


def test_absurd_jobs_from_the_environment_is_a_config_error(
    video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VNARRATE_JOBS", "100000")
    r = run_cli(["plan", video])
    assert r.code == 3, r
    assert "VNARRATE_JOBS" in error_line(r.err)


# --- a malformed .env --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("# settings\n\nthis is not a setting\nVNARRATE_MODEL=gpt-5.4-mini\n", "line 3"),
        (f"OPENAI_API_KEY {TEST_KEY}\n=orphan value\n", "lines 1, 2"),
        (f'VNARRATE_LANGUAGE="en\nOPENAI_API_KEY={TEST_KEY}\n', "line 1"),  # unclosed quote
        (f"VNARRATE_MODEL=gpt-5.4-mini\n{TEST_KEY}\n", "line 2"),  # a pasted key, alone
    ],
    ids=["garbage-line", "missing-equals", "unclosed-quote", "bare-word"],
)
def test_malformed_dotenv_is_a_config_error_naming_the_line(
    api: respx.Router, video: Path, text: str, lines: str
) -> None:
    """python-dotenv only logs a warning per bad line and carries on without those settings,
    so a broken key line would surface later as a confusing 'no API key'. vnarrate stops with
    exit 3 and names the lines; it never shows their text (it may hold a key)."""
    route = api.post("/chat/completions").respond(200, json=chat_response(DESC))
    Path(".env").write_text(text)
    for args in (["plan", video], ["describe", video, "--no-cache"], ["cache", "info"]):
        r = run_cli(args)
        assert r.code == 3, (args, r)
        line = error_line(r.err)
        assert line.startswith(f"vnarrate: error: .env: cannot parse {lines} ("), line
        assert "python-dotenv" not in r.err and TEST_KEY not in r.err
    assert route.call_count == 0


def test_well_formed_dotenv_with_comments_export_and_quotes_is_fine(video: Path) -> None:
    Path(".env").write_text(
        "# a comment\n\nexport VNARRATE_MODEL='gpt-5.4-mini'\n"
        'VNARRATE_LANGUAGE="Brazilian Portuguese"  # inline comment\n'
        "VNARRATE_SAMPLE=count\nVNARRATE_FRAMES=2\n"
    )
    r = run_cli(["plan", video, "--json"])
    assert r.code == 0, r
    assert len(json.loads(r.out)["plan"]["frame_times_s"]) == 2


def test_dotenv_that_is_not_utf8(video: Path) -> None:
    Path(".env").write_bytes(b"VNARRATE_MODEL=\xff\xfe\n")
    r = run_cli(["plan", video])
    assert r.code == 3, r
    assert "cannot read .env" in error_line(r.err)


# --- a broken --script file --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"title": "x", "language": "en", "segments": [', "not valid JSON (line 1, column"),
        ("", "not valid JSON"),
        ("[1, 2, 3]", "invalid script: (top level)"),
        ('{"title": "x", "segments": []}', "invalid script: language: Field required"),
        (
            '{"title": "x", "language": "en", "segments": [{"start_s": 0, "end_s": 1}]}',
            "invalid script: segments.0.text: Field required",
        ),
        (
            '{"title": "x", "language": "en", "segments": '
            '[{"start_s": 0, "end_s": 1, "text": "a"}, {"start_s": "soon", "end_s": 2, "text": "b"}]}',
            "invalid script: segments.1.start_s:",
        ),
        (
            '{"title": "x", "language": "en", "segments": [{"start_s": -1, "end_s": 1, "text": "a"}]}',
            "invalid script: segments.0.start_s: Input should be greater than or equal to 0",
        ),
        (  # every problem at once, in one line
            '{"segments": [{"end_s": 1, "text": "a"}]}',
            "invalid script: title: Field required; language: Field required; "
            "segments.0.start_s: Field required",
        ),
    ],
    ids=[
        "truncated",
        "empty",
        "not-an-object",
        "no-language",
        "no-text",
        "start-not-a-number",
        "negative-start",
        "three-problems",
    ],
)
def test_broken_script_file_names_the_field(
    api: respx.Router, video: Path, tmp_path: Path, content: str, words: str
) -> None:
    chat = api.post("/chat/completions").respond(200, json=chat_response(SCRIPT))
    speech = api.post("/audio/speech").respond(200, content=speech_pcm(0.5))
    script = tmp_path / "edited script.json"
    script.write_text(content)
    out = tmp_path / "out"
    r = run_cli(
        ["voiceover", video, "--script", script, "--out-dir", out, "--tts-backend", "speech"]
    )
    assert r.code == 4, r
    line = error_line(r.err)
    assert words in line, line
    assert str(script) in line
    assert chat.call_count == 0 and speech.call_count == 0
    assert not out.exists() or not any(out.iterdir())


def test_script_file_missing(video: Path, tmp_path: Path) -> None:
    r = run_cli(["voiceover", video, "--script", tmp_path / "nope.json"])
    assert r.code == 4, r
    assert "no such script file" in error_line(r.err)


def test_script_file_with_no_segment_inside_the_video(
    api: respx.Router, video: Path, tmp_path: Path
) -> None:
    script = tmp_path / "late.json"
    script.write_text(
        json.dumps(
            {
                "title": "x",
                "language": "en",
                "segments": [{"start_s": 60, "end_s": 62, "text": "a"}],
            }
        )
    )
    r = run_cli(["voiceover", video, "--script", script, "--out-dir", tmp_path / "out"])
    assert r.code == 4, r
    assert "no segments inside the video" in error_line(r.err)
