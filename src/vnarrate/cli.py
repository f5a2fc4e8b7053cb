"""Command line: parse flags, build Settings, call the pipeline, echo, map errors to exit codes.

Thin on purpose: no stage logic here. Heavy modules are imported inside commands so that
`vnarrate --help` starts fast.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .errors import VnarrateError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 unexpected, 2 usage, 3 configuration, 4 input, 5 API, 6 output."
)


class UI:
    """Where diagnostics go: stderr only; progress only when stderr is a terminal."""

    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._progress_open = False

    def info(self, msg: str) -> None:
        if not self.quiet and (self.verbose or self.tty):
            self._line(msg)

    def warn(self, msg: str) -> None:
        if not self.quiet:
            self._line(f"vnarrate: warning: {msg}")

    def error(self, msg: str) -> None:
        self._line(f"vnarrate: error: {msg}")

    def progress(self, label: str) -> Callable[[int, int], None] | None:
        if self.quiet or not self.tty:
            return None

        def show(done: int, total: int) -> None:
            with self._lock:
                click.echo(f"\r{label}: {done}/{total}", nl=False, err=True)
                self._progress_open = done < total
                if done >= total:
                    click.echo("", err=True)

        return show

    def _line(self, msg: str) -> None:
        with self._lock:
            if self._progress_open:
                click.echo("", err=True)
                self._progress_open = False
            click.echo(msg, err=True)


def _ui() -> UI:
    ctx = click.get_current_context()
    obj = ctx.find_object(UI)
    return obj if obj is not None else UI()


# --- option groups ---------------------------------------------------------------------------


def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


connection_options = _options(
    click.option("--api-key", help="API key [env: OPENAI_API_KEY, VNARRATE_API_KEY]."),
    click.option(
        "--base-url",
        help="OpenAI-compatible server, e.g. http://localhost:11434/v1 [env: OPENAI_BASE_URL].",
    ),
    click.option(
        "--provider",
        type=click.Choice(
            ["auto", "openai", "ollama", "vllm", "llamacpp", "lmstudio", "compatible"]
        ),
        help="Server kind; decides request details. Default: detected from --base-url.",
    ),
    click.option("--model", help="Vision model [default: gpt-5.4-mini; env: VNARRATE_MODEL]."),
    click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds per request [120]."),
    click.option(
        "--max-retries", type=click.IntRange(0, 10), help="SDK retries on 429/5xx/timeouts [2]."
    ),
)

sampling_options = _options(
    click.option(
        "--sample",
        type=click.Choice(["stride", "count", "interval", "scenes"]),
        help="How to choose frames [default: interval].",
    ),
    click.option("--stride", type=click.IntRange(min=1), help="Every Nth frame (as the notebook)."),
    click.option("--frames", type=click.IntRange(min=1), help="N frames spread evenly."),
    click.option(
        "--every",
        type=click.FloatRange(min=0, min_open=True),
        help="One frame every S seconds [1].",
    ),
    click.option(
        "--max-frames",
        type=click.IntRange(1, 1500),
        help="Cap on frames per video, spread evenly [48].",
    ),
    click.option(
        "--resize",
        type=click.IntRange(min=0),
        help="Max side in px before encoding; 0 = full [768].",
    ),
    click.option("--jpeg-quality", type=click.IntRange(1, 100), help="JPEG quality [85]."),
)

model_options = _options(
    click.option(
        "--detail",
        type=click.Choice(["low", "high", "auto", "original"]),
        help="Image detail level sent with each frame [auto].",
    ),
    click.option(
        "--max-completion-tokens",
        type=click.IntRange(min=16),
        help="Output token cap, reasoning included [8000].",
    ),
    click.option(
        "--token-field",
        type=click.Choice(["auto", "max_completion_tokens", "max_tokens"]),
        help="Which token-limit field the server understands [auto: from --provider].",
    ),
    click.option("--temperature", type=click.FloatRange(0, 2), help="Sent only when given."),
    click.option(
        "--reasoning-effort",
        type=click.Choice(["none", "minimal", "low", "medium", "high", "xhigh"]),
        help="For reasoning models; sent only when given.",
    ),
    click.option("--language", help="Language of the text, e.g. en, de, 'Brazilian Portuguese'."),
)


def _settings(**flags: Any) -> Any:
    """Settings from the flags given (None = not given) over env, .env and defaults."""
    from .settings import load_settings

    chosen = [name for name in ("stride", "frames", "every") if flags.get(name) is not None]
    if len(chosen) > 1:
        raise click.UsageError(
            f"--{chosen[0]} and --{chosen[1]} both choose frames; give one of them"
        )
    if chosen and flags.get("sample") is None:
        flags["sample"] = {"stride": "stride", "frames": "count", "every": "interval"}[chosen[0]]
    return load_settings(**flags)


# --- commands --------------------------------------------------------------------------------


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, "--version", prog_name="vnarrate")
@click.option("-v", "--verbose", is_flag=True, help="Say what happens, and show tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the product and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Turn videos into words and voice with vision language models.

    \b
    vnarrate describe video.mp4          title + description
    vnarrate frames video.mp4 -o DIR     the frames the model would see (offline)
    """
    ctx.obj = UI(verbose=verbose, quiet=quiet)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o", "--output", "output_path", type=click.Path(path_type=Path), help="Write to FILE."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSONL).")
@click.option(
    "--format", "fmt", type=click.Choice(["markdown", "text", "json"]), help="Output format."
)
@click.option("--prompt", help="Your own question about the video, instead of the default task.")
@click.option(
    "--preset",
    type=click.Choice(["general", "youtube", "accessibility", "technical"]),
    help="System prompt style [general].",
)
@click.option("--force", is_flag=True, default=None, help="Overwrite existing outputs.")
@connection_options
@model_options
@sampling_options
def describe(
    inputs: tuple[str, ...],
    output_path: Path | None,
    as_json: bool,
    fmt: str | None,
    **flags: Any,
) -> None:
    """Write a title and a description of each VIDEO."""
    from . import output, pipeline

    ui = _ui()
    if as_json:
        fmt = "json"
    settings = _settings(format=fmt, **flags)
    if output_path is not None and len(inputs) > 1:
        raise click.UsageError("-o/--output takes one input; use several runs or --json")
    if output_path is not None:
        output.check_writable(output_path, force=settings.force)
    client, key = pipeline.open_client(settings)

    def one(path: str) -> str:
        result = pipeline.describe(
            path,
            settings,
            client=client,
            key=key,
            report=ui.info,
            progress=ui.progress(f"{Path(path).name}: frames"),
        )
        u = result.usage
        ui.info(
            f"{path}: {result.frames_sent} frames, {u.prompt_tokens} input + "
            f"{u.completion_tokens} output tokens ({u.reasoning_tokens} reasoning)"
        )
        return pipeline.render_description(result, settings.format)

    failures = _run_each(inputs, one, ui, settings.format == "json", output_path, settings.force)
    if failures:
        raise SystemExit(failures[0])


def _run_each(
    inputs: Iterable[str],
    fn: Callable[[str], str],
    ui: UI,
    json_lines: bool,
    output_path: Path | None,
    force: bool,
) -> list[int]:
    """Run `fn` per input; print (or write) each product; return the failures' exit codes."""
    from . import output

    failures: list[int] = []
    items = list(inputs)
    for path in items:
        try:
            text = fn(path)
            if not text:
                continue
        except VnarrateError as exc:
            if len(items) == 1 and not json_lines:
                raise
            ui.error(f"{path}: {exc}")
            failures.append(exc.exit_code)
            if json_lines:
                click.echo(
                    json.dumps(
                        {
                            "input": path,
                            "status": "error",
                            "error": str(exc),
                            "exit_code": exc.exit_code,
                        },
                        ensure_ascii=False,
                    )
                )
            continue
        if output_path is not None:
            output.write_text(output_path, text, force=force)
            ui.info(f"wrote {output_path}")
        else:
            click.echo(text.rstrip("\n"))
    return failures


script_options = _options(
    click.option(
        "--style",
        type=click.Choice(["documentary", "audio-description", "promo", "tutorial"]),
        help="Narration style [documentary].",
    ),
    click.option(
        "--words-per-second",
        type=click.FloatRange(0.3, 8),
        help="Voice's pace at speed 1.0, for word budgets [2.5].",
    ),
    click.option(
        "--segment-seconds",
        type=click.FloatRange(1, 120),
        help="Typical length of a narration slot [6].",
    ),
)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="Script file [default: VIDEO.script.json]; - prints it.",
)
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False), help="Output folder.")
@click.option("--json", "as_json", is_flag=True, help="One JSON result line per input (JSONL).")
@click.option("--instructions", help="Extra guidance for the script writer.")
@click.option("--force", is_flag=True, default=None, help="Overwrite existing outputs.")
@script_options
@connection_options
@model_options
@sampling_options
def script(inputs: tuple[str, ...], output_path: Path | None, as_json: bool, **flags: Any) -> None:
    """Write a timed narration script (JSON) for each VIDEO, to edit or to speak later."""
    from . import output, pipeline
    from .script import dump_script

    ui = _ui()
    settings = _settings(**flags)
    if output_path is not None and len(inputs) > 1:
        raise click.UsageError("-o/--output takes one input; use --out-dir for several")
    client, key = pipeline.open_client(settings)
    out_dir = settings.out_dir or Path(".")

    def one(path: str) -> str:
        target = output_path or out_dir / f"{Path(path).stem}.script.json"
        if str(target) != "-":
            output.check_writable(target, force=settings.force)
        result = pipeline.make_script(
            path,
            settings,
            client=client,
            key=key,
            report=ui.info,
            progress=ui.progress(f"{Path(path).name}: frames"),
        )
        for note in result.notes:
            ui.warn(f"{path}: {note}")
        text = dump_script(result.script)
        if str(target) == "-":
            return text
        output.write_text(target, text, force=settings.force)
        ui.info(f"{path}: wrote {target} ({len(result.script.segments)} segments)")
        return (
            json.dumps(
                {
                    "input": path,
                    "status": "ok",
                    "outputs": [str(target)],
                    "usage": result.usage.model_dump(),
                }
            )
            if as_json
            else ""
        )

    failures = _run_each(inputs, one, ui, as_json, None, settings.force)
    if failures:
        raise SystemExit(failures[0])


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Narration audio (.mp3, .wav or .m4a) [default: VIDEO.narration.mp3].",
)
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False), help="Output folder.")
@click.option(
    "--script",
    "script_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Speak this (edited) script.json instead of writing one: no vision call.",
)
@click.option(
    "--mux",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a copy of the video with the narration mixed in.",
)
@click.option("--replace-audio", is_flag=True, help="With --mux: drop the original audio.")
@click.option(
    "--duck-db",
    type=click.FloatRange(-60, 0),
    help="With --mux: original audio level under speech [-12].",
)
@click.option(
    "--untimed",
    is_flag=True,
    help="One continuous narration, as long as the speech (the notebook's way).",
)
@click.option(
    "--no-subtitles", "subtitles", flag_value=False, default=None, help="Skip the .srt and .vtt."
)
@click.option("--tts-model", help="Speech model [gpt-4o-mini-tts].")
@click.option("--voice", help="Voice [alloy]; e.g. onyx, nova, coral, sage.")
@click.option("--speed", type=click.FloatRange(0.25, 4.0), help="Speaking speed [1.0].")
@click.option("--instructions", "tts_instructions", help="Tone of voice (models that support it).")
@click.option("--script-instructions", "instructions", help="Extra guidance for the script writer.")
@click.option("--tts-base-url", help="Separate OpenAI-compatible server for speech.")
@click.option("--tts-api-key", help="Key for --tts-base-url [env: VNARRATE_TTS_API_KEY].")
@click.option("--jobs", type=click.IntRange(1, 64), help="Concurrent speech requests [4].")
@click.option("--json", "as_json", is_flag=True, help="One JSON result line per input (JSONL).")
@click.option("--force", is_flag=True, default=None, help="Overwrite existing outputs.")
@script_options
@connection_options
@model_options
@sampling_options
def voiceover(
    inputs: tuple[str, ...],
    output_path: Path | None,
    script_file: Path | None,
    mux: Path | None,
    replace_audio: bool,
    untimed: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Narrate each VIDEO: script -> speech -> an mp3 timed to the video, with subtitles."""
    from . import pipeline

    ui = _ui()
    settings = _settings(**flags)
    if len(inputs) > 1 and (output_path or mux or script_file):
        raise click.UsageError("-o, --mux and --script take one input; use --out-dir for several")
    if replace_audio and mux is None:
        raise click.UsageError("--replace-audio goes with --mux")
    client, key = pipeline.open_client(settings)
    out_dir = settings.out_dir or Path(".")

    def one(path: str) -> str:
        paths = pipeline.VoiceoverPaths(
            Path(path).stem,
            out_dir,
            audio=output_path,
            mux=mux,
            subtitles=settings.subtitles,
        )
        result = pipeline.voiceover(
            path,
            settings,
            paths,
            script_file=script_file,
            untimed=untimed,
            replace_audio=replace_audio,
            client=client,
            key=key,
            report=ui.info,
            progress=ui.progress(f"{Path(path).name}: frames"),
        )
        for note in result.notes:
            ui.warn(f"{path}: {note}")
        record = {
            "input": path,
            "status": "ok",
            "outputs": [o.path for o in result.outputs],
            "usage": result.usage.model_dump(),
            "speech_characters": result.speech_characters,
            "audio_s": round(result.audio_s, 3),
            "duration_s": round(result.duration_s, 3),
            "speech_backend": result.speech_backend,
            "notes": result.notes,
        }
        pipeline.write_manifest(
            paths.manifest,
            settings,
            {
                "input": path,
                "outputs": [o.model_dump() for o in result.outputs],
                "usage": result.usage.model_dump(),
                "speech_characters": result.speech_characters,
                "speech_backend": result.speech_backend,
                "placements": [p.model_dump() for p in result.placements],
                "notes": result.notes,
            },
            command="voiceover",
        )
        ui.info(f"{path}: wrote {', '.join(o.path for o in result.outputs)}")
        return json.dumps(record, ensure_ascii=False) if as_json else ""

    failures = _run_each(inputs, one, ui, as_json, None, settings.force)
    if failures:
        raise SystemExit(failures[0])


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("video")
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the JPEGs, frames.json and contact_sheet.jpg.",
)
@click.option("--force", is_flag=True, default=None, help="Overwrite existing files.")
@sampling_options
def frames(video: str, out_dir: Path, **flags: Any) -> None:
    """Save the frames the model would see, with a contact sheet. Offline: no key needed."""
    from . import pipeline

    ui = _ui()
    settings = _settings(**flags)
    written = pipeline.write_frames(
        video, out_dir, settings, progress=ui.progress(f"{Path(video).name}: frames")
    )
    n = sum(1 for p in written if p.name.startswith("frame_"))
    if not ui.quiet:
        click.echo(f"wrote {n} frames, frames.json and contact_sheet.jpg to {out_dir}", err=True)


# --- entry point -----------------------------------------------------------------------------


def _verbose_requested(argv: list[str]) -> bool:
    return any(a in ("-v", "--verbose") for a in argv)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors and the documented exit codes, never a traceback
    for an expected failure (unless --verbose)."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = _verbose_requested(args)
    try:
        cli.main(args=args, prog_name="vnarrate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("vnarrate: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see '{ctx.command_path} --help')"
        click.echo(f"vnarrate: error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except VnarrateError as exc:
        click.echo(f"vnarrate: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("vnarrate: interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        from .client import redact

        click.echo(
            redact(
                f"vnarrate: unexpected error: {type(exc).__name__}: {exc} "
                "(run with --verbose for details)"
            ),
            err=True,
        )
        sys.exit(1)
