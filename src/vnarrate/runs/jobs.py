"""Jobs: one per command -> files and outcomes for many inputs, and the exit code.

Takes Settings, a Request (what the command line asks besides settings: inputs, `-o`, `--json`,
`--dry-run`...) and a Reporter; gives the exit code. Each job checks its flags that go together
(a UsageError, exit 2), checks every target before anything is paid for, runs the flow of
pipeline.py per input through the batch driver, writes atomically (each output on record in the
partial run manifest before it takes its name), and writes the complete run manifest last. The
voiceover job lives in voiceover.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO, overload

from ..errors import UsageError
from ..media.sheets import contact_sheet
from ..models import DescribeResult, Frame, FrameSet, SpeechMap
from ..narration.script import dump_script
from ..pipeline import describe as describe_flow
from ..pipeline import describe_images, listen, prepare, write_script
from ..server.client import make_client
from ..server.doctor import check_server
from ..session import api_key, check_speech, open_cache, stage_options
from ..settings import Settings
from ..vision.stream import sample
from .batch_api import run_all
from .driver import Batch, Outcome, Reporter
from .inputs import Input, output_path, stdin_text
from .manifest import Claim, Journal, claim_targets
from .output import atomic_path, check_writable, write_bytes, write_text
from .render import (
    describe_summary,
    description_record,
    plan_record,
    render_description,
    render_plan,
    script_record,
    speech_summary,
)

DESCRIPTION_SUFFIX = {"markdown": ".md", "text": ".txt", "json": ".json"}
SCRIPT_SCHEMA = "data/script.schema.json"


@dataclass(frozen=True)
class Request:
    """What a command asks besides its settings."""

    inputs: tuple[str, ...]
    recursive: bool = False
    as_json: bool = False
    skip_existing: bool = False
    dry_run: bool = False
    output: Path | None = None  # -o: one input's product, where the user wants it
    stdin: TextIO | None = None  # where `-` reads input paths from

    @classmethod
    def from_flags(cls, flags: dict[str, Any]) -> Request:
        """The request in command-line flags (the settings among them are ignored here)."""
        inputs = tuple(flags.get("inputs", ()))
        own = ("recursive", "as_json", "skip_existing", "dry_run", "output")
        given = {f: flags[f] for f in own if flags.get(f) is not None}
        return cls(inputs=inputs, stdin=stdin_text() if "-" in inputs else None, **given)

    def batch(self, settings: Settings, reporter: Reporter, command: str) -> Batch:
        return Batch(
            self.inputs,
            settings,
            reporter,
            command=command,
            recursive=self.recursive,
            as_json=self.as_json,
            skip_existing=self.skip_existing,
            stdin=self.stdin,
        )


def one_input(batch: Batch, what: str) -> None:
    """A flag that names one file cannot serve several inputs (exit 2)."""
    if not batch.single:
        raise UsageError(f"{what} one input; use --out-dir for several")


def plan_outcome(inp: Input, batch: Batch, task: str) -> Outcome:
    """`plan` and `--dry-run` for one input: frames -> pack -> plan, offline."""
    options = stage_options(batch.settings)
    # Where people speak is shown whatever the task (offline, no key).
    r = batch.reporter
    prep = prepare(inp.source, options, task, report=r.info, warn=r.warn, detect=True)  # type: ignore[arg-type]
    return Outcome(input=inp.source, record=plan_record(prep.plan), text=render_plan(prep.plan))


def check_voiceover(settings: Settings) -> None:
    """What a voiceover (or its plan) refuses before anything else (exit 2): a voice the
    speaking backend lacks, dialogue subtitles without transcription."""
    check_speech(stage_options(settings))
    if settings.subtitles in ("dialogue", "both") and settings.transcribe == "off":
        raise UsageError(
            f"--subtitles {settings.subtitles} needs what people say: not --transcribe off"
        )


# --- plan ----------------------------------------------------------------------------------------


def plan(settings: Settings, request: Request, reporter: Reporter, *, task: str) -> int:
    """`vnarrate plan`: the frames, requests, tokens and dollars a run would use; no key.
    `--task voiceover` takes the voiceover's settings and refuses what it would refuse, so it
    gives what `voiceover --dry-run` gives."""
    if task == "voiceover":
        check_voiceover(settings)
    batch = request.batch(settings, reporter, "plan")
    return batch.run(lambda inp: plan_outcome(inp, batch, task))


# --- describe ------------------------------------------------------------------------------------


class _Describe:
    def __init__(self, batch: Batch, request: Request) -> None:
        self.batch = batch
        self.settings = batch.settings
        self.request = request
        self.session = batch.open_session()

    def target(self, inp: Input | None) -> Path | None:
        if self.request.output is not None or inp is None:
            return self.request.output
        if self.settings.out_dir is None:
            return None
        return self.batch.path_for(inp, f".description{DESCRIPTION_SUFFIX[self.settings.format]}")

    def manifest(self, inp: Input | None) -> Path | None:
        """A run manifest goes with each description written into --out-dir (not with -o)."""
        if self.settings.out_dir is None or inp is None or self.request.output is not None:
            return None
        return self.batch.manifest_for(inp)

    def video(self, inp: Input) -> Outcome:
        target = self.target(inp)
        if target is not None:
            self.claim(target, inp)
        progress = self.batch.reporter.progress(inp.source)
        return self.finish(describe_flow(inp.source, self.session, progress=progress), inp)

    def claim(self, target: Path, inp: Input | None) -> Claim:
        """Check `target` (and its manifest) before anything is paid for."""
        return claim_targets(
            [target],
            self.manifest(inp),
            command="describe",
            force=self.settings.force,
            resume=self.request.skip_existing,
        )

    def images(self, members: list[Input]) -> Outcome:
        result = describe_images([m.source for m in members], self.session)
        return self.finish(result, None)

    def finish(self, result: DescribeResult, inp: Input | None) -> Outcome:
        self.batch.reporter.info(describe_summary(result))
        text = render_description(result, self.settings.format)
        record = description_record(result)
        target = self.target(inp)
        if target is None:
            shown = None if self.request.as_json else text
            return Outcome(input=result.input, record=record, text=shown)
        claim = self.claim(target, inp)
        manifest = self.manifest(inp)
        force = claim.force(target)
        if manifest is None:
            written = write_text(target, text, force=force)
        else:
            journal = Journal(
                manifest, self.settings, command="describe", input=result.input, claim=claim
            )
            landing = journal.lands("description", target)
            written = write_text(target, text, force=force, landing=landing)
            journal.complete(record)
        self.batch.reporter.info(f"{result.input}: wrote {written}")
        return Outcome(input=result.input, record={**record, "outputs": [str(written)]})


def describe(settings: Settings, request: Request, reporter: Reporter) -> int:
    """`vnarrate describe`: a title and a description of each video (and of all images)."""
    if request.as_json:
        settings = settings.model_copy(update={"format": "json"})
    batch = request.batch(settings, reporter, "describe")
    if request.output is not None:
        one_input(batch, "-o/--output takes")
    if request.dry_run:
        return batch.run(lambda inp: plan_outcome(inp, batch, "describe"))
    if request.output is not None:
        check_writable(request.output, force=settings.force)
    job = _Describe(batch, request)
    return run_all(batch, job.video, job.images)


# --- script --------------------------------------------------------------------------------------


def script(settings: Settings, request: Request, reporter: Reporter) -> int:
    """`vnarrate script`: a timed narration script (JSON) per video, to edit or speak later."""
    batch = request.batch(settings, reporter, "script")
    if request.output is not None:
        one_input(batch, "-o/--output takes")
    if request.dry_run:
        return batch.run(lambda inp: plan_outcome(inp, batch, "script"))
    session = batch.open_session()
    to_stdout = request.output is not None and str(request.output) == "-"
    if request.output is not None and not to_stdout:
        # -o NAME.json: the manifest is NAME.script.vnarrate.json beside it, as for the default
        # VIDEO.script.json.
        base = request.output.name.removesuffix(".json").removesuffix(".script")
        named = request.output.with_name(f"{base or request.output.name}.script.vnarrate.json")
        batch.manifest_path = lambda inp: named

    def work(inp: Input) -> Outcome:
        target = request.output or batch.path_for(inp, ".script.json")
        manifest = batch.manifest_for(inp)
        claim = Claim()
        if not to_stdout:
            claim = claim_targets(
                [target],
                manifest,
                command="script",
                force=settings.force,
                resume=request.skip_existing,
            )
        result = write_script(inp.source, session, progress=reporter.progress(inp.source))
        for note in result.notes:
            reporter.warn(f"{inp.source}: {note}")
        text = dump_script(result.script)
        record = script_record(result)
        if to_stdout:
            return Outcome(input=inp.source, record=record, text=None if request.as_json else text)
        journal = Journal(manifest, settings, command="script", input=inp.source, claim=claim)
        landing = journal.lands("script", target)
        written = write_text(target, text, force=claim.force(target), landing=landing)
        journal.complete(record)
        reporter.say(f"{inp.source}: wrote {written} ({len(result.script.segments)} segments)")
        return Outcome(input=inp.source, record={**record, "outputs": [str(written)]})

    return run_all(batch, work)


def script_schema() -> str:
    """The script.json format as a JSON Schema (shipped in the package, generated from
    models.Script; tests/test_script_cmd.py keeps the two equal)."""
    return resources.files("vnarrate").joinpath(SCRIPT_SCHEMA).read_text(encoding="utf-8")


# --- frames --------------------------------------------------------------------------------------


class FrameFiles:
    """`vnarrate frames`' output folder, written as the frames come: each JPEG renamed into place
    whole as soon as it is encoded (its bytes then let go, so memory does not grow with the
    number of frames), then frames.json and contact_sheet.jpg (drawn from the files, a tile at a
    time). A run that fails takes back the frames it wrote."""

    def __init__(self, folder: Path, settings: Settings) -> None:
        self.folder, self.settings, self.force = folder, settings, settings.force
        self.manifest, self.sheet = folder / "frames.json", folder / "contact_sheet.jpg"
        self.written: list[Path] = []
        # Checked before writing anything, so a refused run leaves the folder as it was.
        check_writable(self.manifest, force=self.force)
        check_writable(self.sheet, force=self.force)
        folder.mkdir(parents=True, exist_ok=True)

    def keep(self, frame: Frame) -> Frame:
        """Write one frame; what the FrameSet holds of it (no bytes)."""
        path = self.folder / f"frame_{len(self.written) + 1:04d}_{frame.time_s:08.3f}s.jpg"
        # Atomic (renamed into place whole) but not fsynced one by one: that cost 3 ms a frame,
        # more than sampling it, and only a power cut could lose a frame that is cheap to redo.
        # frames.json, written last, is fsynced.
        with atomic_path(path, force=self.force) as tmp:
            tmp.write_bytes(frame.jpeg)
        self.written.append(path)
        return frame.model_copy(update={"jpeg": b""})

    def discard(self) -> None:
        """Take back the frames this run wrote (it failed before frames.json)."""
        for path in self.written:
            path.unlink(missing_ok=True)

    def finish(self, frameset: FrameSet, speech: SpeechMap | None) -> int:
        """frames.json (with where people speak) and the contact sheet; how many frames."""
        records = []
        for path, frame in zip(self.written, frameset.frames, strict=True):
            shot = {"shot": frame.shot} if frame.shot is not None else {}
            size = {"width": frame.width, "height": frame.height, "bytes": path.stat().st_size}
            # time_s is the picture's own time; target_s the time asked for; snapped: a keyframe
            # near the target stood in for it (see media/targets.py).
            target = {"target_s": round(frame.target_s, 3)} if frame.target_s is not None else {}
            records.append({"file": path.name, "index": frame.index,
                            "time_s": round(frame.time_s, 3), **target,
                            "snapped": frame.snapped, **size, **shot})  # fmt: skip
        sheet = contact_sheet(_OnDisk(frameset.frames, self.written))
        write_bytes(self.sheet, sheet, force=self.force)
        doc = {
            "input": frameset.video.path,
            "video": frameset.video.model_dump(),
            "mode": frameset.mode,
            "sampling": stage_options(self.settings).sampling.model_dump(),
            "shot_starts_s": frameset.shot_starts_s,
            "warnings": frameset.warnings,
            "frames": records,
            "soundtrack": speech.model_dump(mode="json") if speech is not None else None,
        }
        write_text(self.manifest, json.dumps(doc, indent=2, ensure_ascii=False), force=self.force)
        return len(records)


class _OnDisk(Sequence[Frame]):
    """Frames whose JPEGs are on disk, read back one at a time (for the contact sheet)."""

    def __init__(self, frames: list[Frame], paths: list[Path]) -> None:
        self.frames, self.paths = frames, paths

    def __len__(self) -> int:
        return len(self.frames)

    @overload
    def __getitem__(self, i: int) -> Frame: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Frame]: ...
    def __getitem__(self, i: int | slice) -> Frame | Sequence[Frame]:
        if isinstance(i, slice):
            return _OnDisk(self.frames[i], self.paths[i])
        return self.frames[i].model_copy(update={"jpeg": self.paths[i].read_bytes()})


def frames(settings: Settings, request: Request, reporter: Reporter) -> int:
    """`vnarrate frames`: the frames the model would see, with a contact sheet; no key."""
    batch = request.batch(settings, reporter, "frames")
    options = stage_options(settings)

    def work(inp: Input) -> Outcome:
        stem = batch.stems[inp]
        if request.output is None:
            folder = output_path(None, stem, ".frames")
        elif batch.single:
            folder = request.output
        else:
            folder = output_path(request.output, stem, ".frames")
        files = FrameFiles(folder, settings)
        try:
            chosen = sample(inp.source, options.sampling, warn=reporter.warn,
                            progress=reporter.progress(inp.source), keep=files.keep)  # fmt: skip
            heard = listen(inp.source, options, warn=reporter.warn)  # offline: where people speak
            n = files.finish(chosen, heard.speech if heard is not None else None)
        except BaseException:
            files.discard()
            raise
        speech = heard.speech if heard is not None else None
        for line in speech_summary(speech) if speech is not None else []:
            reporter.say(f"{inp.source}: {line}")
        reporter.say(
            f"{inp.source}: wrote {n} frames, frames.json and contact_sheet.jpg to {folder}"
        )
        return Outcome(input=inp.source, record={"outputs": [str(folder)]})

    return batch.run(work)


# --- models and cache ------------------------------------------------------------------------------


def models(settings: Settings, reporter: Reporter) -> int:
    """`vnarrate models`: is the server reachable, is the key accepted, is the model there?"""
    options = stage_options(settings)
    client = make_client(
        api_key=api_key(settings, options.profile),
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=0,
    )
    report = check_server(client, model=settings.model, provider=options.provider)
    reporter.product("\n".join(report.lines()))
    return 0 if report.ok else 5


def cache_info(settings: Settings, reporter: Reporter) -> int:
    info = open_cache(settings).info()
    reporter.product(f"{info.path}\n{info.entries} entries, {info.bytes / 1e6:.1f} MB")
    return 0


def cache_clear(settings: Settings, reporter: Reporter) -> int:
    store = open_cache(settings)
    removed = store.clear()
    reporter.say(f"removed {removed} entries from {store.root}")
    return 0
