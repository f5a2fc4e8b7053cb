"""Pipeline: the flows for ONE input, top to bottom; the only module that knows the stage order.

Takes a path (or a script) and the session's stage options; gives the product in memory: a Plan
(`prepare`, offline), a DescribeResult, a ScriptResult or a Voiceover. It writes no files and
never sees Settings (session.py turned them into options); the runs layer writes what it returns.

    prepare      frames -> (pack) -> (where people speak) -> plan   plan, --dry-run and every run
    listen/hear  where people speak (offline) -> what they say (transcription)   Soundtrack
    describe     prepare -> hear -> prompts -> chat per chunk -> merge   DescribeResult
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
    Clip,
    DescribeResult,
    Description,
    Frame,
    FrameSet,
    Plan,
    Script,
    ScriptResult,
    Soundtrack,
    Task,
    Usage,
    Voiceover,
    VoiceoverResult,
)
from .narration.script import over_budget, repair, suggest_slots, word_budget
from .narration.speech import Synthesis, faithfulness_note, synthesize_all, synthesize_segment
from .narration.timeline import fit_timeline, timing_notes, untimed_placements, untimed_track
from .server.prices import batch_price, usage_cost
from .session import Session, StageOptions
from .soundtrack import speech_in
from .soundtrack.transcribe import plan_transcription
from .vision.ask import describe_chunks, script_chunks, shorten
from .vision.context import context_for
from .vision.pack import pack_frames
from .vision.plan import check_budget, plan_frameset, plan_speech, speech_price, thin_frames_note
from .vision.prompts import describe_images_messages, image_input_part, listening_tokens

Report = Callable[[str], None]
Progress = Callable[[int, int], None]
# The flows that hear what is said and take the user's context (the script's prompts do not yet).
LISTENING: frozenset[Task] = frozenset({"describe"})


def _quiet(_: str) -> None:
    pass


# --- prepare: frames -> pack -> plan -----------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The frames chosen, what the requests will carry (sheets on one-image servers), the plan."""

    chosen: FrameSet
    sent: FrameSet
    plan: Plan
    soundtrack: Soundtrack | None = None  # where people speak (not yet what they say)
    context: str | None = None  # what the user knows about the video

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
    warn: Report = _quiet,
    progress: Progress | None = None,
    detect: bool | None = None,
) -> Prepared:
    """frames -> (pack) -> (where people speak) -> plan. `vnarrate plan`, `--dry-run` and the
    real runs all go through here, so an estimate is for exactly what a run sends, transcription
    and the transcript's tokens included. Speech is detected (offline) for the flows that will
    transcribe, or when `detect` says so."""
    if not Path(path).exists():
        raise InputError(f"{path}: no such file")
    chosen = sample_frames(Path(path), options.sampling, progress=progress)
    thin = thin_frames_note(chosen.frames)
    if thin:
        warn(f"{path}: {thin}")
    sent = chosen
    sheets = pack_frames(chosen.frames, options.pack)
    if sheets is not None:
        report(f"{path}: packed {len(chosen.frames)} frames into {len(sheets)} sheet(s)")
        sent = chosen.model_copy(update={"frames": sheets})
    hears = task in LISTENING and options.transcription.mode != "off"
    heard = listen(path, options, warn=warn) if (hears if detect is None else detect) else None
    context, notes = context_for(path, options.context) if task in LISTENING else (None, [])
    for note in notes:
        warn(f"{path}: {note}")
    speech = heard.speech if heard is not None and hears else None
    extra = listening_tokens(speech, chosen.video.duration_s, context)
    plan = plan_frameset(sent, options.plan, task, heard_tokens=extra)
    if heard is not None:
        stt = options.transcription if hears else None
        plan = plan_transcription(plan, heard.speech, stt, options.plan.prices)
    return Prepared(chosen, sent, plan, heard, context)


def speech_plan(path: str, script: Script, options: StageOptions) -> Plan:
    """`voiceover --script FILE --dry-run`: no vision request, only the script's speech."""
    duration = probe(path).duration_s
    script, notes = repair(script, duration)
    return plan_speech(path, script, duration, options.plan, notes=notes)


def _priced(options: StageOptions, usage: Usage) -> float | None:
    p = options.plan
    return batch_price(usage_cost(p.model, usage, p.prices, free=p.free), p.batch)


# --- listen: where people speak in the soundtrack -----------------------------------------------


def listen(
    path: str, options: StageOptions, *, warn: Report = _quiet, session: Session | None = None
) -> Soundtrack | None:
    """Where people speak in the video's own audio (offline) and, given a session, what they
    say; None without an audio track, or when the track cannot be read (a warning: the run goes
    on without the soundtrack)."""
    heard = speech_in(path, options.vad, warn=warn)
    return heard if session is None else session.hear(path, heard)


# --- describe ----------------------------------------------------------------------------------


def describe(path: str, session: Session, *, progress: Progress | None = None) -> DescribeResult:
    """frames -> plan -> prompts -> chat (per chunk, then a merge): a title and description."""
    o, report = session.options, session.report
    prep = prepare(path, o, "describe", report=report, warn=session.warn, progress=progress)
    check_budget(prep.plan, o.max_cost)
    heard = session.hear(path, prep.soundtrack)
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
        soundtrack=heard.lines if heard is not None else (),
        user_context=prep.context,
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
        soundtrack=heard,
        cost_usd=_sum(_priced(o, usage), heard.transcription_cost_usd if heard else 0.0),
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
    """frames -> plan -> prompts -> chat (per chunk) -> repair -> (shorten once): a script.

    `task` is what the budget check prices: "voiceover" adds the speech to the estimate."""
    o, report = session.options, session.report
    prep = prepare(path, o, task, report=report, warn=session.warn, progress=progress)
    check_budget(prep.plan, o.max_cost)
    duration = prep.chosen.video.duration_s
    wps = o.plan.words_per_second
    cuts = suggest_slots(duration, target_s=o.plan.segment_seconds, cuts_s=prep.sent.shot_starts_s)
    slots = [(a, b, word_budget(a, b, wps)) for a, b in cuts]
    raw, usage = script_chunks(
        prep.chunks(),
        duration_s=duration,
        slots=slots,
        words_per_second=wps,
        prompts=o.prompts,
        ask=session.chat,
        report=lambda msg: report(f"{path}: {msg} with {o.chat.model}"),
        jobs=o.jobs,
    )
    script, notes = repair(raw, duration)
    if not script.segments:
        raise ApiError("the model wrote no usable narration segments", hint="try again")
    long = over_budget(script, wps)
    if long:
        report(f"{path}: {len(long)} segment(s) over their word budget; asking to shorten them")
        script, more = shorten(script, long, wps, session.chat)
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
        model=o.chat.model,
        usage=usage,
        requests=usage.requests,
        duration_s=duration,
        frames_sent=len(prep.chosen.frames),
        notes=notes,
        over_budget=still,
        cost_usd=_priced(o, usage),
    )


# --- voiceover ---------------------------------------------------------------------------------


def voiceover(
    path: str,
    session: Session,
    *,
    script: Script | None = None,
    untimed: bool = False,
    progress: Progress | None = None,
) -> Voiceover:
    """script (written now, or the given one) -> speech per segment -> timeline, in memory."""
    if script is not None:
        duration = probe(path).duration_s
        script, notes = repair(script, duration)
        if not script.segments:
            raise InputError(f"{path}: the script has no segments inside the video")
        # --max-cost holds for speech too (and refuses a price that cannot be checked).
        check_budget(
            plan_speech(path, script, duration, session.options.plan, notes=[]),
            session.options.max_cost,
        )
        usage = Usage()
    else:
        made = write_script(path, session, task="voiceover", progress=progress)
        script, duration, usage, notes = made.script, made.duration_s, made.usage, made.notes
    return narrate(path, script, duration, session, usage=usage, notes=notes, untimed=untimed)


def narrate(
    path: str,
    script: Script,
    duration: float,
    session: Session,
    *,
    usage: Usage,
    notes: list[str],
    untimed: bool = False,
) -> Voiceover:
    """Speak every segment (`--jobs` at a time) and place the speech on the video's timeline."""
    o, report = session.options, session.report
    choice = session.speech()
    report(f"{path}: speech via {choice.reason}, {len(script.segments)} segments, --jobs {o.jobs}")
    # The cache key and the price follow the model that really speaks.
    voice = o.voice.model_copy(update={"model": choice.model})
    texts = [seg.text for seg in script.segments]
    synths = synthesize_all(choice.backend, texts, voice, jobs=o.jobs)
    characters = sum(s.characters for s in synths)  # billed: cache hits count 0
    notes.extend(n for i, s in enumerate(synths) if (n := faithfulness_note(i, s)))
    clips = [_clip(i, texts[i], s, voice.speed) for i, s in enumerate(synths)]

    def resynthesize(i: int, speed: float) -> Clip:
        nonlocal characters
        syn = synthesize_segment(
            choice.backend, texts, i, voice.model_copy(update={"speed": speed})
        )
        characters += syn.characters
        notes.extend(n for n in [faithfulness_note(i, syn)] if n)
        return _clip(i, texts[i], syn, speed)

    if untimed:
        track, placements = untimed_track(clips), untimed_placements(clips)
    else:
        track, placements = fit_timeline(
            script.segments,
            clips,
            duration,
            resynthesize=resynthesize,
            max_speed=o.fit.max_speed,
            max_stretch=o.fit.max_stretch,
        )
        notes.extend(timing_notes(placements, duration))
    seconds = len(track) / TRACK_RATE
    result = VoiceoverResult(
        input=path,
        script=script,
        placements=placements,
        usage=usage,
        speech_characters=characters,
        speech_backend=choice.reason,
        duration_s=duration,
        audio_s=seconds,
        notes=notes,
        cost_usd=_sum(
            _priced(o, usage),
            speech_price(o.plan, voice.model, characters, seconds),
        ),
    )
    return Voiceover(result=result, track=track, sample_rate=TRACK_RATE)


def _clip(i: int, text: str, syn: Synthesis, speed: float) -> Clip:
    return Clip(segment=i, text=text, pcm=syn.pcm, sample_rate=syn.sample_rate, speed=speed)


def _sum(*costs: float | None) -> float | None:
    return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
