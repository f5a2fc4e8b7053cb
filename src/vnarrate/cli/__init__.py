"""Command line: parse flags, build Settings, call the pipeline, echo, map errors to exit codes.

Thin on purpose: no stage logic here. Heavy modules are imported inside commands so that
`vnarrate --help` starts fast.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from .. import __version__
from ..errors import InputError, VnarrateError

if TYPE_CHECKING:
    from ..models import DescribeResult
    from ..pipeline import Session
    from ..runs.driver import Outcome
    from ..runs.inputs import Input
    from ..settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 unexpected, 2 usage, 3 configuration, 4 input, 5 API, 6 output. "
    "With several inputs: the first failed input's code, after all were processed."
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

    def say(self, msg: str) -> None:
        """A result line for people (summaries, files written): shown unless --quiet."""
        if not self.quiet:
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
    obj = click.get_current_context().find_object(UI)
    return obj if obj is not None else UI()


# --- option groups ---------------------------------------------------------------------------


def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def _set_ui(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ui = ctx.find_object(UI)
        if ui is not None:
            setattr(ui, str(param.name), True)


# -v/-q work before or after the command name: `vnarrate -q describe x` or `vnarrate describe x -q`
ui_options = _options(
    click.option(
        "-v", "--verbose", is_flag=True, expose_value=False, callback=_set_ui, help="Say more."
    ),
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_ui,
        help="Print only the product and errors.",
    ),
)


PROVIDERS = ["auto", "openai", "ollama", "vllm", "llamacpp", "lmstudio", "compatible"]

connection_options = _options(
    click.option("--api-key", help="API key [env: OPENAI_API_KEY or VNARRATE_API_KEY]."),
    click.option(
        "--base-url",
        help="OpenAI-compatible server, e.g. http://localhost:11434/v1 [env: OPENAI_BASE_URL].",
    ),
    click.option(
        "--provider",
        type=click.Choice(PROVIDERS),
        help="Server kind; decides request details [auto: from --base-url].",
    ),
    click.option("--model", help="Vision model [gpt-5.4-mini]."),
    click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds per request [120]."),
    click.option(
        "--max-retries", type=click.IntRange(0, 10), help="SDK retries on 429/5xx/timeouts [2]."
    ),
)

sampling_options = _options(
    click.option(
        "--sample",
        type=click.Choice(["stride", "count", "interval", "scenes"]),
        help="How to choose frames [interval].",
    ),
    click.option("--stride", type=click.IntRange(min=1), help="Every Nth frame."),
    click.option("--frames", type=click.IntRange(min=1), help="N frames spread evenly."),
    click.option(
        "--every", type=click.FloatRange(min=0, min_open=True), help="A frame every S seconds [1]."
    ),
    click.option(
        "--max-frames", type=click.IntRange(1, 1500), help="Cap on frames, spread evenly [48]."
    ),
    click.option(
        "--resize", type=click.IntRange(min=0), help="Longest side in px; 0 = full size [768]."
    ),
    click.option("--jpeg-quality", type=click.IntRange(1, 100), help="JPEG quality [85]."),
    click.option(
        "--scene-threshold",
        type=click.FloatRange(0, 1, min_open=True),
        help="--sample scenes: how different frames must be to count as a cut [0.3].",
    ),
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
        help="Token-limit field the server understands [auto: by --provider].",
    ),
    click.option(
        "--structured",
        type=click.Choice(["auto", "json_schema", "json_object", "none"]),
        help="Structured output: json_schema, or JSON mode + validation [auto: by --provider].",
    ),
    click.option(
        "--pack",
        type=click.Choice(["auto", "none", "grid"]),
        help="Tile frames into timestamped sheets for 1-image servers [auto].",
    ),
    click.option(
        "--image-urls",
        type=click.Choice(["auto", "pass", "download"]),
        help="Image URLs: pass to the server, or download first [auto: by --provider].",
    ),
    click.option("--temperature", type=click.FloatRange(0, 2), help="Sent only when given."),
    click.option(
        "--reasoning-effort",
        type=click.Choice(["none", "minimal", "low", "medium", "high", "xhigh"]),
        help="For reasoning models; sent only when given.",
    ),
    click.option("--language", help="Language of the text, e.g. en, de, 'Brazilian Portuguese'."),
    click.option(
        "--max-images-per-request",
        type=click.IntRange(1, 1500),
        help="Split longer videos into requests of at most N frames [provider's].",
    ),
    click.option(
        "--max-input-tokens",
        type=click.IntRange(min=1000),
        help="Split so no request exceeds N input tokens [100000].",
    ),
    click.option(
        "--max-cost", type=click.FloatRange(min=0), help="Refuse runs estimated above USD (exit 3)."
    ),
    click.option(
        "--prices", type=click.Path(path_type=Path, dir_okay=False), help="Your prices JSON file."
    ),
    click.option("--dry-run", is_flag=True, help="Show the plan (frames, tokens, cost); no calls."),
)

batch_options = _options(
    click.option("--recursive", "-r", is_flag=True, help="Descend into folders."),
    click.option(
        "--out-dir", type=click.Path(path_type=Path, file_okay=False), help="Output folder."
    ),
    click.option("--jobs", type=click.IntRange(1, 64), help="Inputs (and speech) at once [4]."),
    click.option("--json", "as_json", is_flag=True, help="One JSON result line per input."),
    click.option(
        "--skip-existing", is_flag=True, help="Skip inputs whose run manifest says complete."
    ),
    click.option("--force", is_flag=True, default=None, help="Overwrite existing outputs."),
    click.option("--no-cache", "cache", flag_value=False, default=None, help="Bypass the cache."),
    click.option(
        "--cache-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Response cache folder [user cache dir].",
    ),
)

script_options = _options(
    click.option(
        "--style",
        type=click.Choice(["documentary", "audio-description", "promo", "tutorial"]),
        help="Narration style [documentary].",
    ),
    click.option(
        "--words-per-second",
        type=click.FloatRange(0.3, 8),
        help="The voice's pace at speed 1.0, for word budgets [2.5].",
    ),
    click.option(
        "--segment-seconds",
        type=click.FloatRange(1, 120),
        help="Typical length of a narration slot [6].",
    ),
)


def _settings(**flags: Any) -> Settings:
    """Settings from the flags given (None = not given) over env, .env and defaults."""
    from ..settings import load_settings

    chosen = [name for name in ("stride", "frames", "every") if flags.get(name) is not None]
    if len(chosen) > 1:
        raise click.UsageError(f"--{chosen[0]} and --{chosen[1]} both choose frames; give one")
    if chosen and flags.get("sample") is None:
        flags["sample"] = {"stride": "stride", "frames": "count", "every": "interval"}[chosen[0]]
    return load_settings(**flags)


def _stdin_text() -> TextIO:
    """stdin as text that keeps file names which are not valid UTF-8 (surrogateescape)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        return sys.stdin
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="surrogateescape")


# --- the batch driver ------------------------------------------------------------------------


class Run:
    """One command over many inputs: expansion, naming, concurrency, JSONL, exit code."""

    def __init__(
        self,
        args: tuple[str, ...],
        settings: Settings,
        *,
        recursive: bool,
        as_json: bool,
        skip_existing: bool = False,
        command: str = "",
    ) -> None:
        from ..runs.inputs import assign_stems, check_mix, expand_inputs

        self.ui = _ui()
        self.settings = settings
        self.as_json = as_json
        self.skip_existing = skip_existing
        self.command = command
        warnings: list[str] = []
        stdin = _stdin_text() if "-" in args else None
        self.inputs: list[Input] = expand_inputs(
            args, recursive=recursive, stdin=stdin, warnings=warnings
        )
        for w in warnings:
            self.ui.warn(w)
        self.stems = assign_stems(self.inputs)
        self.session: Session | None = None
        # Videos run one by one; images (files and URLs) go together in one request.
        groups = check_mix(
            [inp.kind for inp in self.inputs],
            command=command,
            names=[inp.source for inp in self.inputs],
        )
        self.units: dict[str, list[Input]] = {}
        for group in groups:
            members = [self.inputs[i] for i in group.indexes]
            label = (
                " + ".join(m.source for m in members)
                if group.kind == "images"
                else members[0].source
            )
            self.units[label] = members

    @property
    def single(self) -> bool:
        return len(self.inputs) == 1

    def open_session(self) -> Session:
        from ..pipeline import open_session

        self.session = open_session(self.settings, report=self.ui.info)
        if self.session.cache is not None:
            for w in self.session.cache.warnings:
                self.ui.warn(w)
        return self.session

    def path_for(self, inp: Input, suffix: str) -> Path:
        from ..runs.inputs import output_path

        return output_path(self.settings.out_dir, self.stems[inp], suffix)

    def skip(self, inp: Input) -> bool:
        from ..pipeline import manifest_complete, manifest_suffix

        return self.skip_existing and manifest_complete(
            self.path_for(inp, manifest_suffix(self.command)), command=self.command
        )

    def go(
        self,
        work: Callable[[Input], Outcome],
        images: Callable[[list[Input]], Outcome] | None = None,
    ) -> None:
        """Run `work` per video (and `images` once for all images); print products or JSONL;
        exit with the documented code."""
        from ..runs.driver import Outcome, exit_code, run_batch, summary
        from ..server.client import redact

        secrets = [self.session.key] if self.session else []

        def guarded(label: str) -> Outcome:
            members = self.units[label]
            if len(members) > 1 or members[0].kind != "video":
                if images is None:
                    raise InputError(
                        f"{label}: `{self.command}` takes videos",
                        hint="images can only be described: vnarrate describe",
                    )
                return images(members).model_copy(update={"input": label})
            inp = members[0]
            if self.skip(inp):
                return Outcome(input=label, status="skipped", record={"reason": "complete"})
            return work(inp)

        def emit(outcome: Outcome) -> None:
            if outcome.status == "error":
                msg = outcome.error or ""  # input errors already start with the path
                named = msg.startswith(f"{outcome.input}:")
                self.ui.error(msg if named else f"{outcome.input}: {msg}")
            elif outcome.status == "skipped":
                self.ui.info(f"{outcome.input}: skipped (already complete)")
            if self.as_json:
                click.echo(json.dumps(outcome.as_record(), ensure_ascii=False))
            elif outcome.text:
                click.echo(outcome.text.rstrip("\n"))

        outcomes = run_batch(
            list(self.units),
            guarded,
            jobs=self.settings.jobs,
            emit=emit,
            redact=lambda text: redact(text, *secrets),
        )
        if len(self.units) > 1:
            self.ui.say(summary(outcomes))
        code = exit_code(outcomes)
        if code:
            raise SystemExit(code)


def _start(
    command: str,
    inputs: tuple[str, ...],
    as_json: bool,
    recursive: bool,
    skip_existing: bool,
    **flags: Any,
) -> tuple[Settings, Run]:
    """Settings and the batch driver for one of the paid commands."""
    settings = _settings(**flags)
    run = Run(
        inputs,
        settings,
        recursive=recursive,
        as_json=as_json,
        skip_existing=skip_existing,
        command=command,
    )
    return settings, run


def _plan_outcome(inp: Input, settings: Settings, task: str, as_json: bool) -> Outcome:
    from ..pipeline import prepared, render_plan
    from ..runs.driver import Outcome

    plan = prepared(inp.source, settings, task)[2]
    record = plan.model_dump(mode="json")
    return Outcome(input=inp.source, record={"plan": record}, text=render_plan(plan))


def _speech_plan_outcome(inp: Input, script_file: Path, settings: Settings) -> Outcome:
    from ..pipeline import render_plan, speech_plan
    from ..runs.driver import Outcome

    plan = speech_plan(inp.source, script_file, settings)
    return Outcome(
        input=inp.source, record={"plan": plan.model_dump(mode="json")}, text=render_plan(plan)
    )


# --- commands --------------------------------------------------------------------------------


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, "--version", prog_name="vnarrate")
@click.option("-v", "--verbose", is_flag=True, help="Say what happens; tracebacks for bugs.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the product and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Turn videos into words and voice with vision language models.

    \b
    vnarrate describe video.mp4               title + description
    vnarrate voiceover video.mp4 --voice onyx narration mp3 timed to the video
    vnarrate script video.mp4                 the timed script only (edit, then --script)
    vnarrate plan video.mp4                   frames, requests, tokens, cost (offline)
    vnarrate frames video.mp4 -o DIR          the frames the model would see (offline)

    Inputs can be files, folders (--recursive) or - to read paths from stdin.
    """
    ctx.obj = UI(verbose=verbose, quiet=quiet)


@cli.command(epilog=EXIT_CODES_HELP)
@ui_options
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o", "--output", "output_path", type=click.Path(path_type=Path), help="Write to FILE."
)
@click.option("--format", "fmt", type=click.Choice(["markdown", "text", "json"]), help="[markdown]")
@click.option("--prompt", help="Your own question about the video, instead of the default task.")
@click.option(
    "--preset",
    type=click.Choice(["general", "youtube", "accessibility", "technical"]),
    help="System prompt style [general].",
)
@batch_options
@connection_options
@model_options
@sampling_options
def describe(
    inputs: tuple[str, ...],
    output_path: Path | None,
    fmt: str | None,
    as_json: bool,
    recursive: bool,
    skip_existing: bool,
    dry_run: bool,
    **flags: Any,
) -> None:
    """Write a title and a description of each VIDEO."""
    from ..pipeline import describe as run_describe
    from ..pipeline import (
        description_record,
        manifest_suffix,
        record_output,
        render_description,
        write_manifest,
    )
    from ..runs import output
    from ..runs.driver import Outcome

    settings, run = _start(
        "describe",
        inputs,
        as_json,
        recursive,
        skip_existing,
        format="json" if as_json else fmt,
        **flags,
    )
    if output_path is not None and not run.single:
        raise click.UsageError("-o/--output takes one input; use --out-dir for several")
    if dry_run:
        run.go(lambda inp: _plan_outcome(inp, settings, "describe", as_json))
        return
    if output_path is not None:
        output.check_writable(output_path, force=settings.force)
    session = run.open_session()
    suffix = {"markdown": ".md", "text": ".txt", "json": ".json"}[settings.format]

    def work(inp: Input) -> Outcome:
        target = output_path
        if target is None and settings.out_dir is not None:
            target = run.path_for(inp, f".description{suffix}")
        if target is not None:
            output.check_writable(target, force=settings.force)
        result = run_describe(inp.source, session, progress=run.ui.progress(f"{inp.source}"))
        return finish(result, target, inp)

    def images(members: list[Input]) -> Outcome:
        from ..pipeline import describe_images

        return finish(describe_images([m.source for m in members], session), output_path, None)

    def finish(result: DescribeResult, target: Path | None, inp: Input | None) -> Outcome:
        from ..server.prices import format_usd

        u = result.usage
        run.ui.info(
            f"{result.input}: {result.frames_sent} images, {result.requests} request(s), "
            f"{u.prompt_tokens} input + {u.completion_tokens} output tokens, "
            f"cost {format_usd(result.cost_usd)}"
        )
        text = render_description(result, settings.format)
        record = description_record(result)
        del record["input"], record["status"]  # Outcome adds both
        if target is None:
            return Outcome(input=result.input, record=record, text=None if as_json else text)
        written = output.write_text(target, text, force=settings.force)
        record["outputs"] = [str(written)]
        if settings.out_dir is not None and inp is not None:
            write_manifest(
                run.path_for(inp, manifest_suffix("describe")),
                settings,
                {
                    "input": inp.source,
                    "outputs": [record_output("description", written).model_dump()],
                    "usage": u.model_dump(),
                },
                command="describe",
            )
        run.ui.info(f"{result.input}: wrote {written}")
        return Outcome(input=result.input, record=record)

    run.go(work, images)


@cli.command(epilog=EXIT_CODES_HELP)
@ui_options
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="Script file [VIDEO.script.json]; - prints it.",
)
@click.option("--instructions", help="Extra guidance for the script writer.")
@batch_options
@script_options
@connection_options
@model_options
@sampling_options
def script(
    inputs: tuple[str, ...],
    output_path: Path | None,
    as_json: bool,
    recursive: bool,
    skip_existing: bool,
    dry_run: bool,
    **flags: Any,
) -> None:
    """Write a timed narration script (JSON) for each VIDEO, to edit or to speak later."""
    from ..narration.script import dump_script
    from ..pipeline import make_script, manifest_suffix, record_output, write_manifest
    from ..runs import output
    from ..runs.driver import Outcome

    settings, run = _start("script", inputs, as_json, recursive, skip_existing, **flags)
    if output_path is not None and not run.single:
        raise click.UsageError("-o/--output takes one input; use --out-dir for several")
    if dry_run:
        run.go(lambda inp: _plan_outcome(inp, settings, "script", as_json))
        return
    session = run.open_session()

    def work(inp: Input) -> Outcome:
        to_stdout = output_path is not None and str(output_path) == "-"
        target = output_path or run.path_for(inp, ".script.json")
        if not to_stdout:
            output.check_writable(target, force=settings.force)
        result = make_script(inp.source, session, progress=run.ui.progress(inp.source))
        for note in result.notes:
            run.ui.warn(f"{inp.source}: {note}")
        text = dump_script(result.script)
        record: dict[str, Any] = {
            "segments": len(result.script.segments),
            "usage": result.usage.model_dump(),
            "cost_usd": result.cost_usd,
            "notes": result.notes,
        }
        if to_stdout:
            return Outcome(input=inp.source, record=record, text=None if as_json else text)
        written = output.write_text(target, text, force=settings.force)
        record["outputs"] = [str(written)]
        write_manifest(
            run.path_for(inp, manifest_suffix("script"))
            if output_path is None
            else target.with_name(target.name + ".vnarrate.json"),
            settings,
            {
                "input": inp.source,
                "outputs": [record_output("script", written).model_dump()],
                "usage": result.usage.model_dump(),
                "notes": result.notes,
            },
            command="script",
        )
        run.ui.say(f"{inp.source}: wrote {written} ({len(result.script.segments)} segments)")
        return Outcome(input=inp.source, record=record)

    run.go(work)


@cli.command(epilog=EXIT_CODES_HELP)
@ui_options
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Narration audio: .mp3, .wav or .m4a [VIDEO.narration.mp3].",
)
@click.option(
    "--script",
    "script_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Speak this (edited) script.json; no vision call.",
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
    help="With --mux: original audio level under speech, dB [-12].",
)
@click.option("--untimed", is_flag=True, help="One continuous narration (the notebook's way).")
@click.option(
    "--no-subtitles", "subtitles", flag_value=False, default=None, help="No .srt and .vtt."
)
@click.option("--tts-model", help="Speech model [gpt-4o-mini-tts].")
@click.option("--voice", help="Voice [alloy]: e.g. onyx, nova, coral, sage, echo.")
@click.option("--speed", type=click.FloatRange(0.25, 4.0), help="Speaking speed [1.0].")
@click.option("--instructions", "tts_instructions", help="Tone of voice (gpt-4o-mini-tts).")
@click.option("--script-instructions", "instructions", help="Extra guidance for the writer.")
@click.option(
    "--tts-backend",
    type=click.Choice(["auto", "speech", "realtime"]),
    help="Speech via /audio/speech or the Realtime API [auto].",
)
@click.option("--realtime-model", help="Realtime speech model [gpt-realtime-2.1-mini].")
@click.option(
    "--wer-threshold",
    type=click.FloatRange(0, 1),
    help="Realtime: word error rate above which a take is redone once [0.15].",
)
@click.option(
    "--strict", is_flag=True, default=None, help="Realtime: fail if speech strays from the text."
)
@click.option(
    "--max-speed", type=click.FloatRange(1, 4), help="Re-speak overlong lines up to this [1.25]."
)
@click.option(
    "--max-stretch", type=click.FloatRange(1, 2), help="Then time-stretch up to this [1.25]."
)
@click.option("--tts-base-url", help="A separate OpenAI-compatible server for speech.")
@click.option("--tts-api-key", help="Key for --tts-base-url [env: VNARRATE_TTS_API_KEY].")
@batch_options
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
    recursive: bool,
    skip_existing: bool,
    dry_run: bool,
    **flags: Any,
) -> None:
    """Narrate each VIDEO: script -> speech -> audio timed to the video, with subtitles."""
    from ..pipeline import VoiceoverPaths, write_manifest
    from ..pipeline import voiceover as run_voiceover
    from ..runs.driver import Outcome

    settings, run = _start("voiceover", inputs, as_json, recursive, skip_existing, **flags)
    if not run.single and (output_path or mux or script_file):
        raise click.UsageError("-o, --mux and --script take one input; use --out-dir for several")
    if replace_audio and mux is None:
        raise click.UsageError("--replace-audio goes with --mux")
    if dry_run and script_file is not None:
        run.go(lambda inp: _speech_plan_outcome(inp, script_file, settings))
        return
    if dry_run:
        run.go(lambda inp: _plan_outcome(inp, settings, "voiceover", as_json))
        return
    session = run.open_session()

    def work(inp: Input) -> Outcome:
        paths = VoiceoverPaths(
            run.stems[inp],
            settings.out_dir,
            audio=output_path,
            mux=mux,
            subtitles=settings.subtitles,
        )
        result = run_voiceover(
            inp.source,
            session,
            paths,
            script_file=script_file,
            untimed=untimed,
            replace_audio=replace_audio,
            progress=run.ui.progress(inp.source),
        )
        for note in result.notes:
            run.ui.warn(f"{inp.source}: {note}")
        outputs = [o.path for o in result.outputs]
        write_manifest(
            paths.manifest,
            settings,
            {
                "input": inp.source,
                "outputs": [o.model_dump() for o in result.outputs],
                "usage": result.usage.model_dump(),
                "speech_characters": result.speech_characters,
                "speech_backend": result.speech_backend,
                "cost_usd": result.cost_usd,
                "duration_s": result.duration_s,
                "audio_s": result.audio_s,
                "placements": [p.model_dump() for p in result.placements],
                "notes": result.notes,
            },
            command="voiceover",
        )
        run.ui.say(f"{inp.source}: wrote {', '.join(outputs)}")
        return Outcome(
            input=inp.source,
            record={
                "outputs": [*outputs, str(paths.manifest)],
                "usage": result.usage.model_dump(),
                "speech_characters": result.speech_characters,
                "duration_s": round(result.duration_s, 3),
                "audio_s": round(result.audio_s, 3),
                "speech_backend": result.speech_backend,
                "cost_usd": result.cost_usd,
                "notes": result.notes,
            },
        )

    run.go(work)


@cli.command(epilog=EXIT_CODES_HELP)
@ui_options
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--task",
    type=click.Choice(["describe", "script", "voiceover"]),
    default="describe",
    show_default=True,
    help="What the plan is for.",
)
@click.option("--tts-model", help="Speech model, for voiceover plans [gpt-4o-mini-tts].")
@click.option("--recursive", "-r", is_flag=True, help="Descend into folders.")
@click.option("--json", "as_json", is_flag=True, help="One JSON plan per input (JSONL).")
@click.option("--jobs", type=click.IntRange(1, 64), help="Inputs at once [4].")
@script_options
@connection_options
@model_options
@sampling_options
def plan(
    inputs: tuple[str, ...], task: str, recursive: bool, as_json: bool, dry_run: bool, **flags: Any
) -> None:
    """Offline: the frames, requests, tokens and dollars a run would use. No key needed."""
    settings = _settings(**flags)
    run = Run(inputs, settings, recursive=recursive, as_json=as_json, command="plan")
    run.go(lambda inp: _plan_outcome(inp, settings, task, as_json))


@cli.command(epilog=EXIT_CODES_HELP)
@ui_options
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the JPEGs, frames.json and contact_sheet.jpg [VIDEO.frames/].",
)
@click.option("--recursive", "-r", is_flag=True, help="Descend into folders.")
@click.option("--force", is_flag=True, default=None, help="Overwrite existing files.")
@click.option("--jobs", type=click.IntRange(1, 64), help="Inputs at once [4].")
@sampling_options
def frames(inputs: tuple[str, ...], out_dir: Path | None, recursive: bool, **flags: Any) -> None:
    """Save the frames the model would see, with a contact sheet. Offline: no key needed."""
    from ..pipeline import write_frames
    from ..runs.driver import Outcome
    from ..runs.inputs import output_path

    settings = _settings(**flags)
    run = Run(inputs, settings, recursive=recursive, as_json=False, command="frames")

    def work(inp: Input) -> Outcome:
        stem = run.stems[inp]
        if out_dir is None:
            folder = output_path(None, stem, ".frames")
        elif run.single:
            folder = out_dir
        else:
            folder = output_path(out_dir, stem, ".frames")
        written = write_frames(inp.source, folder, settings, progress=run.ui.progress(inp.source))
        n = sum(1 for p in written if p.name.startswith("frame_"))
        run.ui.say(f"{inp.source}: wrote {n} frames, frames.json and contact_sheet.jpg to {folder}")
        return Outcome(input=inp.source, record={"outputs": [str(folder)]})

    run.go(work)


@cli.command(epilog=EXIT_CODES_HELP)
@ui_options
@connection_options
def models(**flags: Any) -> None:
    """Check the server: is it reachable, is the key accepted, which models does it offer?"""
    from ..server.client import make_client
    from ..server.providers import check_server

    settings = _settings(**flags)
    key = settings.require_key()
    client = make_client(
        api_key=key, base_url=settings.base_url, timeout=settings.timeout, max_retries=0
    )
    report = check_server(client, model=settings.model, provider=settings.resolved_provider())
    click.echo("\n".join(report.lines()))
    if not report.ok:
        raise SystemExit(5)


@cli.group()
def cache() -> None:
    """The response cache: identical requests are answered from disk, for free."""


@cache.command("info")
@ui_options
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False))
def cache_info(cache_dir: Path | None) -> None:
    """Where the cache is and how big."""
    from ..pipeline import open_cache

    info = open_cache(_settings(cache_dir=cache_dir)).info()
    click.echo(f"{info.path}\n{info.entries} entries, {info.bytes / 1e6:.1f} MB")


@cache.command("clear")
@ui_options
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False))
def cache_clear(cache_dir: Path | None) -> None:
    """Delete every cached response."""
    from ..pipeline import open_cache

    store = open_cache(_settings(cache_dir=cache_dir))
    removed = store.clear()
    _ui().say(f"removed {removed} entries from {store.root}")


# --- entry point -----------------------------------------------------------------------------


def _exit_now(code: int) -> None:
    """Exit promptly on Ctrl-C: worker threads still inside a request would otherwise be waited
    for. Outputs are written atomically, so nothing half-written is left under its real name."""
    if threading.active_count() > 1:
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors and the documented exit codes, never a traceback
    for an expected failure."""
    from ..server.client import redact

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args)
    try:
        cli.main(args=args, prog_name="vnarrate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("vnarrate: interrupted", err=True)
        _exit_now(130)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"vnarrate: error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except VnarrateError as exc:
        click.echo(f"vnarrate: error: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("vnarrate: interrupted", err=True)
        _exit_now(130)
    except Exception as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(
            redact(
                f"vnarrate: unexpected error: {type(exc).__name__}: {exc} "
                "(run with --verbose for details)"
            ),
            err=True,
        )
        sys.exit(1)
