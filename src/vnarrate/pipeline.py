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
from .errors import InputError
from .models import DescribeResult, Description, FrameSet, Usage
from .settings import Settings

if TYPE_CHECKING:
    import openai

    from .chat import ChatOptions

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
