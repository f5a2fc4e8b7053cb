"""Server memory: remembered fixes and learned image tokens, on disk beside the cache."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from vnarrate.server.memory import ServerMemory, clean_fixes

URL = "http://user:pw@127.0.0.1:8760/v1?api-key=sk-secret-0123456789"


def test_fixes_are_remembered_per_server_and_model(tmp_path: Path) -> None:
    memory = ServerMemory(tmp_path)
    assert memory.fixes(URL, "gpt-5.4") == {}
    assert memory.remember_fixes(URL, "gpt-5.4", {"token_field": "max_completion_tokens"})
    assert memory.remember_fixes(URL, "gpt-5.4", {"temperature": None})
    assert memory.fixes(URL, "gpt-5.4") == {
        "token_field": "max_completion_tokens",
        "temperature": None,
    }
    # Another model, another server: nothing; the same endpoint without credentials: the same.
    assert memory.fixes(URL, "gpt-5.4-mini") == {}
    assert memory.fixes("http://127.0.0.1:8000/v1", "gpt-5.4") == {}
    assert memory.fixes("http://127.0.0.1:8760/v1", "gpt-5.4") != {}


def test_no_secret_reaches_the_files(tmp_path: Path) -> None:
    memory = ServerMemory(tmp_path)
    memory.remember_fixes(URL, "m", {"send_detail": False})
    memory.learn_image_tokens(URL, "m", "512x288@auto", 400.0)
    files = list(tmp_path.rglob("*.json"))
    assert {f.parent.name for f in files} == {"servers", "learned"}
    for f in files:
        text = f.read_text()
        assert "sk-secret" not in text and "pw" not in text and "api-key" not in text
        assert json.loads(text)["endpoint"] == "http://127.0.0.1:8760/v1"


def test_files_on_disk_are_not_trusted(tmp_path: Path) -> None:
    assert clean_fixes({"token_field": "rm -rf", "temperature": 0.5, "structured": "none"}) == {
        "structured": "none"
    }
    memory = ServerMemory(tmp_path)
    memory.remember_fixes(None, "m", {"token_field": "max_tokens"})
    (path,) = (tmp_path / "servers").glob("*.json")
    path.write_text("{not json")
    assert memory.fixes(None, "m") == {}
    memory.learn_image_tokens(None, "m", "1x1@low", 5.0)
    (learned,) = (tmp_path / "learned").glob("*.json")
    learned.write_text(json.dumps({"image_tokens": {"1x1@low": {"count": "x"}, "2x2@low": 3}}))
    assert memory.image_tokens(None, "m") == {}


def test_an_unwritable_folder_loses_only_the_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    memory = ServerMemory(blocker)  # a file where the folder should be
    assert memory.remember_fixes(None, "m", {"token_field": "max_tokens"}) is False
    assert memory.learn_image_tokens(None, "m", "1x1@low", 5.0) is False
    assert memory.fixes(None, "m") == {}


def test_learned_tokens_are_a_running_mean_without_outliers(tmp_path: Path) -> None:
    memory = ServerMemory(tmp_path)
    for tokens in (400.0, 420.0, 380.0):
        assert memory.learn_image_tokens(None, "gpt-6-luna", "512x288@auto", tokens)
    assert memory.image_tokens(None, "gpt-6-luna") == {"512x288@auto": (3, 400.0)}
    assert not memory.learn_image_tokens(None, "gpt-6-luna", "512x288@auto", 5000.0)  # outlier
    assert not memory.learn_image_tokens(None, "gpt-6-luna", "512x288@auto", -12.0)
    assert memory.image_tokens(None, "gpt-6-luna")["512x288@auto"][0] == 3


def _learn_many(root: str) -> None:
    memory = ServerMemory(Path(root))
    for _ in range(5):
        memory.learn_image_tokens(None, "m", "8x8@low", 100.0)


def test_concurrent_processes_lose_no_observation(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_learn_many, args=(str(tmp_path),)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert ServerMemory(tmp_path).image_tokens(None, "m") == {"8x8@low": (20, 100.0)}
    assert not [p for p in tmp_path.rglob(".tmp-*")]
