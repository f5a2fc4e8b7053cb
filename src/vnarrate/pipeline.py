"""Pipeline: the flows for ONE input, top to bottom; the only module that knows the stage order.

Takes a path (or a script) and the session's stage options; gives the product in memory: a Plan
(`prepare`, offline), a DescribeResult, a ScriptResult or a Voiceover. It writes no files and
never sees Settings (session.py turned them into options); the runs layer writes what it returns.

    prepare      frames -> (pack) -> plan                          plan, --dry-run and every run
    describe     prepare -> prompts -> chat per chunk -> merge      DescribeResult
    write_script prepare -> prompts -> chat per chunk -> repair -> shorten once   ScriptResult
    narrate      script -> speech per segment -> timeline          Voiceover (track + placements)
    voiceover    write_script (or a given script) -> narrate       Voiceover
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ApiError, InputError
from .media.audio import TRACK_RATE
from .media.frames import sample_frames
from .media.images import prepare_image
from .media.probe import probe
from .models import (
    DescribeResult,
    Description,
    Frame,
    FrameSet,
    Plan,
    Script,
    ScriptResult,
    Soundtrack,
    SpokenLine,
    Task,
    Usage,
    Voiceover,
    VoiceoverResult,
)
from .narration.gaps import find_gaps, gap_slots, repair_into_gaps, rooms_for
from .narration.script import over_budget, repair, suggest_slots, word_budget, word_count
from .narration.voicing import fit_summary, speak_script
from .server.prices import speech_cost, usage_cost
from .session import Session, StageOptions
from .soundtrack import SoundtrackError, detect_speech
from .vision.ask import describe_chunks, script_chunks, shorten
from .vision.pack import pack_frames
from .vision.plan import check_budget, plan_frameset, plan_speech
from .vision.prompts import describe_images_messages, image_input_part

Report = Callable[[str], None]
Progress = Callable[[int, int], None]


def _quiet(_: str) -> None:
    pass


# --- prepare: frames -> pack -> plan -----------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The frames chosen, what the requests will carry (sheets on one-image servers), the plan."""

    chosen: FrameSet
    sent: FrameSet
    plan: Plan

    def chunks(self) -> list[list[Frame]]:
        """The frames of each planned request, in time order."""
        out = [
            self.sent.frames[r.first_frame : r.last_frame + 1]
            for r in self.plan.requests
            if r.kind == "frames" and r.first_frame is not None and r.last_frame is not None
        ]
        return out or [self.sent.frames]


def prepare(
    path: str,
    options: StageOptions,
    task: Task,
    *,
    report: Report = _quiet,
    progress: Progress | None = None,
) -> Prepared:
    """frames -> (pack) -> plan. `vnarrate plan`, `--dry-run` and the real runs all go through
    here, so an estimate is for exactly what a run sends."""
    if not Path(path).exists():
        raise InputError(f"{path}: no such file")
    chosen = sample_frames(Path(path), options.sampling, progress=progress)
    sent = chosen
    sheets = pack_frames(chosen.frames, options.pack)
    if sheets is not None:
        report(f"{path}: packed {len(chosen.frames)} frames into {len(sheets)} sheet(s)")
        sent = chosen.model_copy(update={"frames": sheets})
    return Prepared(chosen, sent, plan_frameset(sent, options.plan, task))


def speech_plan(path: str, script: Script, options: StageOptions) -> Plan:
    """`voiceover --script FILE --dry-run`: no vision request, only the script's speech."""
    duration = probe(path).duration_s
    script, notes = repair(script, duration)
    return plan_speech(path, script, duration, options.plan, notes=notes)


def _priced(options: StageOptions, usage: Usage) -> float | None:
    return usage_cost(options.plan.model, usage, options.plan.prices, free=options.plan.free)


# --- listen: where people speak in the soundtrack -----------------------------------------------


def listen(path: str, options: StageOptions, *, report: Report = _quiet) -> Soundtrack | None:
    """Where people speak in the video's own audio (offline); None without an audio track, or
    when the track cannot be read (a warning: the run goes on without the soundtrack)."""
    try:
        speech = detect_speech(path, options.vad)
    except SoundtrackError as exc:
        report(f"warning: {exc}; continuing without the soundtrack")
        return None
    if speech is None:
        return None
    lines = [SpokenLine(start_s=a, end_s=b) for a, b in speech.regions]
    return Soundtrack(speech=speech, lines=lines, warnings=speech.warnings)


# --- describe ----------------------------------------------------------------------------------


def describe(path: str, session: Session, *, progress: Progress | None = None) -> DescribeResult:
    """frames -> plan -> prompts -> chat (per chunk, then a merge): a title and description."""
    o, report = session.options, session.report
    prep = prepare(path, o, "describe", report=report, progress=progress)
    check_budget(prep.plan, o.max_cost)
    video = prep.chosen.video
    report(
        f"{path}: {len(prep.chosen.frames)} frames from {video.duration_s:.1f} s "
        f"({video.width}x{video.height}), asking {o.chat.model}"
    )
    answer, usage = describe_chunks(
        prep.chunks(),
        duration_s=video.duration_s,
        prompts=o.prompts,
        ask=session.chat,
        report=lambda msg: report(f"{path}: {msg}"),
        jobs=o.jobs,
    )
    return DescribeResult(
        input=path,
        title=answer.title,
        description=answer.description,
        model=o.chat.model,
        usage=usage,
        requests=usage.requests,
        frames_sent=len(prep.chosen.frames),
        frame_times_s=[round(f.time_s, 3) for f in prep.chosen.frames],
        cost_usd=_priced(o, usage),
    )


def describe_images(sources: Sequence[str], session: Session) -> DescribeResult:
    """Several images (files or URLs) in ONE request, so a question can compare them."""
    o = session.options
    images = [
        prepare_image(
            src,
            url_images_ok=o.images.url_images_ok,
            detail=o.images.detail,
            jpeg_quality=o.images.jpeg_quality,
            image_urls=o.images.image_urls,
        )
        for src in sources
    ]
    messages = describe_images_messages(
        [image_input_part(img, detail=o.prompts.detail) for img in images],
        names=[
            src if img.is_remote else Path(src).name
            for src, img in zip(sources, images, strict=True)
        ],
        preset=o.prompts.preset,
        prompt=o.prompts.prompt,
        language=o.prompts.language,
    )
    session.report(f"{len(images)} image(s): asking {o.chat.model}")
    answer, usage = session.chat(Description, messages)
    return DescribeResult(
        input=" ".join(sources),
        title=answer.title.strip(),
        description=answer.description.strip(),
        model=o.chat.model,
        usage=usage,
        requests=usage.requests,
        frames_sent=len(images),
        cost_usd=_priced(o, usage),
    )


# --- script ------------------------------------------------------------------------------------


def write_script(
    path: str, session: Session, *, task: Task = "script", progress: Progress | None = None
) -> ScriptResult:
    """frames -> plan -> where people speak -> prompts -> chat (per chunk) -> repair into the
    gaps -> (shorten once): a script.

    `task` is what the budget check prices: "voiceover" adds the speech to the estimate (and
    measures the voice's pace, once, for the budgets)."""
    o, report = session.options, session.report
    prep = prepare(path, o, task, report=report, progress=progress)
    check_budget(prep.plan, o.max_cost)
    duration = prep.chosen.video.duration_s
    heard = listen(path, o, report=report)
    gaps = find_gaps(heard, duration, o.gaps)
    pace = session.pace(measure=task == "voiceover")
    wps = pace.words_per_second
    report(f"{path}: word budgets at {wps:g} words/s ({pace.source})")
    cuts = prep.sent.shot_starts_s
    if gaps is None:
        spans = suggest_slots(duration, target_s=o.plan.segment_seconds, cuts_s=cuts)
        slots = [(a, b, word_budget(a, b, wps)) for a, b in spans]
    else:
        slots = gap_slots(gaps, target_s=o.plan.segment_seconds, cuts_s=cuts, words_per_second=wps)
        report(f"{path}: speech in {len(gaps.regions)} stretch(es); {len(slots)} slot(s) between")
    raw, usage = script_chunks(
        prep.chunks(),
        duration_s=duration,
        slots=slots,
        words_per_second=wps,
        prompts=o.prompts,
        ask=session.chat,
        report=lambda msg: report(f"{path}: {msg} with {o.chat.model}"),
        jobs=o.jobs,
        dialogue=gaps.lines if gaps is not None else None,
    )
    script, notes = repair(raw, duration) if gaps is None else repair_into_gaps(raw, duration, gaps)
    if gaps is not None and not gaps.rooms:
        notes.append(
            f"people speak all through: no room of {o.gaps.min_gap_s:g} s or more between "
            "speech, so nothing is narrated (--over-speech duck narrates over it)"
        )
    elif not script.segments:
        raise ApiError("the model wrote no usable narration segments", hint="try again")
    script, shortened, more = _shorten(path, script, wps, session, notes)
    usage = usage + more
    return ScriptResult(
        input=path,
        script=script,
        model=o.chat.model,
        usage=usage,
        requests=usage.requests,
        duration_s=duration,
        frames_sent=len(prep.chosen.frames),
        notes=notes,
        over_budget=over_budget(script, wps),
        cost_usd=_priced(o, usage),
        shortened=shortened,
        words_per_second=wps,
        pace_source=pace.source,
        speech_characters=pace.characters,
        soundtrack=heard,
        frames=prep.chosen.frames,
    )


def _shorten(
    path: str, script: Script, wps: float, session: Session, notes: list[str]
) -> tuple[Script, int, Usage]:
    """Lines over their word budget rewritten shorter in ONE request, before any speech is paid
    for; how many changed, and what it cost."""
    long = over_budget(script, wps)
    if not long:
        return script, 0, Usage()
    session.report(f"{path}: {len(long)} line(s) over their word budget; asking to shorten them")
    shorter, usage = shorten(script, long, wps, session.chat)
    pairs = zip(script.segments, shorter.segments, strict=True)
    changed = sum(word_count(b.text) < word_count(a.text) for a, b in pairs)
    notes.append(
        f"shortened {changed} segment(s) to fit their slots"
        if changed
        else f"asked to shorten {len(long)} segment(s); none came back shorter"
    )
    still = over_budget(shorter, wps)
    if still:
        notes.append(
            f"{len(still)} segment(s) still over budget: their speech will be sped up, cut or moved"
        )
    return shorter, changed, usage


# --- voiceover ---------------------------------------------------------------------------------


def voiceover(
    path: str,
    session: Session,
    *,
    script: Script | None = None,
    untimed: bool = False,
    progress: Progress | None = None,
) -> Voiceover:
    """script (written now, or the given one, repaired into the gaps between speech) -> speech
    per segment -> timeline, in memory."""
    if script is None:
        made = write_script(path, session, task="voiceover", progress=progress)
        return narrate(path, made, session, untimed=untimed)
    o = session.options
    duration = probe(path).duration_s
    heard = listen(path, o, report=session.report)
    gaps = find_gaps(heard, duration, o.gaps)
    script, notes = (
        repair(script, duration) if gaps is None else repair_into_gaps(script, duration, gaps)
    )
    if not script.segments and gaps is None:
        raise InputError(f"{path}: the script has no segments inside the video")
    given = ScriptResult(
        input=path,
        script=script,
        model="",
        requests=0,
        duration_s=duration,
        frames_sent=0,
        notes=notes,
        soundtrack=heard,
    )
    return narrate(path, given, session, untimed=untimed)


def narrate(path: str, made: ScriptResult, session: Session, *, untimed: bool = False) -> Voiceover:
    """Speak every segment (`--jobs` at a time) and place the speech on the video's timeline:
    in the gaps between what people say, when they speak."""
    o, report = session.options, session.report
    script, duration = made.script, made.duration_s
    choice = session.speech()
    report(f"{path}: speech via {choice.reason}, {len(script.segments)} segments, --jobs {o.jobs}")
    # The cache key and the price follow the model that really speaks.
    voice = o.voice.model_copy(update={"model": choice.model})
    gaps = find_gaps(made.soundtrack, duration, o.gaps)
    spoken = speak_script(
        choice.backend,
        script,
        voice,
        duration,
        rooms=None if gaps is None else rooms_for(script, gaps),
        fit=o.fit,
        jobs=o.jobs,
        untimed=untimed,
    )
    counts = fit_summary(spoken, script, base_speed=voice.speed, gaps=gaps)
    seconds = len(spoken.track) / TRACK_RATE
    characters = spoken.characters + made.speech_characters
    result = VoiceoverResult(
        input=path,
        script=script,
        placements=spoken.placements,
        usage=made.usage,
        speech_characters=characters,
        speech_backend=choice.reason,
        duration_s=duration,
        audio_s=seconds,
        notes=[*made.notes, *spoken.notes],
        cost_usd=_sum(
            _priced(o, made.usage),
            speech_cost(voice.model, characters, seconds, o.plan.prices) if characters else 0.0,
        ),
        over_speech=o.gaps.over_speech,
        words_per_second=made.words_per_second,
        pace_source=made.pace_source,
        shortened=made.shortened,
        **counts,
    )
    return Voiceover(
        result=result,
        track=spoken.track,
        sample_rate=TRACK_RATE,
        soundtrack=made.soundtrack,
        frames=made.frames,
    )


def _sum(*costs: float | None) -> float | None:
    return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
