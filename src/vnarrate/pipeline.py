"""Pipeline: the only module that knows the order of the stages.

Takes an input path and Settings; gives the product of a command (a DescribeResult, written
frames, ...). Each stage gets only the few settings it needs. Heavy libraries (cv2, av, openai)
are imported by the stages, so importing this module is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import output
from .errors import ApiError, InputError
from .models import (
    Clip,
    DescribeResult,
    Description,
    FrameSet,
    OutputFile,
    Placement,
    Script,
    ScriptResult,
    Segment,
    ShortenedLines,
    Usage,
    VoiceoverResult,
)
from .settings import Settings

if TYPE_CHECKING:
    import openai

    from .chat import ChatOptions
    from .speech import SpeechBackend

Report = Callable[[str], None]
Progress = Callable[[int, int], None]


def _quiet(_: str) -> None:
    pass


def chat_options(settings: Settings) -> ChatOptions:
    from .chat import ChatOptions

    token_field = settings.resolved_token_field()
    return ChatOptions(
        model=settings.model,
        token_field=token_field,
        max_tokens=settings.max_completion_tokens,
        temperature=settings.temperature,
        reasoning_effort=settings.reasoning_effort,
        base_url=settings.base_url,
    )


def open_client(settings: Settings) -> tuple[openai.OpenAI, str]:
    """The shared client and the key it uses (for redaction); fails early without a key."""
    from .client import make_client

    key = settings.require_key()
    client = make_client(
        api_key=key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )
    return client, key


def extract(path: str, settings: Settings, *, progress: Progress | None = None) -> FrameSet:
    """Frames stage: probe and sample the video as the settings say."""
    from . import frames

    source = Path(path)
    if not source.exists():
        raise InputError(f"{path}: no such file")
    return frames.sample_frames(source, settings.sampling(), progress=progress)


def describe(
    path: str,
    settings: Settings,
    *,
    client: openai.OpenAI | None = None,
    key: str = "",
    report: Report = _quiet,
    progress: Progress | None = None,
) -> DescribeResult:
    """frames -> prompts -> chat: a title and description of one video."""
    from .chat import complete
    from .prompts import describe_messages

    if client is None:
        client, key = open_client(settings)  # before decoding: a missing key fails fast
    frameset = extract(path, settings, progress=progress)
    report(
        f"{path}: {len(frameset.frames)} frames from {frameset.video.duration_s:.1f} s "
        f"({frameset.video.width}x{frameset.video.height})"
    )
    messages = describe_messages(
        frameset.frames,
        duration_s=frameset.video.duration_s,
        preset=settings.preset,
        prompt=settings.prompt,
        detail=settings.detail,
        language=settings.language,
    )
    report(f"{path}: asking {settings.model}")
    answer, usage = complete(client, Description, messages, chat_options(settings), key=key)
    return DescribeResult(
        input=path,
        title=answer.title.strip(),
        description=answer.description.strip(),
        model=settings.model,
        usage=usage,
        requests=usage.requests,
        frames_sent=len(frameset.frames),
        frame_times_s=[round(f.time_s, 3) for f in frameset.frames],
    )


def make_script(
    path: str,
    settings: Settings,
    *,
    client: openai.OpenAI | None = None,
    key: str = "",
    report: Report = _quiet,
    progress: Progress | None = None,
) -> ScriptResult:
    """frames -> prompts -> chat -> repair -> (shorten once): a timed narration script."""
    from .chat import complete
    from .prompts import script_messages
    from .script import over_budget, repair, suggest_slots, word_budget

    if client is None:
        client, key = open_client(settings)
    frameset = extract(path, settings, progress=progress)
    duration = frameset.video.duration_s
    wps = settings.words_per_second
    slots = [
        (a, b, word_budget(a, b, wps))
        for a, b in suggest_slots(
            duration, target_s=settings.segment_seconds, cuts_s=frameset.shot_starts_s
        )
    ]
    messages = script_messages(
        frameset.frames,
        duration_s=duration,
        slots=slots,
        style=settings.style,
        instructions=settings.instructions,
        language=settings.language,
        detail=settings.detail,
    )
    report(f"{path}: writing a {settings.style} script with {settings.model}")
    options = chat_options(settings)
    raw, usage = complete(client, Script, messages, options, key=key)
    script, notes = repair(raw, duration)
    if not script.segments:
        raise ApiError("the model wrote no usable narration segments", hint="try again")
    long = over_budget(script, wps)
    if long:
        report(f"{path}: {len(long)} segment(s) over their word budget; asking to shorten them")
        script, more = _shorten(client, key, options, script, long, wps)
        usage = usage + more
        notes.append(f"shortened {len(long)} segment(s) to fit their slots")
    still = over_budget(script, wps)
    if still:
        notes.append(
            f"{len(still)} segment(s) still over budget: speech will be sped up or moved later"
        )
    return ScriptResult(
        input=path,
        script=script,
        model=settings.model,
        usage=usage,
        requests=usage.requests,
        duration_s=duration,
        frames_sent=len(frameset.frames),
        notes=notes,
        over_budget=still,
    )


def _shorten(
    client: openai.OpenAI,
    key: str,
    options: ChatOptions,
    script: Script,
    indexes: list[int],
    wps: float,
) -> tuple[Script, Usage]:
    """One request that shortens the given segments; lines it does not return stay as they were."""
    from .chat import complete
    from .prompts import shorten_messages
    from .script import word_budget

    items = [
        (
            i,
            script.segments[i].text,
            word_budget(script.segments[i].start_s, script.segments[i].end_s, wps),
        )
        for i in indexes
    ]
    answer, usage = complete(
        client, ShortenedLines, shorten_messages(items, language=script.language), options, key=key
    )
    new_text = {
        line.id: line.text for line in answer.lines if line.id in indexes and line.text.strip()
    }
    segments = [
        Segment(start_s=seg.start_s, end_s=seg.end_s, text=new_text.get(i, seg.text))
        for i, seg in enumerate(script.segments)
    ]
    return script.model_copy(update={"segments": segments}), usage


class VoiceoverPaths:
    """Where a voiceover run writes: named after the video, or after `-o`'s mp3."""

    def __init__(
        self,
        stem: str,
        out_dir: Path,
        *,
        audio: Path | None = None,
        mux: Path | None = None,
        subtitles: bool = True,
        write_script: bool = True,
    ) -> None:
        self.audio = audio or out_dir / f"{stem}.narration.mp3"
        base = self.audio.with_suffix("") if audio else out_dir / stem
        self.srt = base.with_name(base.name + ".srt") if subtitles else None
        self.vtt = base.with_name(base.name + ".vtt") if subtitles else None
        self.script = out_dir / f"{stem}.script.json" if write_script else None
        self.manifest = out_dir / f"{stem}.vnarrate.json"
        self.mux = mux

    def all(self) -> list[Path]:
        paths = [self.audio, self.srt, self.vtt, self.script, self.mux, self.manifest]
        return [p for p in paths if p is not None]


def speech_backend(settings: Settings, client: openai.OpenAI) -> tuple[SpeechBackend, str]:
    """The speech backend for these settings, and why it was chosen (for --verbose/manifest)."""
    from .speech import SpeechEndpointBackend

    return SpeechEndpointBackend(client), "speech endpoint (/v1/audio/speech)"


def open_tts_client(settings: Settings, client: openai.OpenAI, key: str) -> openai.OpenAI:
    """The client for speech: the chat client unless a separate TTS server or key is set."""
    from .client import make_client

    if settings.tts_base_url is None and settings.tts_api_key is None:
        return client
    tts_key = settings.tts_api_key.get_secret_value() if settings.tts_api_key else key
    return make_client(
        api_key=tts_key or "not-needed",
        base_url=settings.tts_base_url or settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )


def voiceover(
    path: str,
    settings: Settings,
    paths: VoiceoverPaths,
    *,
    script_file: Path | None = None,
    untimed: bool = False,
    replace_audio: bool = False,
    client: openai.OpenAI | None = None,
    key: str = "",
    report: Report = _quiet,
    progress: Progress | None = None,
) -> VoiceoverResult:
    """script (or --script file) -> speech per segment -> timeline -> mp3, subtitles, mux."""
    import numpy as np

    from . import audio, subtitles
    from .frames import probe
    from .script import load_script, repair
    from .speech import SAMPLE_RATE, SpeechOptions, synthesize_all

    for target in paths.all():  # refuse before anything is paid for
        output.check_writable(target, force=settings.force)
    if client is None:
        client, key = open_client(settings)
    usage = Usage()
    notes: list[str] = []
    if script_file is not None:
        info = probe(path)
        script, notes = repair(load_script(script_file), info.duration_s)
        if not script.segments:
            raise InputError(f"{script_file}: the script has no segments inside the video")
        duration = info.duration_s
    else:
        made = make_script(path, settings, client=client, key=key, report=report, progress=progress)
        script, duration, usage, notes = made.script, made.duration_s, made.usage, list(made.notes)

    backend, why = speech_backend(settings, open_tts_client(settings, client, key))
    report(f"{path}: speech via {why}, {len(script.segments)} segments, --jobs {settings.jobs}")
    options = SpeechOptions(
        model=settings.tts_model,
        voice=settings.voice,
        speed=settings.speed,
        instructions=settings.tts_instructions,
    )
    texts = [seg.text for seg in script.segments]
    synths = synthesize_all(backend, texts, options, jobs=settings.jobs)
    characters = sum(len(t) for t in texts)
    clips = [
        Clip(
            segment=i, text=texts[i], pcm=syn.pcm, sample_rate=syn.sample_rate, speed=options.speed
        )
        for i, syn in enumerate(synths)
    ]

    def resynthesize(i: int, speed: float) -> Clip:
        nonlocal characters
        faster = options.model_copy(update={"speed": speed})
        syn = backend.synthesize(texts[i], faster)
        characters += len(texts[i])
        return Clip(segment=i, text=texts[i], pcm=syn.pcm, sample_rate=syn.sample_rate, speed=speed)

    if untimed:
        track = audio.untimed_track(clips)
        placements = _untimed_placements(clips)
    else:
        track, placements = audio.fit_timeline(
            script.segments,
            clips,
            duration,
            resynthesize=resynthesize,
            max_speed=settings.max_speed,
            max_stretch=settings.max_stretch,
        )
    for p in placements:
        if p.pushed_s > 0.05:
            notes.append(
                f"segment {p.segment + 1} starts {p.pushed_s:.2f} s late (speech longer than its slot)"
            )
    written: list[OutputFile] = []
    written.append(
        _record("audio", audio.encode_audio(track, SAMPLE_RATE, paths.audio, force=settings.force))
    )
    if paths.srt is not None and paths.vtt is not None:
        written.append(
            _record(
                "srt",
                output.write_text(paths.srt, subtitles.to_srt(placements), force=settings.force),
            )
        )
        written.append(
            _record(
                "vtt",
                output.write_text(paths.vtt, subtitles.to_vtt(placements), force=settings.force),
            )
        )
    if paths.script is not None:
        from .script import dump_script

        written.append(
            _record(
                "script", output.write_text(paths.script, dump_script(script), force=settings.force)
            )
        )
    if paths.mux is not None:
        report(f"{path}: muxing into {paths.mux}")
        muxed = audio.mux(
            Path(path),
            track,
            SAMPLE_RATE,
            placements,
            paths.mux,
            duck_db=settings.duck_db,
            replace_audio=replace_audio,
            force=settings.force,
        )
        written.append(_record("mux", muxed))
    return VoiceoverResult(
        input=path,
        script=script,
        placements=placements,
        outputs=written,
        usage=usage,
        speech_characters=characters,
        speech_backend=why,
        duration_s=duration,
        audio_s=float(np.asarray(track).shape[0]) / SAMPLE_RATE,
        notes=notes,
    )


def _untimed_placements(clips: list[Clip]) -> list[Placement]:
    """Where the untimed track puts each clip (clips back to back with the same short pause)."""
    from .audio import UNTIMED_GAP_S

    t = 0.0
    out: list[Placement] = []
    for clip in clips:
        end = t + clip.duration_s
        out.append(
            Placement(
                segment=clip.segment,
                text=clip.text,
                start_s=t,
                end_s=end,
                slot_start_s=t,
                slot_end_s=end,
                speed=clip.speed,
            )
        )
        t = end + UNTIMED_GAP_S
    return out


def _record(kind: str, path: Path) -> OutputFile:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return OutputFile(
        kind=kind, path=str(path), bytes=path.stat().st_size, sha256=digest.hexdigest()
    )


def write_manifest(
    manifest: Path, settings: Settings, record: dict[str, Any], *, command: str
) -> Path:
    """The run manifest: inputs, settings without secrets, models, usage, outputs. Written last,
    so its presence means the run completed."""
    import datetime

    from . import __version__

    doc = {
        "vnarrate": __version__,
        "command": command,
        "status": "complete",
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": public_settings(settings),
        **record,
    }
    return output.write_text(
        manifest, json.dumps(doc, indent=2, ensure_ascii=False, default=str), force=True
    )


def public_settings(settings: Settings) -> dict[str, Any]:
    """Settings safe to record: no keys, and base URLs without credentials or query strings."""
    from urllib.parse import urlsplit

    data = settings.model_dump(mode="json", exclude={"api_key", "tts_api_key"})
    for name in ("base_url", "tts_base_url"):
        if data.get(name):
            parts = urlsplit(data[name])
            data[name] = (
                f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
            )
    return data


def render_description(result: DescribeResult, fmt: str) -> str:
    """The product as the user asked for it: markdown, plain text, or one JSON line."""
    if fmt == "json":
        return json.dumps(description_record(result), ensure_ascii=False)
    if fmt == "text":
        return f"{result.title}\n\n{result.description}\n"
    return f"# {result.title}\n\n{result.description}\n"


def description_record(result: DescribeResult) -> dict[str, Any]:
    return {
        "input": result.input,
        "status": "ok",
        "title": result.title,
        "description": result.description,
        "model": result.model,
        "frames_sent": result.frames_sent,
        "frame_times_s": result.frame_times_s,
        "usage": result.usage.model_dump(),
    }


def write_frames(
    path: str,
    out_dir: Path,
    settings: Settings,
    *,
    progress: Progress | None = None,
) -> list[Path]:
    """`vnarrate frames`: the sampled JPEGs, frames.json and contact_sheet.jpg in `out_dir`."""
    from .frames import contact_sheet

    frameset = extract(path, settings, progress=progress)
    force = settings.force
    manifest_path = out_dir / "frames.json"
    # Check before writing anything, so a refused run leaves the folder as it was.
    output.check_writable(manifest_path, force=force)
    output.check_writable(out_dir / "contact_sheet.jpg", force=force)
    written: list[Path] = []
    records = []
    for n, frame in enumerate(frameset.frames, start=1):
        name = f"frame_{n:04d}_{frame.time_s:09.3f}s.jpg"
        written.append(output.write_bytes(out_dir / name, frame.jpeg, force=force))
        records.append(
            {
                "file": name,
                "index": frame.index,
                "time_s": round(frame.time_s, 3),
                "width": frame.width,
                "height": frame.height,
                "bytes": len(frame.jpeg),
                **({"shot": frame.shot} if frame.shot is not None else {}),
            }
        )
    sheet = out_dir / "contact_sheet.jpg"
    written.append(output.write_bytes(sheet, contact_sheet(frameset.frames), force=force))
    doc = {
        "input": path,
        "video": frameset.video.model_dump(),
        "mode": frameset.mode,
        "sampling": settings.sampling().model_dump(),
        "shot_starts_s": frameset.shot_starts_s,
        "frames": records,
    }
    written.append(
        output.write_text(manifest_path, json.dumps(doc, indent=2, ensure_ascii=False), force=force)
    )
    return written


def total_usage(results: list[Usage]) -> Usage:
    total = Usage()
    for u in results:
        total = total + u
    return total
