"""Response cache: stable keys without secrets, faithful hits, atomic shared writes, damaged
entries ignored and replaced, an unwritable folder that degrades instead of failing."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import multiprocessing
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY
from pydantic import BaseModel

from vnarrate.server.cache import (
    CACHE_FORMAT,
    CacheInfo,
    ResponseCache,
    canonical_request,
    default_cache_dir,
    request_key,
)

JPEG_A = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
JPEG_B = JPEG_A[:-1] + b"\x00"  # one byte differs


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def chat_request(jpeg: bytes = JPEG_A, **params: Any) -> dict[str, Any]:
    return {
        "model": "gpt-5.4-mini",
        "messages": [
            {"role": "system", "content": "Describe the video."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Frame at 0.0 s"},
                    {"type": "image_url", "image_url": {"url": data_url(jpeg), "detail": "low"}},
                ],
            },
        ],
        "max_completion_tokens": 8000,
        **params,
    }


def speech_request(**changes: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini-tts",
        "voice": "onyx",
        "input": "A red car crosses the bridge.",
        "response_format": "pcm",
        "speed": 1.0,
        **changes,
    }


def chat_key(request: dict[str, Any], **kw: Any) -> str:
    return request_key(
        "chat", request, provider=kw.get("provider", "openai"), base_url=kw.get("base_url")
    )


def speech_key(request: dict[str, Any]) -> str:
    return request_key("speech", request, provider="openai", base_url=None)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- keys ---------------------------------------------------------------------------------------


def test_same_request_same_key_whatever_the_dict_order() -> None:
    a = chat_request(temperature=0.2)
    b = dict(reversed(list(chat_request(temperature=0.2).items())))
    assert chat_key(a) == chat_key(b) == chat_key(chat_request(temperature=0.2))
    assert len(chat_key(a)) == 64 and int(chat_key(a), 16) >= 0


def test_key_changes_with_every_part_of_the_request() -> None:
    base = chat_key(chat_request())
    variants = {
        "model": chat_key({**chat_request(), "model": "gpt-5.4"}),
        "param": chat_key(chat_request(max_completion_tokens=4000)),
        "new param": chat_key(chat_request(temperature=0.5)),
        "image bytes": chat_key(chat_request(JPEG_B)),
        "detail": chat_key(
            json.loads(json.dumps(chat_request()).replace('"low"', '"high"'))  # detail only
        ),
        "prompt": chat_key(json.loads(json.dumps(chat_request()).replace("Describe", "Narrate"))),
        "provider": chat_key(chat_request(), provider="ollama"),
        "base url": chat_key(chat_request(), base_url="http://localhost:11434/v1"),
        "other port": chat_key(chat_request(), base_url="http://localhost:8000/v1"),
    }
    assert base not in variants.values()
    assert len(set(variants.values())) == len(variants)
    # The same request as speech is another entry.
    assert request_key("speech", chat_request(), provider="openai", base_url=None) != base


def test_voice_change_changes_only_speech_keys() -> None:
    assert speech_key(speech_request()) != speech_key(speech_request(voice="nova"))
    assert speech_key(speech_request()) != speech_key(speech_request(speed=1.25))
    assert speech_key(speech_request()) != speech_key(speech_request(instructions="calm"))
    # 1 and 1.0 mean the same to the API, and so to the cache.
    assert speech_key(speech_request(speed=1)) == speech_key(speech_request(speed=1.0))


def test_bytes_and_schemas_are_canonical() -> None:
    class Answer(BaseModel):
        title: str

    class Answer2(BaseModel):
        title: str
        extra: int

    k1 = chat_key({"model": "m", "blob": JPEG_A, "response_format": Answer})
    assert k1 == chat_key({"model": "m", "blob": bytearray(JPEG_A), "response_format": Answer})
    assert k1 != chat_key({"model": "m", "blob": JPEG_B, "response_format": Answer})
    assert k1 != chat_key({"model": "m", "blob": JPEG_A, "response_format": Answer2})
    with pytest.raises(TypeError):
        chat_key({"model": "m", "x": object()})
    with pytest.raises(ValueError):
        chat_key({"model": "m", "temperature": float("nan")})


def test_key_never_depends_on_secrets() -> None:
    url = "https://gw.example.com/v1"
    leaky_url = f"https://user:{TEST_KEY}@gw.example.com/v1/?api-key={TEST_KEY}"
    assert chat_key(chat_request(api_key=TEST_KEY), base_url=leaky_url) == chat_key(
        chat_request(), base_url=url
    )
    with_key = chat_request(
        api_key=TEST_KEY, extra_headers={"Authorization": f"Bearer {TEST_KEY}", "X-API-Key": "k"}
    )
    other_key = chat_request(api_key="sk-other", extra_headers={"authorization": "Bearer sk-o"})
    assert chat_key(with_key, base_url=url) == chat_key(other_key, base_url=url)
    text = canonical_request("chat", with_key, provider="openai", base_url=leaky_url)
    assert TEST_KEY not in text and "Bearer" not in text and "user:" not in text
    assert f'"format":{CACHE_FORMAT}' in text


# --- hits and misses ----------------------------------------------------------------------------


def test_json_miss_put_hit_is_faithful(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = chat_key(chat_request())
    assert cache.get_json(key) is None
    value = {
        "response": {"choices": [{"message": {"content": "Un café ☕ — 日本"}}], "x": 0.1},
        "usage": {"prompt_tokens": 1000, "completion_tokens": 200},
    }
    cache.put_json(key, value)
    assert cache.get_json(key) == value
    assert ResponseCache(tmp_path).get_json(key) == value  # another process, same folder
    assert cache.stats.hits == 1 and cache.stats.misses == 1 and cache.stats.writes == 1
    entry = cache.entry_path(key, ".json")
    assert entry == tmp_path / f"v{CACHE_FORMAT}" / key[:2] / f"{key}.json"
    assert entry.read_bytes().startswith(b"vnarrate-cache 1 ")


def test_bytes_miss_put_hit(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = speech_key(speech_request())
    pcm = os.urandom(48_000)
    assert cache.get_bytes(key) is None
    cache.put_bytes(key, pcm)
    assert cache.get_bytes(key) == pcm
    assert cache.get_json(key) is None  # kinds of entry do not mix


def test_get_or_put_calls_only_on_miss(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    calls: list[int] = []

    def call_api() -> bytes:
        calls.append(1)
        return b"\x01\x02" * 100

    key = speech_key(speech_request())
    assert cache.get_or_put_bytes(key, call_api) == (b"\x01\x02" * 100, False)
    assert cache.get_or_put_bytes(key, call_api) == (b"\x01\x02" * 100, True)
    assert len(calls) == 1
    jkey = chat_key(chat_request())
    assert cache.get_or_put_json(jkey, lambda: {"a": 1}) == ({"a": 1}, False)
    assert cache.get_or_put_json(jkey, lambda: {"a": 2}) == ({"a": 1}, True)


def test_disabled_cache_touches_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = ResponseCache(root, enabled=False)
    key = chat_key(chat_request())
    cache.put_json(key, {"a": 1})
    cache.put_bytes(key, b"x")
    assert cache.get_json(key) is None and cache.get_bytes(key) is None
    assert not root.exists()
    assert cache.warnings == []


def test_bad_keys_cannot_address_files_outside(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    for bad in ("../../etc/passwd", "ab", "A" * 64, "0" * 63 + "/", ""):
        with pytest.raises(ValueError):
            cache.get_json(bad)
        with pytest.raises(ValueError):
            cache.put_bytes(bad, b"x")


def test_secrets_never_reach_an_entry(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, secrets=[TEST_KEY, None])
    key = chat_key(chat_request(api_key=TEST_KEY))
    cache.put_json(key, {"echo": f"you sent {TEST_KEY}"})
    cache.put_bytes(speech_key(speech_request()), b"pcm" + TEST_KEY.encode())
    assert cache.get_json(key) is None
    assert [w for w in cache.warnings if "API key" in w]
    assert all(TEST_KEY not in w for w in cache.warnings)
    cache.put_json(key, {"fine": True})
    assert cache.get_json(key) == {"fine": True}
    for path in files_under(tmp_path):
        assert TEST_KEY.encode() not in path.read_bytes()
        assert TEST_KEY not in str(path)


# --- damaged entries ----------------------------------------------------------------------------


def _damage_cases(payload: bytes) -> dict[str, bytes]:
    digest = hashlib.sha256(payload).hexdigest().encode()
    header = b"vnarrate-cache 1 %d %s\n" % (len(payload), digest)
    flipped = bytearray(payload)
    flipped[len(flipped) // 2] ^= 0xFF
    return {
        "empty": b"",
        "truncated": (header + payload)[:-7],
        "header only": header,
        "no header": payload,
        "bad checksum": header + bytes(flipped),
        "appended": header + payload + b"junk",
        "other version": header.replace(b" 1 ", b" 99 ", 1) + payload,
        "garbage": os.urandom(300),
        "long first line": b"x" * 5000,
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "truncated",
        "header only",
        "no header",
        "bad checksum",
        "appended",
        "other version",
        "garbage",
        "long first line",
    ],
)
def test_damaged_entries_are_misses_and_get_replaced(tmp_path: Path, case: str) -> None:
    cache = ResponseCache(tmp_path)
    jkey, bkey = chat_key(chat_request()), speech_key(speech_request())
    value = {"content": "hello", "usage": {"total_tokens": 3}}
    pcm = os.urandom(4000)
    cache.put_json(jkey, value)
    cache.put_bytes(bkey, pcm)
    jpath, bpath = cache.entry_path(jkey, ".json"), cache.entry_path(bkey, ".bin")
    jpath.write_bytes(_damage_cases(json.dumps(value).encode())[case])
    bpath.write_bytes(_damage_cases(pcm)[case])

    assert cache.get_json(jkey) is None
    assert cache.get_bytes(bkey) is None
    assert not jpath.exists() and not bpath.exists()  # removed, not left to fail again
    assert cache.stats.corrupt == 2
    assert cache.warnings == []

    cache.put_json(jkey, value)
    cache.put_bytes(bkey, pcm)
    assert cache.get_json(jkey) == value and cache.get_bytes(bkey) == pcm


def test_valid_checksum_but_not_a_json_object_is_a_miss(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = chat_key(chat_request())
    cache.put_bytes(key, b"x")  # make the shard folder

    for payload in (b"[1, 2]", b"not json", b"\xff\xfe"):
        digest = hashlib.sha256(payload).hexdigest().encode()
        cache.entry_path(key, ".json").write_bytes(
            b"vnarrate-cache 1 %d %s\n" % (len(payload), digest) + payload
        )
        assert cache.get_json(key) is None
        assert not cache.entry_path(key, ".json").exists()


def test_an_entry_that_is_a_folder_is_a_miss(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = chat_key(chat_request())
    cache.entry_path(key, ".json").mkdir(parents=True)
    assert cache.get_json(key) is None
    cache.put_json(key, {"a": 1})  # cannot replace a folder: degrade, never raise
    assert cache.get_json(key) is None
    assert len(cache.warnings) >= 1


# --- unwritable folder --------------------------------------------------------------------------


def test_folder_in_the_way_degrades_with_one_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ResponseCache(blocker / "cache")
    for i in range(5):
        key = chat_key(chat_request(max_completion_tokens=i + 1))
        cache.put_json(key, {"i": i})
        assert cache.get_json(key) is None
        cache.put_bytes(key, b"x")
    writes = [w for w in cache.warnings if w.startswith("cache write:")]
    assert len(writes) == 1 and str(blocker) in writes[0]
    assert not cache.writable
    assert cache.info() == CacheInfo(path=blocker / "cache", entries=0, bytes=0)
    assert cache.clear() == 0


def test_disk_full_degrades_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ResponseCache(tmp_path)
    real_fdopen = os.fdopen

    class FullFile:
        def __init__(self, fd: int, mode: str) -> None:
            self.fh = real_fdopen(fd, mode)

        def __enter__(self) -> FullFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", FullFile)
    cache.put_bytes(speech_key(speech_request()), b"abc")
    monkeypatch.undo()
    assert not cache.writable
    assert cache.warnings == [
        f"cache write: cannot write to {tmp_path} (No space left on device); "
        "continuing without caching"
    ]
    assert files_under(tmp_path) == []


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root ignores permission bits"
)
def test_read_only_folder_still_serves_hits(tmp_path: Path) -> None:
    key = chat_key(chat_request())
    ResponseCache(tmp_path).put_json(key, {"a": 1})
    for d in (tmp_path, *tmp_path.rglob("*")):
        if d.is_dir():
            d.chmod(0o555)
    try:
        cache = ResponseCache(tmp_path)
        assert cache.get_json(key) == {"a": 1}
        other = chat_key(chat_request(temperature=0.3))
        cache.put_json(other, {"b": 2})
        assert len(cache.warnings) == 1 and not cache.writable
    finally:
        for d in (tmp_path, *tmp_path.rglob("*")):
            if d.is_dir():
                d.chmod(0o755)


# --- concurrency --------------------------------------------------------------------------------


def _hammer(root: str, key: str, rounds: int) -> None:
    cache = ResponseCache(Path(root))
    payload = bytes(range(256)) * 2000  # 512 KB: big enough for writes to overlap
    for _ in range(rounds):
        cache.put_bytes(key, payload)
        got = cache.get_bytes(key)
        assert got is None or got == payload
        cache.put_json(key, {"n": list(range(500))})
        j = cache.get_json(key)
        assert j is None or j == {"n": list(range(500))}
    assert cache.warnings == [], cache.warnings


def test_concurrent_processes_writing_one_key_leave_a_valid_entry(tmp_path: Path) -> None:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    key = speech_key(speech_request())
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), key, 15)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = ResponseCache(tmp_path)
    assert cache.get_bytes(key) == bytes(range(256)) * 2000
    assert cache.get_json(key) == {"n": list(range(500))}
    assert cache.stats.corrupt == 0
    # Only the two entries remain: no temp files left behind.
    assert [p.name for p in files_under(tmp_path)] == [f"{key}.bin", f"{key}.json"]


def test_concurrent_threads_share_one_instance(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = chat_key(chat_request())
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(30):
                cache.put_json(key, {"same": "answer"})
                assert cache.get_json(key) in (None, {"same": "answer"})
                cache.put_bytes(chat_key(chat_request(max_completion_tokens=i + 1)), b"x" * i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.get_json(key) == {"same": "answer"}
    assert cache.stats.corrupt == 0 and cache.warnings == []
    assert cache.info().entries == 31


# --- info and clear -----------------------------------------------------------------------------


def test_info_and_clear(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = ResponseCache(root)
    assert cache.info() == CacheInfo(path=root, entries=0, bytes=0)
    assert cache.clear() == 0  # on a folder that does not exist yet
    for i in range(3):
        cache.put_json(chat_key(chat_request(max_completion_tokens=i + 1)), {"i": i})
    cache.put_bytes(speech_key(speech_request()), b"\x00" * 1000)
    info = cache.info()
    assert info.entries == 4
    assert info.bytes == sum(p.stat().st_size for p in files_under(root))
    # A leftover temp file from a killed writer, and things that are not ours.
    shard = next((root / f"v{CACHE_FORMAT}").iterdir())
    (shard / ".tmp-deadbeef.bin").write_bytes(b"half")
    (root / "notes.txt").write_text("keep me")
    (root / "v1" / "README").write_text("keep me too")
    (shard / "unrelated.json").write_text("{}")
    assert cache.info().entries == 4

    assert cache.clear() == 4
    assert cache.info().entries == 0
    left = sorted(p.relative_to(root).as_posix() for p in files_under(root))
    assert left == sorted(["notes.txt", f"v1/{shard.name}/unrelated.json", "v1/README"])

    # Usable again after clearing, and info works on a disabled instance.
    key = chat_key(chat_request())
    cache.put_json(key, {"again": True})
    assert ResponseCache(root, enabled=False).info().entries == 1


def test_clear_during_a_write_does_not_disable_caching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ResponseCache(tmp_path)
    real_replace = os.replace

    def replace_after_clear(src: Any, dst: Any) -> None:
        ResponseCache(tmp_path).clear()  # another process clears between write and rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_clear)
    cache.put_json(chat_key(chat_request()), {"a": 1})
    monkeypatch.undo()
    assert cache.writable and cache.warnings == []
    cache.put_json(chat_key(chat_request()), {"a": 1})
    assert cache.get_json(chat_key(chat_request())) == {"a": 1}


# --- location -----------------------------------------------------------------------------------


def test_default_cache_dir_per_platform() -> None:
    env = {"HOME": "/home/ann"}
    assert default_cache_dir(platform="linux", environ=env) == Path("/home/ann/.cache/vnarrate")
    assert default_cache_dir(
        platform="linux", environ={**env, "XDG_CACHE_HOME": "/var/cache/ann"}
    ) == Path("/var/cache/ann/vnarrate")
    # A relative XDG_CACHE_HOME is invalid per the spec and ignored.
    assert default_cache_dir(platform="linux", environ={**env, "XDG_CACHE_HOME": "rel"}) == Path(
        "/home/ann/.cache/vnarrate"
    )
    assert default_cache_dir(platform="darwin", environ=env) == Path(
        "/home/ann/Library/Caches/vnarrate"
    )
    win = default_cache_dir(platform="win32", environ={**env, "LOCALAPPDATA": "/L"})
    assert win == Path("/L") / "vnarrate" / "Cache"
    assert default_cache_dir().name == "vnarrate"
