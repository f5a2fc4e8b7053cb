"""server/batches.py: input files in the Batch API's line format, split under its limits; the
Files and Batches endpoints through the SDK (mocked at the HTTP layer); output lines read back
without trusting them."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import respx
from conftest import chat_response, check_batch_line
from fake_batch import FakeBatches, install

from vnarrate.errors import ApiError, ConfigError
from vnarrate.server.batches import BatchServer, PartWriter, parse_lines, request_line

BODY = {"model": "gpt-5.4-mini", "messages": [{"role": "user", "content": "x" * 100}]}


def _server() -> BatchServer:
    client = openai.OpenAI(api_key="sk-test-key-000000", max_retries=0)
    return BatchServer(client, base_url=None, key="sk-test-key-000000")


def test_a_line_is_a_post_to_chat_completions() -> None:
    line = json.loads(request_line("abc", BODY))
    check_batch_line(line)
    assert line == {
        "custom_id": "abc",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": BODY,
    }


def test_files_are_split_by_bytes_lines_and_model(tmp_path: Path) -> None:
    size = len(request_line("r00", BODY))
    writer = PartWriter(tmp_path, "run", max_bytes=size * 3, max_lines=2)
    for n in range(5):
        writer.add(f"r{n:02d}", BODY)
    writer.add("other", {**BODY, "model": "gpt-6-luna"})
    assert [(len(p.custom_ids), p.model) for p in writer.parts] == [
        (2, "gpt-5.4-mini"),
        (2, "gpt-5.4-mini"),
        (1, "gpt-5.4-mini"),
        (1, "gpt-6-luna"),
    ]
    for part in writer.parts:
        data = part.path.read_bytes()
        assert len(data) == part.bytes <= size * 3 and part.path.name.endswith(".jsonl")
        assert [json.loads(x)["custom_id"] for x in data.splitlines()] == part.custom_ids
    bytes_only = PartWriter(tmp_path / "b", "run", max_bytes=size * 2 + 1)
    for n in range(5):
        bytes_only.add(f"r{n:02d}", BODY)
    assert [len(p.custom_ids) for p in bytes_only.parts] == [2, 2, 1]


def test_a_request_over_the_file_limit_is_a_clear_error(tmp_path: Path) -> None:
    writer = PartWriter(tmp_path, "run", max_bytes=100)
    with pytest.raises(ApiError, match="over the Batch API's"):
        writer.add("big", BODY)


def test_output_and_error_lines_are_read_without_trusting_them() -> None:
    lines = [
        {
            "id": "1",
            "custom_id": "ok",
            "response": {"status_code": 200, "body": chat_response("{}")},
        },
        {
            "id": "2",
            "custom_id": "bad",
            "response": {
                "status_code": 400,
                "request_id": "r",
                "body": {"error": {"message": "Unsupported parameter: 'max_tokens'"}},
            },
            "error": None,
        },
        {
            "id": "3",
            "custom_id": "gone",
            "response": None,
            "error": {"code": "expired", "message": "batch expired"},
        },
        {"id": "4", "custom_id": "odd", "response": {"status_code": 500, "body": "oops"}},
        {"no": "custom id"},
        ["not", "an", "object"],
    ]
    data = b"\n".join(json.dumps(x).encode() for x in lines) + b"\nnot json\n\n"
    got = {line.custom_id: line for line in parse_lines(data, provider="openai")}
    assert sorted(got) == ["bad", "gone", "odd", "ok"]
    assert got["ok"].error is None and got["ok"].body["choices"]
    assert got["bad"].error is not None
    assert got["bad"].error.startswith(
        "the server rejected the request (400): Unsupported parameter"
    )
    assert "max-completion-tokens" in got["bad"].error or "token" in got["bad"].error
    assert got["gone"].error == "the request failed in the batch: batch expired"
    assert got["odd"].error == "the request failed in the batch (500): no answer"


@pytest.mark.parametrize(
    ("status", "text", "match"),
    [
        (
            404,
            '{"error": {"message": "Not Found"}}',
            "has no Batch API \\(GET /batches answered 404\\)",
        ),
        (405, "", "answered 405"),
        (200, "<html>ok</html>", "does not answer GET /batches like the Batch API"),
        (200, '{"object": "list"}', "like the Batch API"),
    ],
)
def test_a_server_without_the_batch_api_is_refused(
    api: respx.Router, status: int, text: str, match: str
) -> None:
    route = api.get("/batches").respond(status, text=text)
    with pytest.raises(ConfigError, match=match) as err:
        _server().check()
    assert route.call_count == 1 and "\n" not in str(err.value)


def test_the_probe_passes_a_batch_api_and_maps_other_failures(api: respx.Router) -> None:
    install(api, FakeBatches())
    _server().check()


def test_a_key_the_server_refuses_is_an_api_error(api: respx.Router) -> None:
    api.get("/batches").respond(401, json={"error": {"message": "bad key sk-test-key-000000"}})
    with pytest.raises(ApiError, match="rejected \\(401\\)") as err:
        _server().check()
    assert "sk-test-key-000000" not in str(err.value)


def test_upload_submit_status_and_read_back(api: respx.Router, tmp_path: Path) -> None:
    fake = install(api, FakeBatches())
    writer = PartWriter(tmp_path, "run")
    writer.add("one", {**BODY, "response_format": {"type": "json_object"}})
    server = _server()
    file_id = server.upload(writer.parts[0].path)
    assert server.find_upload(writer.parts[0].name) == file_id
    batch_id = server.submit(file_id, metadata={"vnarrate_run": "x"})
    assert server.find_batch(file_id, since=0) == batch_id
    assert server.find_batch("file-other", since=0) is None
    seen = [server.status(batch_id) for _ in range(3)]
    assert [s.status for s in seen] == ["in_progress", "finalizing", "completed"]
    done = seen[-1]
    assert done.done and done.counts() == "completed, 1/1 done" and done.output_file_id
    (line,) = server.read(done.output_file_id)
    assert line.custom_id == "one" and line.error is None
    assert fake.uploads == 1 and fake.created == 1 and not fake.errors


def test_a_failed_batch_names_its_reasons(api: respx.Router, tmp_path: Path) -> None:
    install(api, FakeBatches(reject={1}))
    writer = PartWriter(tmp_path, "run")
    writer.add("one", BODY)
    server = _server()
    batch_id = server.submit(server.upload(writer.parts[0].path), metadata={})
    st = server.status(batch_id)
    assert st.status == "failed" and st.done and st.errors == ("line 1: the file is not valid",)
