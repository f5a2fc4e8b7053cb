"""Run manifests: what a run wrote -> one JSON file beside its outputs, kept as they land.

Takes a command's record (runs/render.py), the Settings and the files written; gives
`VIDEO.vnarrate.json` (voiceover) or `VIDEO.<command>.vnarrate.json`: the settings without secrets,
the record, every output with its size and sha256, and the files the run read that make it stale
when they change (`sources`: an edited script). While a run writes, the manifest says `partial`
and names each output before it takes its name (Journal); `complete` is written last. A complete
manifest whose outputs and sources still match is what `--skip-existing` skips; a partial one
(a run stopped by a signal, a full disk) lets the rerun replace the files it names, and only
while they are unchanged (claim_targets): never a file vnarrate did not write.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import OutputError
from ..models import OutputFile
from ..settings import Settings
from ..version import __version__
from .output import Landing, check_writable, write_text


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
    sources: Sequence[OutputFile] = (),
    status: str = "complete",
    earlier: Sequence[OutputFile] = (),
) -> Path:
    """The run manifest: input, settings without secrets, the command's record, the outputs.
    Written last as `complete`, so its presence (with matching outputs) means the run completed;
    `partial` while the outputs land, with `earlier` (files of an earlier run, still ours)."""
    doc = {
        "vnarrate": __version__,
        "command": command,
        "status": status,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": public_settings(settings),
        "input": input,
        **record,
        "outputs": [o.model_dump() for o in outputs],
    }
    if sources:
        doc["sources"] = [s.model_dump() for s in sources]
    if earlier:
        doc["earlier_outputs"] = [o.model_dump() for o in earlier]
    text = json.dumps(doc, indent=2, ensure_ascii=False, default=str)
    return write_text(manifest, text, force=True)


def _read(manifest: Path, command: str | None) -> dict[str, Any] | None:
    """The manifest of a run of `command` (any, when None), or None: absent, unreadable, not
    a manifest of ours."""
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(doc, dict)
        or "vnarrate" not in doc
        or not isinstance(doc.get("outputs"), list)
    ):
        return None
    if command and doc.get("command") != command:
        return None
    return doc


def _matches(item: Any) -> bool:
    """Whether a recorded file is on disk exactly as recorded (size, then sha256)."""
    try:
        p = Path(item["path"])
        if not p.is_file() or p.stat().st_size != item["bytes"]:
            return False
        return bool(sha256_of(p) == item["sha256"])
    except (OSError, KeyError, TypeError):
        return False


def manifest_complete(manifest: Path, *, command: str | None = None) -> bool:
    """True when `manifest` records a complete run (of `command`, when given: a describe run
    does not make a voiceover complete) whose outputs, and the sources it read, are all still
    as they were."""
    doc = _read(manifest, command)
    if doc is None or doc.get("status") != "complete" or not doc["outputs"]:
        return False
    sources = doc.get("sources", [])
    return isinstance(sources, list) and all(map(_matches, [*doc["outputs"], *sources]))


def earlier_outputs(manifest: Path, command: str) -> tuple[list[OutputFile], set[Path]]:
    """Files an earlier run of `command` wrote (its manifest, complete or partial) that are
    still exactly as written, and every path it named (changed or not)."""
    doc = _read(manifest, command)
    if doc is None:
        return [], set()
    items = [*doc["outputs"], *doc.get("earlier_outputs", [])]
    named: set[Path] = set()
    ours: list[OutputFile] = []
    for item in items:
        try:
            entry = OutputFile.model_validate(item)
        except ValueError:
            continue
        named.add(Path(entry.path))
        if _matches(item) and all(o.path != entry.path for o in ours):
            ours.append(entry)
    return ours, named


@dataclass
class Claim:
    """The targets one input's run may write: which existing ones it may replace, and the files
    an earlier run left that are still ours (kept on record until replaced)."""

    replaceable: set[Path] = field(default_factory=set)
    earlier: list[OutputFile] = field(default_factory=list)

    def force(self, path: Path) -> bool:
        return path in self.replaceable


def claim_targets(
    targets: Sequence[Path], manifest: Path | None, *, command: str, force: bool, resume: bool
) -> Claim:
    """Check every target (and the manifest) before anything is paid for. An existing file is
    replaced with --force; with `resume` (--skip-existing) also when an earlier run of this
    command wrote it and it is unchanged since; otherwise the run stops (exit 6)."""
    claim = Claim()
    named: set[Path] = set()
    if resume and manifest is not None:
        claim.earlier, named = earlier_outputs(manifest, command)
    ours = {Path(o.path) for o in claim.earlier}
    if manifest is not None and _read(manifest, command) is not None:
        ours.add(manifest)  # our own bookkeeping: always ours to update
    for target in [*targets, *([manifest] if manifest is not None else [])]:
        mine = force or target in ours
        if not mine and target in named and target.exists():
            raise OutputError(
                f"{target} was changed since vnarrate wrote it", hint="pass --force to overwrite it"
            )
        check_writable(target, force=mine)
        if mine:
            claim.replaceable.add(target)
    return claim


def source_file(kind: str, path: Path) -> OutputFile:
    """A file the run read whose change makes its outputs stale (recorded like an output)."""
    return record_output(kind, path)


class Journal:
    """One input's run manifest while its outputs land: `partial`, naming each output (size and
    sha256 of the finished temporary file) before the output takes its name, then `complete`.

    So at every moment, a file of ours under its real name is on record, and a rerun with
    --skip-existing can tell it from a file that is not ours (or was changed since)."""

    def __init__(
        self,
        manifest: Path,
        settings: Settings,
        *,
        command: str,
        input: str,
        claim: Claim | None = None,
        sources: Sequence[OutputFile] = (),
    ) -> None:
        self.manifest = manifest
        self.settings = settings
        self.command = command
        self.input = input
        self.earlier = list(claim.earlier) if claim is not None else []
        self.sources = list(sources)
        self.outputs: list[OutputFile] = []

    def lands(self, kind: str, path: Path) -> Landing:
        """The `landing` for atomic_path: record `path` as written with the temporary file's
        size and checksum (the rename does not change them)."""

        def record(tmp: Path) -> None:
            entry = OutputFile(
                kind=kind, path=str(path), bytes=tmp.stat().st_size, sha256=sha256_of(tmp)
            )
            self.outputs = [o for o in self.outputs if o.path != entry.path] + [entry]
            self._write("partial", {})

        return record

    def complete(self, record: dict[str, Any]) -> Path:
        """The manifest as the run's last write: every output, `complete`."""
        return self._write("complete", record)

    def _write(self, status: str, record: dict[str, Any]) -> Path:
        # Until complete, the earlier run's files stay on record even where this run recorded
        # a new version: a stop between that record and the rename leaves the earlier file.
        earlier = self.earlier if status == "partial" else []
        return write_manifest(
            self.manifest,
            self.settings,
            record,
            command=self.command,
            input=self.input,
            outputs=self.outputs,
            sources=self.sources,
            status=status,
            earlier=earlier,
        )
