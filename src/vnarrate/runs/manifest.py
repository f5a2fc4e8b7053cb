"""Run manifests: what a run wrote -> one JSON file beside its outputs, written last.

Takes a command's record (runs/render.py), the Settings and the files written; gives
`VIDEO.vnarrate.json` (voiceover) or `VIDEO.<command>.vnarrate.json`: the settings without secrets,
the record, and every output with its size and sha256. Its presence, with outputs that still
match, is what `--skip-existing` trusts.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..models import OutputFile
from ..settings import Settings
from ..version import __version__
from .output import write_text


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_output(kind: str, path: Path) -> OutputFile:
    """A written file as the manifest records it: kind, path, size and checksum."""
    return OutputFile(kind=kind, path=str(path), bytes=path.stat().st_size, sha256=sha256_of(path))


def manifest_suffix(command: str) -> str:
    """Each command keeps its own run manifest, so describe, script and voiceover can share an
    --out-dir: `clip.vnarrate.json` (voiceover), `clip.describe.vnarrate.json`, ..."""
    return ".vnarrate.json" if command == "voiceover" else f".{command}.vnarrate.json"


def public_settings(settings: Settings) -> dict[str, Any]:
    """Settings safe to record: no keys, and base URLs without credentials or query strings."""
    data = settings.model_dump(mode="json", exclude={"api_key", "tts_api_key"})
    for name in ("base_url", "tts_base_url"):
        if data.get(name):
            parts = urlsplit(data[name])
            port = f":{parts.port}" if parts.port else ""
            data[name] = f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    return data


def write_manifest(
    manifest: Path,
    settings: Settings,
    record: dict[str, Any],
    *,
    command: str,
    input: str,
    outputs: list[OutputFile],
) -> Path:
    """The run manifest: input, settings without secrets, the command's record, the outputs.
    Written last, so its presence (with matching outputs) means the run completed."""
    doc = {
        "vnarrate": __version__,
        "command": command,
        "status": "complete",
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": public_settings(settings),
        "input": input,
        **record,
        "outputs": [o.model_dump() for o in outputs],
    }
    text = json.dumps(doc, indent=2, ensure_ascii=False, default=str)
    return write_text(manifest, text, force=True)


def manifest_complete(manifest: Path, *, command: str | None = None) -> bool:
    """True when `manifest` records a complete run (of `command`, when given: a describe run
    does not make a voiceover complete) whose outputs are all still as written."""
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        outputs = doc["outputs"]
        if doc.get("status") != "complete" or not outputs:
            return False
        if command and doc.get("command") != command:
            return False
        for item in outputs:
            p = Path(item["path"])
            if not p.is_file() or p.stat().st_size != item["bytes"]:
                return False
            if sha256_of(p) != item["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True
