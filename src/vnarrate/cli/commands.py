"""The commands: each hands its flags to a job of the runs layer and exits with its code. Options
that are settings come from the Settings fields (options.py); the rest are the job's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..runs.terminal import TerminalReporter
from ..settings import (
    BATCH,
    CONNECTION,
    LISTEN,
    MODEL,
    OUTPUT,
    SAMPLING,
    SCRIPT,
    SPEECH,
    load_settings,
)
from .options import settings_options
from .texts import COMMANDS, EXIT_CODES_HELP

Decorator = Callable[[Any], Any]


def _ui() -> TerminalReporter:
    obj = click.get_current_context().find_object(TerminalReporter)
    return obj if obj is not None else TerminalReporter()


def _set_ui(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and (ui := ctx.find_object(TerminalReporter)) is not None:
        setattr(ui, str(param.name), True)


def _flag(*decls: str, help: str, **kw: Any) -> Decorator:
    return click.option(*decls, is_flag=True, help=help, **kw)


def _all(*decorators: Decorator) -> Decorator:
    def apply(f: Any) -> Any:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


# -v/-q after the command name too: `vnarrate describe x -q`.
_verbosity = _all(
    _flag("-v", "--verbose", expose_value=False, callback=_set_ui, help="Say more."),
    _flag("-q", "--quiet", expose_value=False, callback=_set_ui, help="Only products, errors."),
)
_inputs = _all(click.argument("inputs", nargs=-1, required=True), _verbosity)
_recursive = _flag("--recursive", "-r", help="Descend into folders.")
_batch = _all(
    _recursive,
    _flag("--json", "as_json", help="One JSON result line per input."),
    _flag("--skip-existing", help="Skip inputs whose run manifest says complete."),
    _flag("--dry-run", help="Show the plan (frames, tokens, cost); no calls."),
)


def _output(help: str, **path: Any) -> Decorator:
    return click.option("-o", "--output", type=click.Path(path_type=Path, **path), help=help)


def _path(*decls: str, help: str) -> Decorator:
    return click.option(*decls, type=click.Path(path_type=Path, dir_okay=False), help=help)


def _command(name: str) -> Callable[[Any], click.Command]:
    # Not attached to the group here: group.py looks commands up by name when one is used.
    return click.command(name, help=COMMANDS[name], epilog=EXIT_CODES_HELP)


def _exit(code: int) -> None:
    if code:
        raise SystemExit(code)


def _runs(name: str) -> Any:
    """A name of the runs layer (runs/jobs.py, runs/voiceover.py), loaded when a command runs:
    `vnarrate describe --help` needs the options only, not the flows and every stage behind
    them (0.2 s of imports)."""
    from ..runs import jobs, voiceover

    return getattr(voiceover if name in ("voiceover", "VoiceoverFlags") else jobs, name)


def _run(job: str, flags: dict[str, Any], *extra: Any, **kw: Any) -> None:
    request = _runs("Request").from_flags(flags)
    _exit(_runs(job)(load_settings(**flags), request, _ui(), *extra, **kw))


@_command("describe")
@_inputs
@_output("Write to FILE.", dir_okay=False)
@settings_options("format", "prompt", "preset")
@_batch
@settings_options(*OUTPUT, *BATCH, *CONNECTION, *MODEL, *SAMPLING, *LISTEN)
def describe_command(**flags: Any) -> None:
    _run("describe", flags)


def _schema(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        click.echo(_runs("script_schema")(), nl=False)
        ctx.exit()


@_command("script")
@_flag("--schema", is_eager=True, expose_value=False, callback=_schema,
       help="Print the script.json format (JSON Schema) and exit.")  # fmt: skip
@_inputs
@_output("Script file [VIDEO.script.json]; - prints it.", dir_okay=False, allow_dash=True)
@settings_options("instructions")
@_batch
@settings_options(*OUTPUT, *BATCH, *SCRIPT, *CONNECTION, *MODEL, *SAMPLING, *LISTEN)
def script_command(**flags: Any) -> None:
    _run("script", flags)


@_command("voiceover")
@_inputs
@_output("Narration audio: .mp3, .wav or .m4a [VIDEO.narration.mp3].", dir_okay=False)
@_path("--script", "script_file", help="Speak this (edited) script.json; no vision call.")
@_path("--mux", help="Also write a copy of the video with the narration mixed in.")
@_flag("--replace-audio", help="With --mux: drop the original audio.")
@_flag("--untimed", help="One continuous narration (the notebook's way).")
@_flag("--no-subtitles", "no_subs", hidden=True, help="Same as --subtitles off.")
@settings_options(*SPEECH)
@_batch
@settings_options(*OUTPUT, *BATCH, *SCRIPT, *CONNECTION, *MODEL, *SAMPLING, *LISTEN)
def voiceover_command(script_file: Path | None, mux: Path | None, replace_audio: bool,
                      untimed: bool, no_subs: bool, **flags: Any) -> None:  # fmt: skip
    flags["subtitles"] = "off" if no_subs else flags["subtitles"]  # the switch it used to be
    _run("voiceover", flags, _runs("VoiceoverFlags")(script_file, mux, replace_audio, untimed))


@_command("plan")
@_inputs
@click.option("--task", type=click.Choice(["describe", "script", "voiceover"]),
              default="describe", show_default=True, help="What the plan is for.")  # fmt: skip
@_flag("--json", "as_json", help="One JSON plan per input (JSONL).")
@_flag("--dry-run", hidden=True, help="Accepted for symmetry: a plan makes no calls anyway.")
@_recursive
@settings_options("jobs", "cache", "cache_dir", "batch", *SPEECH, *SCRIPT, *CONNECTION, *MODEL,
                  *SAMPLING, *LISTEN)  # fmt: skip
def plan_command(task: str, **flags: Any) -> None:
    _run("plan", flags, task=task)


@_command("frames")
@_inputs
@_output("Folder for the JPEGs, frames.json and contact_sheet.jpg [VIDEO.frames/].",
         file_okay=False)  # fmt: skip
@_recursive
@settings_options("force", "jobs", *SAMPLING)
def frames_command(**flags: Any) -> None:
    _run("frames", flags)


@_command("models")
@_verbosity
@settings_options(*CONNECTION)
def models_command(**flags: Any) -> None:
    _exit(_runs("models")(load_settings(**flags), _ui()))


@click.group("cache", help=COMMANDS["cache"])
def cache_command() -> None:
    pass


@cache_command.command("info", help="Where the cache is and how big.")
@_verbosity
@settings_options("cache_dir")
def cache_info_command(**flags: Any) -> None:
    _exit(_runs("cache_info")(load_settings(**flags), _ui()))


@cache_command.command("clear", help="Delete every cached response.")
@_verbosity
@settings_options("cache_dir")
def cache_clear_command(**flags: Any) -> None:
    _exit(_runs("cache_clear")(load_settings(**flags), _ui()))


# What group.py looks a command up in, by the name people type.
BY_NAME: dict[str, click.Command] = {
    "describe": describe_command,
    "script": script_command,
    "voiceover": voiceover_command,
    "plan": plan_command,
    "frames": frames_command,
    "models": models_command,
    "cache": cache_command,
}
