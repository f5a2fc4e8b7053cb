"""Pipeline: the flows for ONE input, top to bottom; the only module that knows the stage order.

Takes a path (or a script) and the session's stage options; gives the product in memory: a Plan
(`prepare`, offline), a DescribeResult, a ScriptResult or a Voiceover. It writes no files and
never sees Settings (the session turned them into options); the runs layer writes what it returns.

    prepare      frames -> (pack) -> (where people speak) -> plan   plan, --dry-run and every run
    listen/hear  where people speak (offline) -> what they say (transcription)   Soundtrack
    describe     prepare -> hear -> prompts -> chat per chunk -> merge   DescribeResult
    write_script prepare -> prompts -> chat per chunk -> repair -> shorten once   ScriptResult
    narrate      script -> speech per segment -> timeline          Voiceover (track + placements)
    voiceover    write_script (or a given script: plan_script) -> narrate       Voiceover
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import ApiError, InputError
from .media.audio import TRACK_RATE
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
    Task,
    Usage,
    Voiceover,
    VoiceoverResult,
)
from .narration.gaps import find_gaps, no_room, repair_into_gaps, room_s, rooms_for, script_slots
from .narration.script import over_budget, repair
from .narration.subtitles import dialogue_notes
from .narration.verify import plan_verify
from .narration.voicing import fit_summary, speak_script
from .server.prices import batch_price, total_cost, usage_cost
from .session import Session, StageOptions
from .soundtrack import speech_in
from .soundtrack.transcribe import plan_transcription
from .vision.ask import describe_chunks, images_messages, script_chunks, shorten_long
from .vision.chunks import request_frames
from .vision.context import context_for
from .vision.given import GivenScript, plan_given_script
from .vision.pack import pack_frames
from .vision.plan import check_budget, plan_frameset, speech_price
from .vision.prompts import listening_tokens
from .vision.stream import FrameStream, choose_frames, stopping

Report = Callable[[str], None]
Progress = Callable[[int, int], None]
# The flows that hear what is said and take the user's context.
LISTENING: frozenset[Task] = frozenset({"describe", "script", "voiceover"})


def _quiet(_: str) -> None:
    pass


# --- prepare: frames -> pack -> plan -----------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The frames chosen, what the requests will carry (sheets on one-image servers), the plan;
    for a long video, the frames the plan expects and the stream that decodes them."""

    chosen: FrameSet
    sent: FrameSet
    plan: Plan
    soundtrack: Soundtrack | None = None  # where people speak (not yet what they say)
    context: str | None = None  # what the user knows about the video
    stream: FrameStream | None = None

    def chunks(self) -> list[list[Frame]] | FrameStream:
        """The frames of each planned request, in time order (or as they are decoded)."""
        return self.stream or request_frames(self.sent.frames, self.plan)

    def taken(self) -> list[Frame]:
        """The frames decoding gave (once the requests are asked: decoding stops here)."""
        return self.stream.taken().frames if self.stream else self.chosen.frames


def prepare(
    path: str,
    options: StageOptions,
    task: Task,
    *,
    report: Report = _quiet,
    warn: Report = _quiet,
    progress: Progress | None = None,
    detect: bool | None = None,
    overlap: bool = False,
) -> Prepared:
    """frames -> (pack) -> (where people speak) -> plan. `vnarrate plan`, `--dry-run` and the
    real runs all go through here, so an estimate is for exactly what a run sends, transcription
    and the transcript's tokens included. Speech is detected (offline) for the flows that will
    transcribe or narrate between speech, or when `detect` says so. A video of several requests
    is planned from the frames sampling will give, before any is decoded (vision/stream); with
    `overlap` they are decoded in the background from the start, to be asked as they come."""
    chosen, ahead = choose_frames(path, options.sampling, options.pack, warn=warn, progress=progress,
                                  hold=task != "describe", start=overlap,
                                  stream=not options.plan.batch)  # fmt: skip
    with stopping(ahead):
        sent = chosen
        sheets = None if ahead else pack_frames(chosen.frames, options.pack)
        if sheets is not None:
            report(f"{path}: packed {len(chosen.frames)} frames into {len(sheets)} sheet(s)")
            sent = chosen.model_copy(update={"frames": sheets})
        hears = task in LISTENING and options.transcription.mode != "off"
        wanted = (hears or task != "describe") if detect is None else detect  # script: the gaps
        heard = listen(path, options, warn=warn) if wanted else None
        context, notes = context_for(path, options.context) if task in LISTENING else (None, [])
        for note in notes:
            warn(f"{path}: {note}")
        speech = heard.speech if heard is not None and hears else None
        duration = chosen.video.duration_s
        extra = listening_tokens(speech, duration, context)
        narrated = room_s(heard, duration, options.gaps) if task == "voiceover" else None
        plan = plan_frameset(sent, options.plan, task, heard_tokens=extra, narrated_s=narrated)
        if ahead is not None and not ahead.follow(plan):  # one request: from the frames decoded
            chosen = sent = ahead.finish()
            ahead = None
            plan = plan_frameset(sent, options.plan, task, heard_tokens=extra, narrated_s=narrated)
    if heard is not None:
        # A script for a video spoken all through asks nothing: nothing to transcribe for it.
        mute = not _says(options, task) and no_room(heard, duration, options.gaps)
        stt = options.transcription if hears and not mute else None
        plan = plan_transcription(plan, heard.speech, stt)
    if task == "voiceover":  # --verify hears the narration back: about one line a slot
        plan = plan_verify(plan, options.verify, plan.duration_s / options.plan.segment_seconds)
    return Prepared(chosen, sent, plan, heard, context, ahead)


def _says(options: StageOptions, task: Task = "voiceover") -> bool:
    """Whether what people say is needed even where nothing is narrated: dialogue subtitles."""
    return task == "voiceover" and options.subtitles in ("dialogue", "both")


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


def describe(
    path: str, session: Session, *, progress: Progress | None = None, overlap: bool = True
) -> DescribeResult:
    """frames -> plan -> prompts -> chat (per chunk, then a merge): a title and description.
    With `overlap`, a long video's requests leave while its later frames are decoded."""
    o, report = session.options, session.report
    prep = prepare(path, o, "describe", report=report, warn=session.warn, progress=progress,
                   overlap=overlap)  # fmt: skip
    with stopping(prep.stream):  # a failure stops the decoding
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
        frames = prep.taken()
    return DescribeResult(
        input=path,
        title=answer.title,
        description=answer.description,
        model=o.chat.model,
        usage=usage,
        requests=usage.requests,
        frames_sent=len(frames),
        frame_times_s=[round(f.time_s, 3) for f in frames],
        soundtrack=heard,
        cost_usd=total_cost(_priced(o, usage), heard.transcription_cost_usd if heard else 0.0),
    )


def describe_images(sources: Sequence[str], session: Session) -> DescribeResult:
    """Several images (files or URLs) in ONE request, so a question can compare them."""
    o = session.options
    messages = images_messages(sources, o.images, o.prompts)
    session.report(f"{len(sources)} image(s): asking {o.chat.model}")
    answer, usage = session.chat(Description, messages)
    return DescribeResult(
        input=" ".join(sources),
        title=answer.title.strip(),
        description=answer.description.strip(),
        model=o.chat.model,
        usage=usage,
        requests=usage.requests,
        frames_sent=len(sources),
        cost_usd=_priced(o, usage),
    )


# --- script ------------------------------------------------------------------------------------


def write_script(
    path: str,
    session: Session,
    *,
    task: Task = "script",
    progress: Progress | None = None,
    overlap: bool = True,
    untimed: bool = False,
) -> ScriptResult:
    """frames -> plan -> where people speak -> prompts -> chat (per chunk) -> repair into the
    gaps -> (shorten once): a script.

    `task` is what the budget check prices: "voiceover" adds the speech to the estimate (and
    measures the voice's pace, once, for the budgets). `untimed`: for a narration spoken in one
    piece, not on the video's times, so not fitted between speech."""
    o, report = session.options, session.report
    prep = prepare(path, o, task, report=report, warn=session.warn, progress=progress,
                   overlap=overlap)  # fmt: skip
    with stopping(prep.stream):
        check_budget(prep.plan, o.max_cost)
        duration = prep.chosen.video.duration_s
        # What is said, for the prompt; not paid for when people speak all through (no prompt).
        mute = not _says(o, task) and (untimed or no_room(prep.soundtrack, duration, o.gaps))
        heard = prep.soundtrack if mute else session.hear(path, prep.soundtrack)
        gaps = None if untimed else find_gaps(heard, duration, o.gaps)
        if task == "voiceover":
            report(f"{path}: finding the voice's pace")  # one short speech request, once
        pace = session.pace(measure=task == "voiceover")
        wps = pace.words_per_second
        report(f"{path}: word budgets at {wps:g} words/s ({pace.source})")
        slots = script_slots(gaps, duration, o.plan.segment_seconds, prep.sent.shot_starts_s, wps)
        if gaps is not None:
            report(f"{path}: speech in {len(gaps.regions)} stretch(es); {len(slots)} slot(s) between")  # fmt: skip
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
        frames = prep.taken()
    script, notes = repair(raw, duration) if gaps is None else repair_into_gaps(raw, duration, gaps)
    if gaps is not None and not gaps.rooms:
        notes.append(
            f"people speak all through: no room of {o.gaps.min_gap_s:g} s or more between "
            "speech, so nothing is narrated (--over-speech duck narrates over it)"
        )
    elif not script.segments:
        raise ApiError("the model wrote no usable narration segments", hint="try again")
    long = [] if untimed else over_budget(script, wps)  # untimed: no slot to fit
    if long:
        report(f"{path}: {len(long)} line(s) over their word budget; asking to shorten them")
    script, shortened, more = shorten_long(script, long, wps, session.chat, notes)
    usage = usage + more
    return ScriptResult(
        input=path,
        script=script,
        model=o.chat.model,
        usage=usage,
        requests=usage.requests,
        duration_s=duration,
        frames_sent=len(frames),
        notes=notes,
        over_budget=over_budget(script, wps) if long else [],
        cost_usd=total_cost(_priced(o, usage), heard.transcription_cost_usd if heard else 0.0),
        shortened=shortened,
        words_per_second=wps,
        pace_source=pace.source,
        speech_characters=pace.characters,
        soundtrack=heard,
        frames=frames,
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
    """script (written now, or the given one, repaired into the gaps between speech) -> speech
    per segment -> timeline, in memory."""
    if script is None:
        made = write_script(path, session, task="voiceover", progress=progress, untimed=untimed)
        return narrate(path, made, session, untimed=untimed)
    o = session.options
    given = plan_script(path, script, o, warn=session.warn, untimed=untimed)
    if not given.script.segments and given.gaps is None:
        raise InputError(f"{path}: the script has no segments inside the video")
    check_budget(given.plan, o.max_cost)  # speech, dialogue transcription, --verify
    heard = session.hear(path, given.heard) if _says(o) else given.heard  # dialogue subtitles
    made = ScriptResult(input=path, script=given.script, model="", requests=0, frames_sent=0,
                        duration_s=given.plan.duration_s, notes=given.notes, soundtrack=heard,
                        cost_usd=heard.transcription_cost_usd if heard else 0.0)  # fmt: skip
    return narrate(path, made, session, untimed=untimed)


def plan_script(
    path: str,
    script: Script,
    options: StageOptions,
    *,
    warn: Report = _quiet,
    untimed: bool = False,
) -> GivenScript:
    """A given script (`voiceover --script`): where people speak -> repaired into the gaps ->
    its plan (speech, dialogue transcription, --verify): what `--dry-run` shows and the run's
    --max-cost checks."""
    heard = listen(path, options, warn=warn)  # where people speak: the gaps to narrate in
    stt = options.transcription if _says(options) else None
    return plan_given_script(path, script, probe(path).duration_s, heard, options.plan,
                             options.gaps, stt=stt, verify=options.verify, untimed=untimed)  # fmt: skip


def narrate(path: str, made: ScriptResult, session: Session, *, untimed: bool = False) -> Voiceover:
    """Speak every segment (`--jobs` at a time) and place the speech on the video's timeline:
    in the gaps between what people say, when they speak."""
    o, report = session.options, session.report
    script, duration = made.script, made.duration_s
    choice = session.speech()
    report(f"{path}: speech via {choice.reason}, {len(script.segments)} segments, --jobs {o.jobs}")
    # The cache key and the price follow the model (and voice) that really speak.
    voice = choice.speaking(o.voice)
    gaps = find_gaps(made.soundtrack, duration, o.gaps)  # untimed: to count what is on speech
    spoken = speak_script(choice.backend, script, voice, duration, fit=o.fit, jobs=o.jobs,
                          rooms=None if gaps is None or untimed else rooms_for(script, gaps),
                          untimed=untimed)  # fmt: skip
    counts = fit_summary(spoken, script, base_speed=voice.speed, gaps=gaps)
    heard_notes = dialogue_notes(o.subtitles, made.soundtrack)
    heard_back = session.verify(path, spoken.track, TRACK_RATE, spoken.placements)  # --verify
    seconds = len(spoken.track) / TRACK_RATE
    characters = spoken.characters + made.speech_characters
    result = VoiceoverResult(
        input=path,
        script=script,
        placements=spoken.placements,
        usage=made.usage,
        speech_characters=characters,
        speech_backend=choice.reason,
        voice=voice.voice,
        duration_s=duration,
        audio_s=seconds,
        notes=[*made.notes, *filter(None, [choice.notice]), *spoken.notes, *heard_notes],
        cost_usd=total_cost(
            made.cost_usd,
            speech_price(o.plan, voice.model, characters, seconds),
            heard_back.cost_usd if heard_back else 0.0,
        ),
        over_speech="untimed" if untimed else o.gaps.over_speech,
        words_per_second=made.words_per_second,
        pace_source=made.pace_source,
        shortened=made.shortened,
        verify=heard_back,
        **counts,
    )
    return Voiceover(
        result=result,
        track=spoken.track,
        sample_rate=TRACK_RATE,
        soundtrack=made.soundtrack,
        frames=made.frames,
    )
