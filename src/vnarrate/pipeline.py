"""Pipeline: the only module that knows the order of the stages.

Takes an input and Settings (through a Session that holds the shared client, key and cache);
gives the product of a command: a DescribeResult, a ScriptResult, a VoiceoverResult, written
frames, or a Plan. Each stage gets only the few settings it needs. Heavy libraries (cv2, av,
openai, numpy) are imported by the stages, so importing this module is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from .errors import ApiError, InputError
from .models import (
    Clip,
    DescribeResult,
    Description,
    Frame,
    FrameSet,
    OutputFile,
    Placement,
    Plan,
    Script,
    ScriptResult,
    Segment,
    ShortenedLines,
    Usage,
    VoiceoverResult,
)
from .runs import output
from .settings import Settings

if TYPE_CHECKING:
    import openai

    from .narration.speech import SpeechBackend, Synthesis
    from .server.cache import ResponseCache
    from .vision.chat import ChatOptions

Report = Callable[[str], None]
Progress = Callable[[int, int], None]
T = TypeVar("T", bound=BaseModel)


def _quiet(_: str) -> None:
    pass


# --- the shared session ----------------------------------------------------------------------


def chat_options(settings: Settings) -> ChatOptions:
    from .vision.chat import ChatOptions

    return ChatOptions(
        model=settings.model,
        token_field=settings.resolved_token_field(),
        max_tokens=settings.max_completion_tokens,
        temperature=settings.temperature,
        reasoning_effort=settings.reasoning_effort,
        structured=settings.resolved_structured(),
        base_url=settings.base_url,
        provider=settings.resolved_provider(),
    )


def open_cache(settings: Settings, *secrets: str) -> ResponseCache:
    from .server.cache import ResponseCache, default_cache_dir

    root = settings.cache_dir or default_cache_dir()
    return ResponseCache(root, enabled=settings.cache, secrets=[s for s in secrets if s])


@dataclass
class Session:
    """What every input of one run shares: settings, one client, the key (for redaction), the
    response cache, and where diagnostics go."""

    settings: Settings
    client: openai.OpenAI
    key: str
    cache: ResponseCache | None = None
    report: Report = _quiet
    _tts: tuple[SpeechBackend, str, str] | None = field(default=None, repr=False)

    def chat(self, schema: type[T], messages: Sequence[dict[str, Any]]) -> tuple[T, Usage]:
        from .vision.chat import complete

        return complete(
            self.client,
            schema,
            messages,
            chat_options(self.settings),
            key=self.key,
            cache=self.cache,
        )

    def speech(self) -> tuple[SpeechBackend, str, str]:
        """The speech backend (built once per run), why it was chosen, and the model it speaks
        with (a Realtime model when `auto` fell back to it)."""
        if self._tts is None:
            self._tts = speech_backend(self.settings, self._tts_client(), self.cache)
        return self._tts

    def _tts_client(self) -> openai.OpenAI:
        from .server.client import make_client

        s = self.settings
        if s.tts_base_url is None and s.tts_api_key is None:
            return self.client
        tts_key = s.tts_api_key.get_secret_value() if s.tts_api_key else self.key
        return make_client(
            api_key=tts_key or "not-needed",
            base_url=s.tts_base_url or s.base_url,
            timeout=s.timeout,
            max_retries=s.max_retries,
        )


def open_session(settings: Settings, *, report: Report = _quiet) -> Session:
    """One client for the whole run; fails early (exit 3) without a key."""
    from .server.client import make_client

    key = settings.require_key()
    client = make_client(
        api_key=key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )
    tts_key = settings.tts_api_key.get_secret_value() if settings.tts_api_key else ""
    cache = open_cache(settings, key, tts_key) if settings.cache else None
    return Session(settings=settings, client=client, key=key, cache=cache, report=report)


def speech_backend(
    settings: Settings, client: openai.OpenAI, cache: ResponseCache | None
) -> tuple[SpeechBackend, str, str]:
    """The speech backend for these settings (`--tts-backend`), and why it was chosen."""
    from .narration.realtime import choose_backend
    from .narration.speech import CachedSpeech
    from .server.providers import detect_provider

    base_url = settings.tts_base_url or settings.base_url
    provider = detect_provider(base_url) if settings.tts_base_url else settings.resolved_provider()
    choice = choose_backend(
        settings.tts_backend,
        client,
        provider=provider,
        tts_model=settings.tts_model,
        realtime_model=settings.realtime_model,
        timeout_s=settings.timeout,
        wer_threshold=settings.wer_threshold,
        strict=settings.strict,
        cache=cache,  # remembers today's model check: an identical rerun makes no request
    )
    backend: SpeechBackend = choice.backend
    if cache is not None:
        backend = CachedSpeech(backend, cache, provider=provider, base_url=base_url)
    return backend, choice.reason, choice.model


# --- frames and plans ------------------------------------------------------------------------


def extract(path: str, settings: Settings, *, progress: Progress | None = None) -> FrameSet:
    """Frames stage: probe and sample the video as the settings say."""
    from .media import frames

    source = Path(path)
    if not source.exists():
        raise InputError(f"{path}: no such file")
    return frames.sample_frames(source, settings.sampling(), progress=progress)


def plan_for(frameset: FrameSet, settings: Settings, task: str) -> Plan:
    """What the run would send and cost (offline)."""
    from .server.prices import load_prices
    from .vision.plan import limits_for, plan_frameset

    provider = settings.resolved_provider()
    profile = settings.profile()
    limits = limits_for(
        provider,
        max_images_per_request=settings.max_images_per_request or profile.max_images_per_request,
        max_request_bytes=profile.max_request_bytes,
        max_input_tokens=settings.max_input_tokens,
        max_output_tokens=settings.max_completion_tokens,
    )
    return plan_frameset(
        frameset,
        model=settings.model,
        task=task,
        detail=settings.detail,
        limits=limits,
        prices=load_prices(settings.prices),
        provider=provider,
        reasoning_effort=settings.reasoning_effort,
        speech_model=settings.tts_model if task == "voiceover" else None,
        words_per_second=settings.words_per_second,
        segment_seconds=settings.segment_seconds,
    )


def speech_plan(path: str, script_file: Path, settings: Settings) -> Plan:
    """`voiceover --script FILE --dry-run`: no vision request, only the script's speech."""
    from .media.probe import probe
    from .narration.script import load_script, repair
    from .server.prices import load_prices, speech_cost

    info = probe(path)
    script, notes = repair(load_script(script_file), info.duration_s)
    characters = sum(len(seg.text) for seg in script.segments)
    prices = load_prices(settings.prices)
    cost = speech_cost(settings.tts_model, characters, None, prices) if characters else 0.0
    return Plan(
        input=path,
        task="voiceover",
        model=settings.model,
        provider=settings.resolved_provider(),
        duration_s=info.duration_s,
        chat_cost_usd=0.0,
        max_chat_cost_usd=0.0,
        speech_model=settings.tts_model,
        speech_characters=characters,
        speech_cost_usd=cost,
        cost_usd=cost,
        max_cost_usd=cost,
        prices_as_of=prices.as_of,
        notes=[
            f"speaks {script_file} ({len(script.segments)} segments): no vision request",
            *notes,
        ],
    )


def _chunks(frameset: FrameSet, plan: Plan) -> list[list[Frame]]:
    """The frames of each planned request, in time order."""
    out: list[list[Frame]] = []
    for req in plan.requests:
        if req.kind == "frames" and req.first_frame is not None and req.last_frame is not None:
            out.append(frameset.frames[req.first_frame : req.last_frame + 1])
    return out or [frameset.frames]


def packed(frameset: FrameSet, settings: Settings, report: Report = _quiet) -> FrameSet:
    """Frames tiled into timestamped contact sheets when the server takes too few images per
    request (`--pack auto`) or when asked (`--pack grid`); otherwise the frames as they are."""
    from .vision.pack import choose_pack, pack_grid

    profile = settings.profile()
    cap = settings.max_images_per_request or profile.max_images_per_request
    if not choose_pack(settings.pack, len(frameset.frames), profile, max_images=cap):
        return frameset
    sheets = pack_grid(
        frameset.frames, detail=settings.detail, max_images=cap, jpeg_quality=settings.jpeg_quality
    )
    report(
        f"{frameset.video.path}: packed {len(frameset.frames)} frames into {len(sheets)} sheet(s)"
    )
    return frameset.model_copy(update={"frames": sheets})


def prepared(
    path: str,
    settings: Settings,
    task: str,
    *,
    report: Report = _quiet,
    progress: Progress | None = None,
) -> tuple[FrameSet, FrameSet, Plan]:
    """frames -> (pack) -> plan: the frames chosen, what will be sent, and the plan for it.
    `plan`, `--dry-run` and the real runs all go through here, so they cannot disagree."""
    chosen = extract(path, settings, progress=progress)
    sent = packed(chosen, settings, report)
    return chosen, sent, plan_for(sent, settings, task)


def _planned(
    path: str, session: Session, task: str, progress: Progress | None
) -> tuple[FrameSet, FrameSet, Plan]:
    """`prepared`, then refuse (exit 3) before any request when over --max-cost."""
    from .vision.plan import check_budget

    chosen, sent, plan = prepared(
        path, session.settings, task, report=session.report, progress=progress
    )
    check_budget(plan, session.settings.max_cost)
    return chosen, sent, plan


# --- describe --------------------------------------------------------------------------------


def describe(path: str, session: Session, *, progress: Progress | None = None) -> DescribeResult:
    """frames -> plan -> prompts -> chat (per chunk, then a merge): a title and description."""
    from .vision.prompts import describe_messages, merge_messages

    settings, report = session.settings, session.report
    chosen, sent, plan = _planned(path, session, "describe", progress)
    duration = chosen.video.duration_s
    report(
        f"{path}: {len(chosen.frames)} frames from {duration:.1f} s "
        f"({chosen.video.width}x{chosen.video.height})"
    )
    chunks = _chunks(sent, plan)
    usage = Usage()
    parts: list[tuple[str, str]] = []
    for n, chunk in enumerate(chunks, start=1):
        report(f"{path}: asking {settings.model} (request {n}/{len(chunks)}, {len(chunk)} frames)")
        messages = describe_messages(
            chunk,
            duration_s=duration,
            preset=settings.preset,
            prompt=settings.prompt,
            detail=_detail(settings),
            language=settings.language,
            context=parts[-1][1] if parts else None,
            part=(n, len(chunks)),
        )
        answer, used = session.chat(Description, messages)
        usage = usage + used
        parts.append((answer.title.strip(), answer.description.strip()))
    title, text = parts[0]
    if len(parts) > 1:
        report(f"{path}: merging {len(parts)} partial descriptions")
        merged, used = session.chat(
            Description,
            merge_messages(
                parts, duration_s=duration, preset=settings.preset, language=settings.language
            ),
        )
        usage = usage + used
        title, text = merged.title.strip(), merged.description.strip()
    return DescribeResult(
        input=path,
        title=title,
        description=text,
        model=settings.model,
        usage=usage,
        requests=usage.requests,
        frames_sent=len(chosen.frames),
        frame_times_s=[round(f.time_s, 3) for f in chosen.frames],
        cost_usd=chat_cost(settings, usage),
    )


def chat_cost(settings: Settings, usage: Usage) -> float | None:
    """What the requests cost by the API's own usage figures (None: no price for the model)."""
    from .server.prices import chat_cost as priced
    from .server.prices import load_prices

    if usage.requests == 0:
        return 0.0  # answered from the cache
    return priced(settings.model, usage, load_prices(settings.prices))


def describe_images(sources: Sequence[str], session: Session) -> DescribeResult:
    """Several images (files or URLs) in ONE request, so a question can compare them."""
    from .media.images import prepare_image
    from .vision.prompts import describe_images_messages, image_input_part

    settings = session.settings
    profile = settings.profile()
    images = [
        prepare_image(
            src,
            url_images_ok=profile.url_images_ok,
            detail=settings.detail,
            jpeg_quality=settings.jpeg_quality,
            image_urls=settings.image_urls,
        )
        for src in sources
    ]
    parts = [image_input_part(img, detail=_detail(settings)) for img in images]
    messages = describe_images_messages(
        parts,
        names=[
            Path(src).name if not img.is_remote else src
            for src, img in zip(sources, images, strict=True)
        ],
        preset=settings.preset,
        prompt=settings.prompt,
        language=settings.language,
    )
    session.report(f"{len(images)} image(s): asking {settings.model}")
    answer, usage = session.chat(Description, messages)
    return DescribeResult(
        input=" ".join(sources),
        title=answer.title.strip(),
        description=answer.description.strip(),
        model=settings.model,
        usage=usage,
        requests=usage.requests,
        frames_sent=len(images),
        cost_usd=chat_cost(settings, usage),
    )


def _detail(settings: Settings) -> str | None:
    """The detail field, or None for servers that reject it."""
    return settings.detail if settings.profile().send_detail else None


def render_plan(plan: Plan) -> str:
    """A plan for people: frames, requests, tokens and dollars."""
    from .media.timecode import format_ts
    from .server.prices import format_usd

    times = plan.frame_times_s
    lines = [
        f"{plan.input}: {plan.task} with {plan.model} ({plan.provider}), "
        f"video {format_ts(plan.duration_s)}"
    ]
    if times:
        lines.append(
            f"  frames: {len(times)} at {plan.frame_width}x{plan.frame_height}, detail "
            f"{plan.detail}: {plan.image_tokens_per_frame} tokens each ({plan.image_rule})"
        )
        shown = ", ".join(format_ts(t) for t in times[:12])
        lines.append(f"  at: {shown}{' …' if len(times) > 12 else ''}")
    if plan.shot_starts_s:
        lines.append(f"  shots start at: {', '.join(format_ts(t) for t in plan.shot_starts_s)}")
    for req in plan.requests:
        span = f"{format_ts(req.start_s)}–{format_ts(req.end_s)}" if req.kind == "frames" else "—"
        lines.append(
            f"  request {req.index} ({req.kind}, {span}): {req.images} images, "
            f"~{req.input_tokens} input + ~{req.expected_output_tokens} output tokens"
        )
    if plan.requests:
        lines.append(
            f"  total: ~{plan.input_tokens} input + ~{plan.expected_output_tokens} output tokens,"
            f" chat {format_usd(plan.chat_cost_usd)} (at most {format_usd(plan.max_chat_cost_usd)})"
        )
    if plan.speech_model:
        lines.append(
            f"  speech: ~{plan.speech_characters} characters with {plan.speech_model}, "
            f"{format_usd(plan.speech_cost_usd)}"
        )
    lines.append(
        f"  estimated cost: {format_usd(plan.cost_usd)} (at most {format_usd(plan.max_cost_usd)};"
        f" prices as of {plan.prices_as_of or 'unknown'})"
    )
    lines.extend(f"  note: {n}" for n in plan.notes)
    return "\n".join(lines)


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
        "requests": result.requests,
        "usage": result.usage.model_dump(),
        "cost_usd": result.cost_usd,
    }


# --- script ----------------------------------------------------------------------------------


def make_script(
    path: str, session: Session, *, task: str = "script", progress: Progress | None = None
) -> ScriptResult:
    """frames -> plan -> prompts -> chat (per chunk) -> repair -> (shorten once): a script.

    `task` is what the budget check prices: "voiceover" adds the speech to the estimate."""
    from .narration.script import over_budget, repair, suggest_slots, word_budget
    from .vision.prompts import script_messages

    settings, report = session.settings, session.report
    chosen, frameset, plan = _planned(path, session, task, progress)
    duration = chosen.video.duration_s
    frames_sent = len(chosen.frames)
    wps = settings.words_per_second
    slots = [
        (a, b, word_budget(a, b, wps))
        for a, b in suggest_slots(
            duration, target_s=settings.segment_seconds, cuts_s=frameset.shot_starts_s
        )
    ]
    chunks = _chunks(frameset, plan)
    usage = Usage()
    segments: list[Segment] = []
    title, language = "", settings.language or "en"
    for n, chunk in enumerate(chunks, start=1):
        # Each chunk narrates its own stretch of time, with the previous line as context.
        lo = chunk[0].time_s if n > 1 else 0.0
        hi = chunks[n][0].time_s if n < len(chunks) else duration
        mine = [s for s in slots if lo <= s[0] < hi] or [(lo, hi, word_budget(lo, hi, wps))]
        report(
            f"{path}: writing a {settings.style} script with {settings.model} ({n}/{len(chunks)})"
        )
        messages = script_messages(
            chunk,
            duration_s=duration,
            slots=mine,
            style=settings.style,
            instructions=settings.instructions,
            language=settings.language,
            detail=_detail(settings),
            context=segments[-1].text if segments else None,
        )
        raw, used = session.chat(Script, messages)
        usage = usage + used
        title = title or raw.title
        language = raw.language or language
        # Lines past the video's end stay in, for repair() to drop with a note.
        last = n == len(chunks)
        segments.extend(
            s for s in raw.segments if lo - 0.5 <= s.start_s and (last or s.start_s < hi)
        )
    script, notes = repair(Script(title=title, language=language, segments=segments), duration)
    if not script.segments:
        raise ApiError("the model wrote no usable narration segments", hint="try again")
    long = over_budget(script, wps)
    if long:
        report(f"{path}: {len(long)} segment(s) over their word budget; asking to shorten them")
        script, more = _shorten(session, script, long, wps)
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
        frames_sent=frames_sent,
        notes=notes,
        over_budget=still,
        cost_usd=chat_cost(settings, usage),
    )


def _shorten(
    session: Session, script: Script, indexes: list[int], wps: float
) -> tuple[Script, Usage]:
    """One request that shortens the given segments; lines it does not return stay as they were."""
    from .narration.script import word_budget
    from .vision.prompts import shorten_messages

    segs = script.segments
    items = [(i, segs[i].text, word_budget(segs[i].start_s, segs[i].end_s, wps)) for i in indexes]
    answer, usage = session.chat(ShortenedLines, shorten_messages(items, language=script.language))
    new_text = {ln.id: ln.text for ln in answer.lines if ln.id in indexes and ln.text.strip()}
    segments = [
        Segment(start_s=seg.start_s, end_s=seg.end_s, text=new_text.get(i, seg.text))
        for i, seg in enumerate(segs)
    ]
    return script.model_copy(update={"segments": segments}), usage


# --- voiceover -------------------------------------------------------------------------------


class VoiceoverPaths:
    """Where a voiceover run writes: named after the video, or after `-o`'s audio file."""

    def __init__(
        self,
        stem: str,
        out_dir: Path | None,
        *,
        audio: Path | None = None,
        mux: Path | None = None,
        subtitles: bool = True,
        write_script: bool = True,
    ) -> None:
        from .runs.inputs import output_path

        self.audio = audio or output_path(out_dir, stem, ".narration.mp3")
        if audio is not None:
            # Everything of this run stays together, beside the audio file the user named.
            out_dir = audio.parent
            base = audio.with_suffix("")
            self.srt = base.with_name(base.name + ".srt") if subtitles else None
            self.vtt = base.with_name(base.name + ".vtt") if subtitles else None
        else:
            self.srt = output_path(out_dir, stem, ".srt") if subtitles else None
            self.vtt = output_path(out_dir, stem, ".vtt") if subtitles else None
        self.script = output_path(out_dir, stem, ".script.json") if write_script else None
        self.manifest = output_path(out_dir, stem, manifest_suffix("voiceover"))
        self.mux = mux

    def products(self) -> list[Path]:
        paths = [self.audio, self.srt, self.vtt, self.script, self.mux]
        return [p for p in paths if p is not None]


def voiceover(
    path: str,
    session: Session,
    paths: VoiceoverPaths,
    *,
    script_file: Path | None = None,
    untimed: bool = False,
    replace_audio: bool = False,
    progress: Progress | None = None,
) -> VoiceoverResult:
    """script (or --script file) -> speech per segment -> timeline -> mp3, subtitles, mux."""
    from .media import audio
    from .media.probe import probe
    from .narration import subtitles
    from .narration.script import dump_script, load_script, repair
    from .narration.speech import SAMPLE_RATE, SpeechOptions, synthesize_all

    settings, report = session.settings, session.report
    force = settings.force
    for target in [*paths.products(), paths.manifest]:  # refuse before anything is paid for
        output.check_writable(target, force=force)
    if paths.mux is not None:
        audio.check_mux_path(paths.mux)
    audio.check_audio_path(paths.audio)

    usage = Usage()
    if script_file is not None:
        info = probe(path)
        script, notes = repair(load_script(script_file), info.duration_s)
        if not script.segments:
            raise InputError(f"{script_file}: the script has no segments inside the video")
        duration = info.duration_s
    else:
        made = make_script(path, session, task="voiceover", progress=progress)
        script, duration, usage, notes = made.script, made.duration_s, made.usage, list(made.notes)

    backend, why, speech_model = session.speech()
    report(f"{path}: speech via {why}, {len(script.segments)} segments, --jobs {settings.jobs}")
    options = SpeechOptions(
        model=speech_model,  # the cache key and the price follow the model that really speaks
        voice=settings.voice,
        speed=settings.speed,
        instructions=settings.tts_instructions,
    )
    texts = [seg.text for seg in script.segments]
    synths = synthesize_all(backend, texts, options, jobs=settings.jobs)
    characters = sum(s.characters for s in synths)  # billed: cache hits count 0
    for i, syn in enumerate(synths):
        _faithfulness_note(notes, i, syn)
    clips = [
        Clip(segment=i, text=texts[i], pcm=s.pcm, sample_rate=s.sample_rate, speed=options.speed)
        for i, s in enumerate(synths)
    ]

    def resynthesize(i: int, speed: float) -> Clip:
        nonlocal characters
        syn = backend.synthesize(texts[i], options.model_copy(update={"speed": speed}))
        characters += syn.characters
        _faithfulness_note(notes, i, syn)
        return Clip(segment=i, text=texts[i], pcm=syn.pcm, sample_rate=syn.sample_rate, speed=speed)

    if untimed:
        track = audio.untimed_track(clips)
        placements = untimed_placements(clips)
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
                f"segment {p.segment + 1} starts {p.pushed_s:.2f} s late "
                "(its speech is longer than its slot)"
            )
    if not untimed and placements and placements[-1].end_s > duration + 0.05:
        notes.append(
            f"the narration runs {placements[-1].end_s - duration:.2f} s past the end of the video"
        )
    written = [
        record_output("audio", audio.encode_audio(track, SAMPLE_RATE, paths.audio, force=force))
    ]
    if paths.srt is not None and paths.vtt is not None:
        written.append(
            record_output(
                "srt", output.write_text(paths.srt, subtitles.to_srt(placements), force=force)
            )
        )
        written.append(
            record_output(
                "vtt", output.write_text(paths.vtt, subtitles.to_vtt(placements), force=force)
            )
        )
    if paths.script is not None:
        written.append(
            record_output(
                "script", output.write_text(paths.script, dump_script(script), force=force)
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
            force=force,
            report=report,
        )
        written.append(record_output("mux", muxed))
    return VoiceoverResult(
        input=path,
        script=script,
        placements=placements,
        outputs=written,
        usage=usage,
        speech_characters=characters,
        speech_backend=why,
        duration_s=duration,
        audio_s=len(track) / SAMPLE_RATE,
        notes=notes,
        cost_usd=_voiceover_cost(
            settings, speech_model, usage, characters, len(track) / SAMPLE_RATE
        ),
    )


def _faithfulness_note(notes: list[str], i: int, syn: Synthesis) -> None:
    if syn.faithful is False:
        wer = f" (word error rate {syn.wer:.0%})" if syn.wer is not None else ""
        said = f': "{syn.transcript}"' if syn.transcript else ""
        notes.append(f"segment {i + 1} was spoken differently from the script{wer}{said}")


def _voiceover_cost(
    settings: Settings, speech_model: str, usage: Usage, characters: int, seconds: float
) -> float | None:
    from .server.prices import load_prices, speech_cost

    chat = chat_cost(settings, usage)
    speech = (
        0.0
        if characters == 0
        else speech_cost(speech_model, characters, seconds, load_prices(settings.prices))
    )
    return None if chat is None or speech is None else chat + speech


def untimed_placements(clips: Sequence[Clip]) -> list[Placement]:
    """Where the untimed track puts each clip (back to back, with the same short pause)."""
    from .media.audio import UNTIMED_GAP_S

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


# --- files and manifests ---------------------------------------------------------------------


def record_output(kind: str, path: Path) -> OutputFile:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return OutputFile(
        kind=kind, path=str(path), bytes=path.stat().st_size, sha256=digest.hexdigest()
    )


def manifest_suffix(command: str) -> str:
    """Each command keeps its own run manifest, so describe, script and voiceover can share an
    --out-dir: `clip.vnarrate.json` (voiceover), `clip.describe.vnarrate.json`, ..."""
    return ".vnarrate.json" if command == "voiceover" else f".{command}.vnarrate.json"


def write_manifest(
    manifest: Path, settings: Settings, record: dict[str, Any], *, command: str
) -> Path:
    """The run manifest: inputs, settings without secrets, models, usage, outputs. Written last,
    so its presence (with matching outputs) means the run completed."""
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
    text = json.dumps(doc, indent=2, ensure_ascii=False, default=str)
    return output.write_text(manifest, text, force=True)


def manifest_complete(manifest: Path, *, command: str | None = None) -> bool:
    """True when `manifest` records a complete run (of `command`, when given: a describe run
    does not make a voiceover complete) whose outputs are all still as written."""
    import hashlib

    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        outputs = doc["outputs"]
        if doc.get("status") != "complete" or not outputs:
            return False
        if command and doc.get("command") != command:
            return False
        for item in outputs:
            p = Path(item["path"])
            if not p.is_file() or p.stat().st_size != item["bytes"]:
                return False
            if hashlib.sha256(p.read_bytes()).hexdigest() != item["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def public_settings(settings: Settings) -> dict[str, Any]:
    """Settings safe to record: no keys, and base URLs without credentials or query strings."""
    from urllib.parse import urlsplit

    data = settings.model_dump(mode="json", exclude={"api_key", "tts_api_key"})
    for name in ("base_url", "tts_base_url"):
        if data.get(name):
            parts = urlsplit(data[name])
            port = f":{parts.port}" if parts.port else ""
            data[name] = f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    return data


def write_frames(
    path: str, out_dir: Path, settings: Settings, *, progress: Progress | None = None
) -> list[Path]:
    """`vnarrate frames`: the sampled JPEGs, frames.json and contact_sheet.jpg in `out_dir`."""
    from .media.sheets import contact_sheet

    frameset = extract(path, settings, progress=progress)
    force = settings.force
    manifest_path = out_dir / "frames.json"
    sheet = out_dir / "contact_sheet.jpg"
    # Check before writing anything, so a refused run leaves the folder as it was.
    output.check_writable(manifest_path, force=force)
    output.check_writable(sheet, force=force)
    written: list[Path] = []
    records = []
    for n, frame in enumerate(frameset.frames, start=1):
        name = f"frame_{n:04d}_{frame.time_s:08.3f}s.jpg"
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
    written.append(output.write_bytes(sheet, contact_sheet(frameset.frames), force=force))
    doc = {
        "input": path,
        "video": frameset.video.model_dump(),
        "mode": frameset.mode,
        "sampling": settings.sampling().model_dump(),
        "shot_starts_s": frameset.shot_starts_s,
        "frames": records,
    }
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    written.append(output.write_text(manifest_path, text, force=force))
    return written
