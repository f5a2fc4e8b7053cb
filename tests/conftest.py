"""Shared fixtures: a clean environment, generated media, and a mocked OpenAI API whose captured
requests are validated against the official OpenAPI schema (when ../shared/openapi exists)."""

from __future__ import annotations

import copy
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MEDIA = SHARED / "media"
OPENAPI = SHARED / "openapi" / "openai-subset.json"
API = "https://api.openai.com/v1"

# Fake keys only: a recognizable one so tests can grep outputs for leaks.
TEST_KEY = "sk-test-SECRET-0123456789abcdef"


# Tests send Ctrl-C to real vnarrate processes. A suite started with SIGINT ignored (`pytest &`
# from a script without job control) would pass that on to them, and they would rightly keep
# ignoring it (as vnarrate does under `nohup`): give the children the default again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's keys, settings or .env, and none writes into the cache."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "VNARRATE_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VNARRATE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # Settings read .env from the working directory: run every test in an empty one.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def media_clips() -> list[Path]:
    """The real clips beside the checkout, or none (the tests using them then skip)."""
    if not MEDIA.is_dir():
        return []
    return sorted(
        p for p in MEDIA.iterdir() if p.suffix.lower() in {".mp4", ".mkv", ".webm", ".mov"}
    )


requires_media = pytest.mark.skipif(
    not MEDIA.is_dir(), reason="../shared/media is not beside this checkout"
)


# --- OpenAPI validation of captured requests ----------------------------------------------------


def _load_schema() -> Any:
    if not OPENAPI.is_file():
        return None
    spec = json.loads(OPENAPI.read_text())
    spec = copy.deepcopy(spec)

    # Known spec problems (see ../shared/openapi/README.md): `original` is a valid detail level for
    # SDK 3.x, and OpenAPI 3.0's `nullable` is not JSON Schema.
    def fix(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("enum") == ["auto", "low", "high"]:
                node["enum"] = ["auto", "low", "high", "original"]
            if node.pop("nullable", False) is True:
                typ = node.get("type")
                if isinstance(typ, str):
                    node["type"] = [typ, "null"]
            for v in node.values():
                fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)

    fix(spec)
    return spec


_SPEC = _load_schema()
_SCHEMA_FOR = {
    "/chat/completions": "CreateChatCompletionRequest",
    "/audio/speech": "CreateSpeechRequest",
    "/audio/transcriptions": "CreateTranscriptionRequest",
    "/batches": "CreateBatchRequest",
    "/files": "CreateFileRequest",  # multipart: validated by check_upload
}


def validate_against(name: str, body: dict[str, Any], where: str = "") -> None:
    """Raise if `body` does not match the official schema `name` (no-op without the spec)."""
    if _SPEC is None:
        return
    import jsonschema
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:oai", DRAFT202012.create_resource(_SPEC))
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"urn:oai#/components/schemas/{name}"}, registry=registry
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise AssertionError(
            f"{where or name}: violates {name}: {best.message} at {list(best.path)}"
        )


def validate_request_body(path: str, body: dict[str, Any]) -> None:
    """Raise if `body` does not match the official schema for `path` (no-op without the spec)."""
    name = next((n for suffix, n in _SCHEMA_FOR.items() if path.endswith(suffix)), None)
    if name is not None:
        validate_against(name, body, f"request to {path}")


# --- multipart requests (transcriptions): the rules the spec keeps in its descriptions ---------

# ../shared/openapi/README.md, item 7: formats the endpoint takes, the upload limit, and which
# response_format each model accepts (None: any).
AUDIO_EXTENSIONS = {"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"}
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
RESPONSE_FORMATS: dict[str, set[str] | None] = {
    "gpt-transcribe": {"json", "text"},
    "gpt-4o-transcribe": {"json"},
    "gpt-4o-mini-transcribe": {"json"},
    "gpt-4o-mini-transcribe-2025-12-15": {"json"},
    "gpt-4o-transcribe-diarize": {"json", "text", "diarized_json"},
    "whisper-1": None,
}
_NUMBERS = {"temperature"}
_BOOLEANS = {"stream"}


def multipart_fields(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A multipart/form-data body as (fields, files): each file field holds its file name, as
    the README says to validate it; `name[]` fields become lists; numbers and booleans are
    parsed. `files` maps each file field to its bytes."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart(), "not a multipart body"
    fields: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        assert isinstance(name, str), "a multipart part without a name"
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            fields[name], files[name] = filename, data
            continue
        text = data.decode("utf-8")
        value: Any = text
        if name in _NUMBERS:
            value = float(text)
        elif name in _BOOLEANS:
            value = {"true": True, "false": False}.get(text, text)
        if name.endswith("[]"):
            fields.setdefault(name[:-2], []).append(value)
        else:
            assert name not in fields, f"field {name} sent twice"
            fields[name] = value
    return fields, files


def check_transcription_rules(fields: dict[str, Any], files: dict[str, bytes]) -> None:
    """The transcription rules that live in the spec's descriptions (README item 7)."""
    name = str(fields.get("file", ""))
    assert name.rsplit(".", 1)[-1].lower() in AUDIO_EXTENSIONS, f"file name {name!r}"
    assert 0 < len(files.get("file", b"")) <= MAX_UPLOAD_BYTES, "empty or over 25 MB"
    allowed = RESPONSE_FORMATS.get(str(fields.get("model")))
    fmt = fields.get("response_format", "json")
    assert allowed is None or fmt in allowed, f"{fields.get('model')} does not take {fmt}"
    if "timestamp_granularities" in fields:
        assert fmt == "verbose_json", "timestamp_granularities needs verbose_json"


def check_batch_line(line: dict[str, Any]) -> None:
    """One line of a batch input file as the Batch API takes it (raises AssertionError)."""
    assert set(line) == {"custom_id", "method", "url", "body"}, sorted(line)
    assert isinstance(line["custom_id"], str) and line["custom_id"], line["custom_id"]
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions", line
    validate_against("CreateChatCompletionRequest", line["body"], "batch line body")


def check_upload(fields: dict[str, Any], files: dict[str, bytes]) -> list[dict[str, Any]]:
    """A /files upload (multipart_fields: the file's name in place of its bytes, as
    openapi/README.md says) against CreateFileRequest, then, for purpose=batch, every line;
    gives the lines."""
    validate_against("CreateFileRequest", fields, "upload to /files")
    name, data = fields["file"], files["file"]
    if fields.get("purpose") != "batch":
        return []
    assert name and name.endswith(".jsonl"), f"a batch input file must be .jsonl: {name}"
    lines = [json.loads(raw) for raw in data.splitlines() if raw.strip()]
    assert lines, "an empty batch input file"
    for line in lines:
        check_batch_line(line)
    return lines


def validate_calls(router: respx.Router) -> int:
    """Validate every captured request body (JSON, multipart transcriptions, and /files uploads
    line by line); returns how many were checked."""
    checked = 0
    for call in router.calls:
        req = call.request
        if req.method != "POST" or not req.content:
            continue
        ctype = req.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            fields, files = multipart_fields(ctype, req.content)
            if req.url.path.endswith("/files"):
                check_upload(fields, files)
            else:
                validate_request_body(req.url.path, fields)
            if req.url.path.endswith("/audio/transcriptions"):
                check_transcription_rules(fields, files)
            checked += 1
            continue
        try:
            body = json.loads(req.content)
        except ValueError:
            continue
        validate_request_body(req.url.path, body)
        checked += 1
    return checked


def transcription_response(text: str) -> dict[str, Any]:
    """A transcription response body (json format), as gpt-transcribe gives it."""
    return {
        "text": text,
        "usage": {"type": "duration", "seconds": 3},
    }


@pytest.fixture
def api() -> Iterator[respx.Router]:
    """A mocked api.openai.com: an unrouted request fails the test, and every request sent is
    validated against the OpenAPI schema at the end of the test."""
    import pytest_httpx2._plugin  # noqa: F401  (registers the httpcore2 mocker)

    with respx.mock(
        base_url=API, using="httpcore2", assert_all_mocked=True, assert_all_called=False
    ) as router:
        yield router
        validate_calls(router)


# --- canned API answers ------------------------------------------------------------------------

# A two-line script for the 3 s `video` fixture (shared by the fault, bad-input and security tests).
THREE_SHOT_SCRIPT: dict[str, Any] = {
    "title": "Three shots",
    "language": "en",
    "segments": [
        {"start_s": 0.0, "end_s": 1.4, "text": "Red."},
        {"start_s": 1.5, "end_s": 2.9, "text": "Green, blue."},
    ],
}


def chat_response(
    content: str | dict[str, Any] | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    prompt_tokens: int = 1000,
    completion_tokens: int = 200,
    model: str = "gpt-5.4-mini",
) -> dict[str, Any]:
    """A Chat Completions response body."""
    if isinstance(content, dict):
        content = json.dumps(content)
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 50},
        },
    }


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A 3 s, 10 fps, 160x120 H.264 clip with three shots."""
    from _media import make_video

    return make_video(tmp_path / "clip.mp4", seconds=3.0, fps=10, cuts_s=(1.0, 2.0))


# --- running the CLI in-process ----------------------------------------------------------------


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[:300]!r}, err={self.err[:500]!r})"


def run_cli(args: list[str], *, stdin: str | None = None) -> CliResult:
    """`vnarrate ARGS` through the real entry point (exit-code mapping included), in-process."""
    from click.testing import CliRunner

    from vnarrate.cli import main

    runner = CliRunner()
    with runner.isolation(input=stdin) as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return CliResult(code, out.getvalue().decode(), err.getvalue().decode())


# The 400 OpenAI gives a gpt-5.x model sent `max_tokens` (the advice names the fix).
MAX_TOKENS_400 = {
    "error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
}
