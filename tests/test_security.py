"""Security: the API key never shows up anywhere (stdout, stderr with -v, outputs, manifests,
the cache), whichever way it was given and whatever the server echoes back; no shell or
subprocess is ever started; and outputs named after hostile input names stay inside --out-dir."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import respx
from _media import make_video, speech_pcm
from conftest import TEST_KEY, THREE_SHOT_SCRIPT, chat_response, run_cli

from vnarrate.narration.pace import CALIBRATION_TEXT, CALIBRATION_WORDS

# Two recognizable keys: one shaped like OpenAI's (which the key-shaped-text regex would mask
# anyway) and one that is not, so that only redaction of *the* key protects it.
PLAIN_KEY = "local-Tok3n-XYZZY-987654321"
KEYS = {"sk": TEST_KEY, "plain": PLAIN_KEY}

DESC = {"title": "Three shots", "description": "A grey square crosses three colours."}
SCRIPT = THREE_SHOT_SCRIPT


def needles(key: str) -> list[bytes]:
    """The key, and its middle (a half-masked key is still a leak)."""
    return [key.encode(), key[4:-4].encode()]


def leaks(key: str, *texts: str, roots: tuple[Path, ...] = ()) -> list[str]:
    """Where the key appears: in the given texts or any file under `roots`."""
    found = []
    for i, text in enumerate(texts):
        if any(n in text.encode() for n in needles(key)):
            found.append(f"text #{i}: {text[:300]!r}")
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(n in data for n in needles(key)):
                    found.append(str(path))
    return found


# --- no shell, no subprocess -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every way Python starts a process fails the test (and is recorded, in case something
    catches the exception)."""
    started: list[str] = []

    def refuse(name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            started.append(f"{name}{args!r}")
            raise AssertionError(f"vnarrate started a process: {name}{args!r}")

        return fail

    monkeypatch.setattr(subprocess, "Popen", refuse("subprocess.Popen"))
    for name in (
        "system",
        "popen",
        "posix_spawn",
        "posix_spawnp",
        "fork",
        "forkpty",
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "execl",
        "execlp",
        "execle",
        "execlpe",
        "spawnv",
        "spawnve",
        "spawnvp",
        "spawnvpe",
        "spawnl",
        "spawnlp",
    ):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse(f"os.{name}"))
    yield started
    assert started == [], started


# --- the key never appears ---------------------------------------------------------------------


def _chat_answer(request: httpx2.Request) -> respx.MockResponse:
    body = json.loads(request.content)
    name = (body.get("response_format") or {}).get("json_schema", {}).get("name", "")
    return respx.MockResponse(200, json=chat_response(SCRIPT if "Script" in name else DESC))


def _give_key(how: str, key: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Set the key the way a user would; returns the flags to add (for --api-key)."""
    if how == "env":
        monkeypatch.setenv("OPENAI_API_KEY", key)
    elif how == "vnarrate-env":
        monkeypatch.setenv("VNARRATE_API_KEY", key)
    elif how == "dotenv":
        Path(".env").write_text(f"# my settings\nOPENAI_API_KEY={key}\n")
    elif how == "flag":
        return ["--api-key", key]
    return []


def _speech_answer(request: httpx2.Request) -> respx.MockResponse:
    """Half a second a line; the sentence measuring the voice's pace at 2.5 words a second
    (the default pace the earlier `script` run budgeted with: the same prompt, from the cache)."""
    text = json.loads(request.content)["input"]
    seconds = CALIBRATION_WORDS / 2.5 if text == CALIBRATION_TEXT else 0.5
    return respx.MockResponse(200, content=speech_pcm(seconds))


@pytest.mark.parametrize("how", ["env", "vnarrate-env", "dotenv", "flag"])
@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_every_command_keeps_the_key_out_of_everything(
    api: respx.Router,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    key: str,
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("VNARRATE_CACHE_DIR", str(cache))
    flag = _give_key(how, key, monkeypatch)
    chat = api.post("/chat/completions").mock(side_effect=_chat_answer)
    speech = api.post("/audio/speech").mock(side_effect=_speech_answer)
    api.get("/models").respond(
        200,
        json={
            "object": "list",
            "data": [{"id": "gpt-5.4-mini", "object": "model", "created": 0, "owned_by": "o"}],
        },
    )
    (tmp_path / "in").mkdir()
    video = make_video(tmp_path / "in" / "clip.mp4", seconds=3.0, cuts_s=(1.0, 2.0))
    out = tmp_path / "out"
    conn = [*flag, "--max-retries", "0"]
    runs = [
        ["-v", "describe", video, "--out-dir", out, "--json", "--frames", "2", *conn],
        ["describe", video, "--frames", "2", "-v", *conn],  # from the cache, markdown to stdout
        ["describe", video, "--frames", "2", "--dry-run", "--json", *conn],
        ["script", video, "-o", out / "edited.json", "--frames", "2", "-v", *conn],
        [
            "voiceover", video, "--out-dir", out / "vo", "--frames", "2", "--tts-backend",
            "speech", "--mux", out / "narrated.mp4", "--json", "-v", *conn,
        ],
        [
            "voiceover", video, "--script", out / "edited.json", "-o", out / "vo2" / "again.mp3",
            "--tts-backend", "speech", "--voice", "onyx", "-v", *conn,
        ],
        ["plan", video, "--task", "voiceover", "--json", *conn],
        ["models", "-v", *conn],
        ["frames", video, "-o", out / "frames", "--frames", "2", "-v"],
        ["cache", "info", "-v"],
    ]  # fmt: skip
    texts: list[str] = []
    for args in runs:
        r = run_cli(args)
        assert r.code == 0, (args, r)
        texts += [r.out, r.err]
    # Everything ran for real, with this key on the wire.
    # Speech: two lines in each voiceover, and the voice's pace measured once (the second run
    # speaks a given script: no budgets, no measure).
    assert chat.call_count == 2 and speech.call_count == 5
    for call in api.calls:
        assert call.request.headers["Authorization"] == f"Bearer {key}"
        # The SDK's own headers are intact (our client subclass only avoids `uname -p`).
        assert call.request.headers["User-Agent"].startswith("OpenAI/Python ")
        assert call.request.headers["X-Stainless-OS"] in ("Linux", "MacOS", "Windows", "Unknown")
    assert (out / "clip.describe.vnarrate.json").is_file() and (out / "narrated.mp4").is_file()
    assert (out / "vo" / "clip.vnarrate.json").is_file()
    assert (out / "edited.script.vnarrate.json").is_file()  # named after -o
    # The cache holds chat answers and the voice's pace (.json) and speech (.bin): those were
    # searched too.
    assert len(list(cache.rglob("*.json"))) == 3 and len(list(cache.rglob("*.bin"))) == 5
    assert leaks(key, *texts, roots=(out, cache, tmp_path / "in")) == []
    r = run_cli(["cache", "clear"])
    assert r.code == 0 and leaks(key, r.out, r.err) == []


def _echo(key: str) -> str:
    return f"Incorrect API key provided: {key}. Bearer {key} was sent by client 10.0.0.7"


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, lambda k: {"error": {"message": _echo(k), "code": "invalid_api_key"}}),
        (400, lambda k: {"error": {"message": _echo(k), "code": "content_policy_violation"}}),
        (403, lambda k: {"error": {"message": _echo(k)}}),
        (404, lambda k: {"error": {"message": _echo(k), "code": "model_not_found"}}),
        (429, lambda k: {"error": {"message": _echo(k)}}),
        (500, lambda k: f"<html><body><pre>{_echo(k)}</pre></body></html>"),
        (422, lambda k: {"detail": [{"msg": _echo(k), "loc": ["body", "model"]}]}),
        (200, lambda k: f"<html><p>{_echo(k)}</p></html>"),
        (200, lambda k: '{"echo": "' + _echo(k) + '", "truncated'),
    ],
    ids=["401", "400", "403", "404", "429", "500-html", "422-detail", "200-html", "200-broken"],
)
def test_error_echoing_the_key_is_redacted(
    api: respx.Router,
    video: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    status: int,
    body: Any,
) -> None:
    """The server puts the key in its error (some proxies and local servers do): our one-line
    message, the JSONL record and the cache never carry it."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VNARRATE_CACHE_DIR", str(cache))
    monkeypatch.setenv("OPENAI_API_KEY", key)
    payload = body(key)
    kw: dict[str, Any] = {"json": payload} if isinstance(payload, dict) else {"text": payload}
    if isinstance(payload, str) and payload.startswith("{"):
        kw = {"content": payload.encode(), "content_type": "application/json"}
    api.post("/chat/completions").respond(status, **kw)
    out = tmp_path / "out"
    texts = []
    for command in ("describe", "script"):
        r = run_cli([command, video, "--out-dir", out, "--json", "--max-retries", "0", "-v"])
        assert r.code == 5, r
        assert json.loads(r.out)["status"] == "error"
        texts += [r.out, r.err]
    assert leaks(key, *texts, roots=(tmp_path,)) == []


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_speech_and_models_errors_echoing_the_key(
    api: respx.Router, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", key)
    api.post("/chat/completions").respond(200, json=chat_response(SCRIPT))
    api.post("/audio/speech").respond(400, json={"error": {"message": _echo(key)}})
    api.get("/models").respond(401, json={"error": {"message": _echo(key)}})
    r1 = run_cli(["voiceover", video, "--out-dir", tmp_path / "o", "--tts-backend", "speech"])
    assert r1.code == 5, r1
    r2 = run_cli(["models", "-v"])
    assert r2.code == 5, r2
    assert "401" in r2.out + r2.err
    assert leaks(key, r1.out, r1.err, r2.out, r2.err, roots=(tmp_path,)) == []


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_connection_errors_and_unexpected_errors_do_not_show_the_key(
    api: respx.Router, video: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", key)
    route = api.post("/chat/completions").mock(
        side_effect=[
            httpx2.ConnectError(f"proxy refused Authorization: Bearer {key}"),
            RuntimeError(f"bug with {key} in its message"),
        ]
    )
    r1 = run_cli(["describe", video, "--max-retries", "0", "--no-cache"])
    r2 = run_cli(["describe", video, "--max-retries", "0", "--no-cache", "-v"])
    assert route.call_count == 2
    assert r1.code == 5 and r2.code in (1, 5), (r1, r2)
    assert leaks(key, r1.out, r1.err, r2.out, r2.err) == []


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_a_model_answer_quoting_the_key_is_not_written_or_cached(
    api: respx.Router, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """A compromised or buggy server could put the key into the answer itself. It must not
    reach stdout, the output files, the cache, or the speech endpoint (to be read aloud)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VNARRATE_CACHE_DIR", str(cache))
    monkeypatch.setenv("OPENAI_API_KEY", key)
    video = make_video(tmp_path / "clip.mp4", seconds=3.0)
    evil_desc = {"title": f"Key {key}", "description": f"Your key is {key}."}
    evil_script = {
        "title": "t",
        "language": "en",
        "segments": [{"start_s": 0.0, "end_s": 2.9, "text": f"Key {key}."}],
    }

    def answer(request: httpx2.Request) -> respx.MockResponse:
        body = json.loads(request.content)
        name = (body.get("response_format") or {}).get("json_schema", {}).get("name", "")
        return respx.MockResponse(
            200, json=chat_response(evil_script if "Script" in name else evil_desc)
        )

    api.post("/chat/completions").mock(side_effect=answer)
    speech = api.post("/audio/speech").respond(200, content=speech_pcm(0.5))
    out = tmp_path / "out"
    texts = []
    for args in (
        ["describe", video],
        ["describe", video, "--json", "--out-dir", out],
        ["voiceover", video, "--out-dir", out, "--tts-backend", "speech", "--json"],
    ):
        r = run_cli(args)
        texts += [r.out, r.err]
    sent = [c.request.content.decode() for c in speech.calls]
    assert leaks(key, *texts, *sent, roots=(out, cache)) == []


# --- hostile input names -----------------------------------------------------------------------

HOSTILE = [
    "..%2f..%2fescape.mp4",
    "..%2F..",  # no extension: taken as a video because it is named explicitly
    "-rf.mp4",
    "--force.mp4",
    " spaced  out .mp4",
    "Ünïcødé clip — 東京.mp4",
    "evil\nline\r.mp4",
    "CON.mp4",
    "$(touch PWNED).mp4",
    "`touch PWNED2`;rm -rf ~.mp4",
    "\u202egnp.mp4",  # right-to-left override
    "...mp4",
    "x" * 240 + ".mp4",
]


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_hostile_input_names_stay_inside_out_dir(
    api: respx.Router, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    api.post("/chat/completions").mock(side_effect=_chat_answer)
    api.post("/audio/speech").respond(200, content=speech_pcm(0.3))
    src = tmp_path / "deep" / "src"
    src.mkdir(parents=True)
    base = make_video(tmp_path / "base.mp4", seconds=1.0)
    for name in HOSTILE:
        (src / name).write_bytes(base.read_bytes())
    out = tmp_path / "deep" / "out"
    before = _all_files(tmp_path)
    cwd_before = set(Path.cwd().iterdir())
    args = [str(src / n) for n in HOSTILE]
    runs = [
        ["describe", "--out-dir", out / "d", "--json", "--frames", "1", "--", *args],
        ["script", "--out-dir", out / "s", "--json", "--frames", "1", "--", *args],
        ["voiceover", "--out-dir", out / "v", "--json", "--frames", "1", "--tts-backend",
         "speech", "--", *args],
        ["frames", "-o", out / "f", "--frames", "1", "--", *args],
    ]  # fmt: skip
    for cmd in runs:
        r = run_cli([str(a) for a in cmd])
        assert r.code == 0, (cmd[0], r)
        if "--json" in cmd:
            rows = [json.loads(line) for line in r.out.splitlines()]
            assert [row["input"] for row in rows] == args
            for row in rows:
                for written in row["outputs"]:
                    real = os.path.realpath(written)
                    assert real.startswith(os.path.realpath(out) + os.sep), written
    created = _all_files(tmp_path) - before
    outside = [p for p in created if not str(p).startswith(str(out) + os.sep) and p != out]
    assert outside == []
    assert set(Path.cwd().iterdir()) == cwd_before
    assert not list(tmp_path.rglob("PWNED*")) and not (Path.home() / "PWNED").exists()
    names = [p.name for sub in out.iterdir() for p in sub.iterdir()]
    for name in names:
        assert not name.startswith(("-", ".")), name
        assert "/" not in name and "\\" not in name and "\n" not in name and "\r" not in name
        assert "\u202e" not in name and len(name.encode()) <= 255
    # One set of outputs per input, none overwriting another.
    assert len([n for n in names if n.endswith(".description.md")]) == 0  # --json: .json
    assert len([n for n in names if n.endswith(".description.json")]) == len(HOSTILE)
    assert len([n for n in names if n.endswith(".narration.mp3")]) == len(HOSTILE)
    assert len([n for n in names if n.endswith(".frames")]) == len(HOSTILE)


def test_output_symlinked_out_of_out_dir_is_replaced_not_followed(
    api: respx.Router, video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An output name that is a symlink to a file elsewhere: without --force the run refuses;
    with --force the link itself is replaced (atomic rename), the target is never written."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    api.post("/chat/completions").respond(200, json=chat_response(DESC))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.description.md").symlink_to(victim)
    r = run_cli(["describe", video, "--out-dir", out, "--no-cache"])
    assert r.code == 6, r
    r = run_cli(["describe", video, "--out-dir", out, "--no-cache", "--force"])
    assert r.code == 0, r
    assert victim.read_text() == "precious\n"
    assert not (out / "clip.description.md").is_symlink()
    assert (out / "clip.description.md").read_text().startswith("# Three shots")
