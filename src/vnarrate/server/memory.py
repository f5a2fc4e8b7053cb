"""Server memory: what vnarrate learned about a server and model, kept beside the response cache.

Takes the cache root, a server's base URL and a model; gives and stores two small facts:
- the request fixes that made a rejected request pass (token field, structured output, `detail`,
  temperature, reasoning effort), so later runs start right (`<root>/servers/<key>.json`);
- image tokens per image learned from the usage the API reported, for models whose image-token
  rule is not published, per image size and detail (`<root>/learned/<key>.json`).

The key is a hash of the endpoint (scheme, host, port, path: no credentials, no query) and the
model. Files are JSON objects, written whole and renamed into place under a lock file, so
concurrent processes never see half a file; an unreadable or damaged file is simply empty, and a
folder that cannot be written loses only the memory, never the run. No secret is ever stored:
only the endpoint, the model, option values and numbers.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args

from ..models import EFFORTS, StructuredMode, TokenField
from .cache import endpoint_of

try:
    import fcntl
except ImportError:  # Windows: whole files by atomic replace, without a lock
    fcntl = None  # type: ignore[assignment]

OPENAI_URL = "https://api.openai.com/v1"
# Learned image tokens: observations outside these bounds, or over OUTLIER times away from the
# mean once it rests on MIN_STEADY requests, are ignored; the mean weighs at most MAX_WEIGHT
# earlier requests, so it follows a model whose tokenization changes.
MIN_TOKENS, MAX_TOKENS = 1.0, 50_000.0
OUTLIER = 3.0
MIN_STEADY = 3
MAX_WEIGHT = 1000


def _key(base_url: str | None, model: str) -> str:
    text = f"{endpoint_of(base_url or OPENAI_URL)}\n{model.strip()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def clean_fixes(raw: Any) -> dict[str, Any]:
    """The fixes in `raw` that name a known option with an allowed value (a file on disk is
    input like any other: never trusted)."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, Any] = {}
    if raw.get("token_field") in get_args(TokenField):
        out["token_field"] = raw["token_field"]
    if raw.get("structured") in get_args(StructuredMode):
        out["structured"] = raw["structured"]
    if "temperature" in raw and raw["temperature"] is None:
        out["temperature"] = None
    if "reasoning_effort" in raw and raw["reasoning_effort"] in (None, *EFFORTS):
        out["reasoning_effort"] = raw["reasoning_effort"]
    if raw.get("send_detail") is False:
        out["send_detail"] = False
    return out


class ServerMemory:
    """Remembered fixes and learned image tokens under `root` (the cache root)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- fixes --

    def fixes(self, base_url: str | None, model: str) -> dict[str, Any]:
        """The fixes remembered for this server and model ({} when none)."""
        data = self._read(self._path("servers", base_url, model))
        return clean_fixes(data.get("fixes"))

    def remember_fixes(self, base_url: str | None, model: str, fixes: Mapping[str, Any]) -> bool:
        """Add `fixes` to what is remembered for this server and model; False if not stored."""
        new = clean_fixes(fixes)
        if not new:
            return False
        path = self._path("servers", base_url, model)
        with self._locked(path):
            data = self._read(path)
            merged = {**clean_fixes(data.get("fixes")), **new}
            record = {
                "endpoint": endpoint_of(base_url or OPENAI_URL),
                "model": model,
                "fixes": merged,
                "updated": _today(),
            }
            return self._write(path, record)

    # -- learned image tokens --

    def image_tokens(self, base_url: str | None, model: str) -> dict[str, tuple[int, float]]:
        """Learned tokens per image by "WxH@detail": (requests, mean tokens)."""
        data = self._read(self._path("learned", base_url, model))
        sizes = data.get("image_tokens")
        out: dict[str, tuple[int, float]] = {}
        if isinstance(sizes, Mapping):
            for size, entry in sizes.items():
                try:
                    count, mean = int(entry["count"]), float(entry["mean"])
                except (KeyError, TypeError, ValueError):
                    continue
                if count > 0 and MIN_TOKENS <= mean <= MAX_TOKENS:
                    out[str(size)] = (count, mean)
        return out

    def learn_image_tokens(
        self, base_url: str | None, model: str, size: str, tokens: float
    ) -> bool:
        """Fold one request's tokens per image into the running mean; False when ignored."""
        if not MIN_TOKENS <= tokens <= MAX_TOKENS:
            return False
        path = self._path("learned", base_url, model)
        with self._locked(path):
            known = self.image_tokens(base_url, model)
            count, mean = known.get(size, (0, 0.0))
            if count >= MIN_STEADY and not mean / OUTLIER <= tokens <= mean * OUTLIER:
                return False
            weight = min(count, MAX_WEIGHT)
            mean = (mean * weight + tokens) / (weight + 1)
            known[size] = (count + 1, mean)
            record = {
                "endpoint": endpoint_of(base_url or OPENAI_URL),
                "model": model,
                "image_tokens": {
                    k: {"count": c, "mean": round(m, 2)} for k, (c, m) in sorted(known.items())
                },
                "updated": _today(),
            }
            return self._write(path, record)

    # -- files --

    def _path(self, kind: str, base_url: str | None, model: str) -> Path:
        return self.root / kind / f"{_key(base_url, model)}.json"

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _write(path: Path, record: Mapping[str, Any]) -> bool:
        tmp = path.with_name(f".tmp-{os.urandom(6).hex()}.json")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        return True

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        """An exclusive lock beside `path` across processes where the platform has flock (a
        read-modify-write then loses no other process's update); without it, still whole files."""
        if fcntl is None:
            yield
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()
