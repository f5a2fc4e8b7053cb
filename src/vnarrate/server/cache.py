"""Cache stage (wraps chat and speech): a content-addressed, on-disk cache of model responses.

Takes a canonical request (model, messages with their image data URLs, parameters, provider and
endpoint) and gives a key; stores and returns JSON answers (chat) and raw bytes (speech PCM) under
that key. Entries are written atomically and carry a checksum, so a shared folder is safe and a
damaged entry is a miss, never an error. No secret ever reaches a key or an entry.

Layout: `<root>/v1/<key[:2]>/<key>.json` and `.../<key>.bin`, each file being one header line
`vnarrate-cache 1 <payload length> <payload sha256>\\n` followed by the payload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

# Bump when the key recipe or the entry format changes: old entries then simply stop matching
# (and live in another folder, so `cache clear` can still find them by their layout).
CACHE_FORMAT = 1
_VERSION_DIR = f"v{CACHE_FORMAT}"
_MAGIC = b"vnarrate-cache"
_HEADER_MAX = 128  # generous bound on the header line; anything longer is corrupt
_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_SUFFIXES = (".json", ".bin")
_TMP_PREFIX = ".tmp-"

# Request fields that may carry credentials. They are dropped from the canonical request at any
# depth (e.g. extra_headers={"Authorization": ...}), so the key never depends on the API key.
SECRET_FIELDS = frozenset(
    {
        "api_key",
        "api-key",
        "apikey",
        "openai_api_key",
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "access_token",
    }
)


def default_cache_dir(
    *, platform: str | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The per-user cache folder for vnarrate, following each platform's convention.

    Linux and others: $XDG_CACHE_HOME/vnarrate (an absolute XDG_CACHE_HOME only, as the spec
    says) or ~/.cache/vnarrate; macOS: ~/Library/Caches/vnarrate; Windows:
    %LOCALAPPDATA%\\vnarrate\\Cache. VNARRATE_CACHE_DIR and --cache-dir are settings' business.
    """
    platform = sys.platform if platform is None else platform
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Caches" / "vnarrate"
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA")
        base = Path(local) if local else home / "AppData" / "Local"
        return base / "vnarrate" / "Cache"
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"
    return base / "vnarrate"


# --- keys ---------------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """A JSON-ready copy of `value` whose serialisation depends only on its meaning."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"cache key: mapping keys must be strings, not {type(k).__name__}")
            if k.lower() in SECRET_FIELDS:
                continue
            out[k] = _canonical(v)
        return out
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("cache key: NaN and infinity have no canonical JSON form")
        # 1 and 1.0 mean the same thing to the API; make them the same key.
        return int(value) if value.is_integer() else value
    if isinstance(value, bytes | bytearray | memoryview):
        # Hashing keeps the canonical text small; the digest identifies the bytes just as well.
        return {"$bytes_sha256": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, type) and issubclass(value, BaseModel):
        # A response_format class: its schema is what the server sees, so a schema change must
        # change the key.
        return {"$schema": value.__name__, "json_schema": _canonical(value.model_json_schema())}
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump(mode="json"))
    if isinstance(value, Path):
        return str(value)
    # No repr() fallback: a repr may hold a memory address and make keys differ between runs.
    raise TypeError(f"cache key: cannot canonicalise a {type(value).__name__}")


def _endpoint(base_url: str | None) -> str:
    """scheme://host:port/path of the server, without credentials, query or fragment."""
    if not base_url:
        return ""
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/")
    # userinfo (user:password@) and the query (some gateways take ?api-key=) are dropped on
    # purpose: they may be secrets, and they do not change what the model answers.
    return f"{parts.scheme.lower()}://{host}{port}{path}"


def endpoint_of(base_url: str | None) -> str:
    """A server's endpoint as keys use it: scheme://host:port/path, never credentials or query."""
    return _endpoint(base_url)


def canonical_request(
    kind: str, request: Mapping[str, Any], *, provider: str, base_url: str | None
) -> str:
    """The exact text that `request_key` hashes (exposed for debugging and tests)."""
    envelope = {
        "format": CACHE_FORMAT,
        "kind": kind,
        "provider": provider,
        "endpoint": _endpoint(base_url),
        "request": _canonical(request),
    }
    return json.dumps(
        envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def request_key(
    kind: str, request: Mapping[str, Any], *, provider: str, base_url: str | None
) -> str:
    """The cache key of one API request: sha256 (hex) of its canonical JSON.

    `kind` names the call ("chat", "speech", ...); `request` holds everything that shapes the
    answer: model, messages (image data URLs included), response_format, parameters, voice. Put
    the call flavour in too when it matters (e.g. "structured": "json_schema"). Fields named like
    credentials (see SECRET_FIELDS) are dropped at any depth; the base URL counts by scheme, host,
    port and path only.
    """
    text = canonical_request(kind, request, provider=provider, base_url=base_url)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- the store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheInfo:
    """What `vnarrate cache info` reports."""

    path: Path
    entries: int
    bytes: int


@dataclass
class CacheStats:
    """Counters for one run, for the summary line ("12 cached, 3 called")."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    corrupt: int = 0  # damaged entries found (and removed)


@dataclass
class _State:
    writable: bool = True
    warnings: list[str] = field(default_factory=list)
    stats: CacheStats = field(default_factory=CacheStats)


class ResponseCache:
    """Model responses on disk, addressed by `request_key`. Safe to share between threads,
    processes and machines: every write is a whole file renamed into place.

    Never raises for disk trouble: an unreadable or damaged entry is a miss (and is removed so
    the next put replaces it); an unwritable folder turns writes off for this instance and adds
    one message to `warnings` (the caller decides whether and how to show it). With
    `enabled=False` nothing is read or written. `secrets` (e.g. the API key) are checked for in
    every payload as a last line of defence: an entry containing one is not written.
    """

    def __init__(
        self, root: Path, *, enabled: bool = True, secrets: Collection[str | None] = ()
    ) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self._secrets = [s.encode("utf-8") for s in secrets if s and len(s) >= 8]
        self._lock = threading.Lock()
        self._state = _State()

    # -- public API --

    @property
    def warnings(self) -> list[str]:
        """Messages about degraded caching (at most one per kind of problem), for stderr."""
        with self._lock:
            return list(self._state.warnings)

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            s = self._state.stats
            return CacheStats(s.hits, s.misses, s.writes, s.corrupt)

    @property
    def writable(self) -> bool:
        """False once a write has failed (caching is then read-only for this run)."""
        with self._lock:
            return self.enabled and self._state.writable

    def entry_path(self, key: str, suffix: str) -> Path:
        """Where the entry for `key` lives (`suffix` is ".json" or ".bin")."""
        if not _KEY_RE.match(key):
            raise ValueError("a cache key is 64 lowercase hex digits (see request_key)")
        if suffix not in _SUFFIXES:
            raise ValueError(f"cache suffix must be one of {_SUFFIXES}")
        return self.root / _VERSION_DIR / key[:2] / f"{key}{suffix}"

    def get_json(self, key: str) -> dict[str, Any] | None:
        """The JSON object stored under `key`, or None (miss, disabled, damaged entry)."""
        payload = self._read(key, ".json")
        value: dict[str, Any] | None = None
        if payload is not None:
            try:
                loaded = json.loads(payload.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                loaded = None
            if isinstance(loaded, dict):
                value = loaded
            else:
                # The checksum matched but the content is not a JSON object: not ours.
                self._discard(self.entry_path(key, ".json"))
        self._count(hit=value is not None)
        return value

    def put_json(self, key: str, value: Mapping[str, Any]) -> None:
        """Store a JSON object under `key`. Raises TypeError/ValueError only for values that are
        not JSON (a programming error); disk trouble is recorded in `warnings`."""
        payload = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
        self._write(key, ".json", payload)

    def get_bytes(self, key: str) -> bytes | None:
        """The bytes stored under `key`, or None (miss, disabled, damaged or truncated entry)."""
        payload = self._read(key, ".bin")
        self._count(hit=payload is not None)
        return payload

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store raw bytes (e.g. speech PCM) under `key`."""
        self._write(key, ".bin", bytes(data))

    def get_or_put_json(
        self, key: str, compute: Callable[[], Mapping[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """The cached value, or `compute()` stored and returned; the flag says it was a hit."""
        cached = self.get_json(key)
        if cached is not None:
            return cached, True
        value = dict(compute())
        self.put_json(key, value)
        return value, False

    def get_or_put_bytes(self, key: str, compute: Callable[[], bytes]) -> tuple[bytes, bool]:
        """Like get_or_put_json, for bytes."""
        cached = self.get_bytes(key)
        if cached is not None:
            return cached, True
        data = compute()
        self.put_bytes(key, data)
        return data, False

    def info(self) -> CacheInfo:
        """Entries and bytes on disk (works even when this instance is disabled)."""
        entries = size = 0
        for path in self._entry_files():
            with contextlib.suppress(OSError):
                size += path.stat().st_size
                entries += 1
        return CacheInfo(path=self.root, entries=entries, bytes=size)

    def clear(self) -> int:
        """Remove every entry (and leftover temp file); return how many entries were removed.

        Only files with the cache's own names inside `<root>/v<N>/<xx>/` are touched, so a
        --cache-dir pointed at a folder holding other things loses nothing else.
        """
        removed = 0
        for path in self._entry_files(include_tmp=True):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                self._warn("clear", f"cannot remove {path}: {exc.strerror or exc}")
                continue
            if not path.name.startswith(_TMP_PREFIX):
                removed += 1
        for version_dir in self._version_dirs():
            for shard in version_dir.iterdir():
                with contextlib.suppress(OSError):
                    shard.rmdir()  # only succeeds when empty
            with contextlib.suppress(OSError):
                version_dir.rmdir()
        return removed

    # -- internals --

    def _count(self, *, hit: bool) -> None:
        if not self.enabled:
            return
        with self._lock:
            if hit:
                self._state.stats.hits += 1
            else:
                self._state.stats.misses += 1

    def _warn(self, kind: str, message: str) -> None:
        with self._lock:
            if not any(w.startswith(f"cache {kind}:") for w in self._state.warnings):
                self._state.warnings.append(f"cache {kind}: {message}")

    def _read(self, key: str, suffix: str) -> bytes | None:
        path = self.entry_path(key, suffix)
        if not self.enabled:
            return None
        try:
            with open(path, "rb") as fh:
                blob = fh.read()
                st = os.fstat(fh.fileno())
        except FileNotFoundError:
            return None
        except OSError as exc:
            # Unreadable (permissions, a folder in the way, I/O error): a miss, noted once.
            self._warn("read", f"cannot read {path}: {exc.strerror or exc}")
            return None
        payload = _unpack(blob)
        if payload is None:
            self._discard(path, st)
        return payload

    def _discard(self, path: Path, st: os.stat_result | None = None) -> None:
        """Remove a damaged entry so the next put replaces it (best effort)."""
        with self._lock:
            self._state.stats.corrupt += 1
        with contextlib.suppress(OSError):
            # Another process may have replaced the damaged file with a good one since we read
            # it; only remove the very file we judged.
            if st is not None:
                now = path.stat()
                if (now.st_ino, now.st_mtime_ns, now.st_size) != (
                    st.st_ino,
                    st.st_mtime_ns,
                    st.st_size,
                ):
                    return
            path.unlink()

    def _write(self, key: str, suffix: str, payload: bytes) -> None:
        path = self.entry_path(key, suffix)
        if not self.writable:
            return
        if any(s in payload for s in self._secrets):
            self._warn("secret", "an entry containing the API key was not stored")
            return
        blob = _pack(payload)
        tmp: Path | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Unique name in the same folder, so the rename below is atomic; O_EXCL so two
            # writers never share a temp file. Mode 0o666 minus the umask, as for any file.
            tmp = path.with_name(f"{_TMP_PREFIX}{os.urandom(8).hex()}{suffix}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0))
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            # No fsync: a crash can at worst leave a short or empty entry, which the checksum
            # turns into a miss. Concurrent writers of one key write the same bytes, so whoever
            # renames last wins and the entry is whole either way.
            os.replace(tmp, path)
            tmp = None
        except FileNotFoundError:
            # A concurrent `cache clear` removed our shard folder or temp file: skip this one
            # entry, but do not give up on caching.
            return
        except PermissionError:
            if tmp is not None and path.exists():
                # Windows refuses to replace a file another process has open; that file holds
                # the same answer, so there is nothing to do.
                return
            self._disable_writes(exc_text="permission denied")
            return
        except OSError as exc:
            self._disable_writes(exc_text=str(exc.strerror or exc))
            return
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        with self._lock:
            self._state.stats.writes += 1

    def _disable_writes(self, *, exc_text: str) -> None:
        with self._lock:
            self._state.writable = False
        self._warn("write", f"cannot write to {self.root} ({exc_text}); continuing without caching")

    def _version_dirs(self) -> list[Path]:
        try:
            return [
                p
                for p in self.root.iterdir()
                if re.fullmatch(r"v\d+", p.name) and p.is_dir() and not p.is_symlink()
            ]
        except OSError:
            return []

    def _entry_files(self, *, include_tmp: bool = False) -> list[Path]:
        found: list[Path] = []
        for version_dir in self._version_dirs():
            try:
                shards = [
                    s
                    for s in version_dir.iterdir()
                    if re.fullmatch(r"[0-9a-f]{2}", s.name) and s.is_dir()
                ]
            except OSError:
                continue
            for shard in shards:
                try:
                    names = os.listdir(shard)
                except OSError:
                    continue
                for name in names:
                    stem, dot, ext = name.rpartition(".")
                    if f"{dot}{ext}" not in _SUFFIXES:
                        continue
                    is_tmp = stem.startswith(_TMP_PREFIX)
                    is_entry = bool(_KEY_RE.match(stem)) and stem.startswith(shard.name)
                    if is_entry or (is_tmp and include_tmp):
                        found.append(shard / name)
        return sorted(found)


def _pack(payload: bytes) -> bytes:
    digest = hashlib.sha256(payload).hexdigest()
    return b"%s %d %d %s\n" % (_MAGIC, CACHE_FORMAT, len(payload), digest.encode()) + payload


def _unpack(blob: bytes) -> bytes | None:
    """The payload of a stored entry, or None when the entry is damaged in any way."""
    end = blob.find(b"\n", 0, _HEADER_MAX)
    if end < 0:
        return None
    fields = blob[:end].split(b" ")
    if len(fields) != 4 or fields[0] != _MAGIC or fields[1] != str(CACHE_FORMAT).encode():
        return None
    try:
        length = int(fields[2])
    except ValueError:
        return None
    payload = blob[end + 1 :]
    if len(payload) != length:
        return None  # truncated (or appended to)
    if hashlib.sha256(payload).hexdigest().encode() != fields[3]:
        return None
    return payload


__all__ = [
    "CACHE_FORMAT",
    "SECRET_FIELDS",
    "CacheInfo",
    "CacheStats",
    "ResponseCache",
    "canonical_request",
    "default_cache_dir",
    "endpoint_of",
    "request_key",
]
