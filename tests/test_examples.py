"""examples/: each script runs as a user would run it (a real subprocess, a real shell), against
a local OpenAI-shaped server, so the examples cannot rot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _media import make_video
from conftest import ROOT, TEST_KEY
from dotenv import dotenv_values
from fake_server import serve

from vnarrate.settings import Settings

EXAMPLES = ROOT / "examples"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VNARRATE_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        OPENAI_API_KEY=TEST_KEY,
        OPENAI_BASE_URL=url,
        VNARRATE_PROVIDER="openai",  # OpenAI's request shape, validated by the fake server
        VNARRATE_TTS_BACKEND="speech",  # the fake server has /audio/speech, no Realtime API
        VNARRATE_CACHE_DIR=os.environ["VNARRATE_CACHE_DIR"],
        VNARRATE_MAX_RETRIES="0",
        VNARRATE_FRAMES="2",
        RETRY_DELAY="0",
    )
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH or "bash", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_describe_folder_to_jsonl(tmp_path: Path) -> None:
    videos = tmp_path / "my videos"
    videos.mkdir()
    make_video(videos / "first clip.mp4", seconds=1.0)
    make_video(videos / "été.mp4", seconds=1.0)
    (videos / "notes.txt").write_text("not a video")
    with serve() as server:
        out = tmp_path / "all.jsonl"
        proc = _run(
            [str(EXAMPLES / "describe-folder.sh"), str(videos), str(out)],
            _env(server.url),
            tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(Path(r["input"]).name for r in rows) == ["first clip.mp4", "été.mp4"]
        assert all(r["status"] == "ok" and r["title"] for r in rows)
        assert server.calls("/chat/completions") == 2 and not server.errors
        assert TEST_KEY not in proc.stdout + proc.stderr + out.read_text()


def test_voiceover_folder_retries_only_failures(tmp_path: Path) -> None:
    videos = tmp_path / "in"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_video(videos / name, seconds=3.0)
    seen = 0
    lock = threading.Lock()

    def fault(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        # The second script request of the run fails, once. Counted here under a lock: the
        # server's handler threads race each other.
        nonlocal seen
        if not path.endswith("/chat/completions"):
            return None
        with lock:
            seen += 1
            if seen == 2:
                return 400, {"error": {"message": "injected failure", "type": "invalid_request"}}
        return None

    with serve() as server:
        server.fault = fault
        out = tmp_path / "out"
        proc = _run(
            [str(EXAMPLES / "voiceover-folder.sh"), str(videos), str(out)],
            _env(server.url),
            tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert "retrying" in proc.stderr and "all videos narrated (attempt 2)" in proc.stderr
        for stem in ("a", "b", "c"):
            assert (out / f"{stem}.narration.mp3").is_file()
            assert json.loads((out / f"{stem}.vnarrate.json").read_text())["status"] == "complete"
        first = [json.loads(x) for x in (tmp_path / "out.attempt1.jsonl").read_text().splitlines()]
        second = [json.loads(x) for x in (tmp_path / "out.attempt2.jsonl").read_text().splitlines()]
        assert sorted(r["status"] for r in first) == ["error", "ok", "ok"]
        assert sorted(r["status"] for r in second) == ["ok", "skipped", "skipped"]
        assert not server.errors


def test_local_server_env_names_real_settings(tmp_path: Path) -> None:
    values = dotenv_values(EXAMPLES / "local-server.env")
    assert values, "the example .env must parse"
    fields = set(Settings.model_fields)
    for name in values:
        if name.startswith("VNARRATE_"):
            assert name.removeprefix("VNARRATE_").lower() in fields, name
    shutil.copy(EXAMPLES / "local-server.env", tmp_path / ".env")
    os.chdir(tmp_path)
    from vnarrate.session import NO_KEY, api_key, stage_options
    from vnarrate.settings import load_settings

    s = load_settings()
    options = stage_options(s)
    assert options.provider == "ollama" and options.chat.token_field == "max_tokens"
    assert api_key(s, options.profile) == NO_KEY and s.max_frames == 16
