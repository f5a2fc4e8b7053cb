"""The voiceover job: videos (or a video and its edited script) -> narration files, manifest last.

Takes Settings, a Request and the voiceover's own flags (`--script`, `--mux`, `--replace-audio`,
`--untimed`); gives the exit code. Per input: name every output (VoiceoverPaths) and check each
before anything is paid for, run pipeline.voiceover, then write the audio, the subtitles, the
script, the timeline picture (soundtrack, speech, narration) and the muxed video atomically, and
the run manifest last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, UsageError
from ..media.audio import check_audio_path, encode_audio
from ..media.frames import sample_frames
from ..media.mixview import MixView, audio_peaks, render_mix
from ..media.mux import check_mux_path, mux
from ..models import Frame, OutputFile, Script, Voiceover, VoiceoverResult
from ..narration.script import dump_script, load_script
from ..narration.subtitles import to_srt, to_vtt
from ..pipeline import speech_plan
from ..pipeline import voiceover as voiceover_flow
from ..session import Session, stage_options
from ..settings import Settings
from .driver import Outcome, Reporter
from .inputs import Input, output_path
from .jobs import Request, plan_outcome
from .manifest import manifest_suffix, record_output, write_manifest
from .output import atomic_path, check_writable, write_bytes, write_text
from .render import plan_record, render_plan, voiceover_record


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
        timeline: bool = True,
    ) -> None:
        self.audio = audio or output_path(out_dir, stem, ".narration.mp3")
        if audio is not None:
            # Everything of this run stays together, beside the audio file the user named.
            out_dir = audio.parent
            base = audio.with_suffix("")
            self.srt = base.with_name(base.name + ".srt") if subtitles else None
            self.vtt = base.with_name(base.name + ".vtt") if subtitles else None
            picture = base.with_name(base.name + ".timeline.png")
        else:
            self.srt = output_path(out_dir, stem, ".srt") if subtitles else None
            self.vtt = output_path(out_dir, stem, ".vtt") if subtitles else None
            picture = output_path(out_dir, stem, ".timeline.png")
        self.timeline = picture if timeline else None
        self.script = output_path(out_dir, stem, ".script.json") if write_script else None
        self.manifest = output_path(out_dir, stem, manifest_suffix("voiceover"))
        self.mux = mux

    def products(self) -> list[Path]:
        paths = [self.audio, self.srt, self.vtt, self.script, self.timeline, self.mux]
        return [p for p in paths if p is not None]


@dataclass(frozen=True)
class VoiceoverFlags:
    """The voiceover command's own flags."""

    script: Path | None = None  # speak this edited script: no vision call
    mux: Path | None = None  # also write a copy of the video with the narration mixed in
    replace_audio: bool = False  # with mux: drop the original audio
    untimed: bool = False  # one continuous narration (the notebook's way)


def _check_targets(paths: VoiceoverPaths, video: str, force: bool) -> None:
    """Refuse before anything is paid for: every output, its format, the mux target."""
    for target in [*paths.products(), paths.manifest]:
        check_writable(target, force=force)
    if paths.mux is not None:
        check_mux_path(paths.mux, Path(video))
    check_audio_path(paths.audio)


class _Writer:
    """Writes one voiceover's files atomically, in the order a rerun can trust."""

    def __init__(self, session: Session, settings: Settings, flags: VoiceoverFlags) -> None:
        self.session = session
        self.force = settings.force
        self.flags = flags

    def write(self, video: str, made: Voiceover, paths: VoiceoverPaths) -> list[OutputFile]:
        result, force = made.result, self.force
        with atomic_path(paths.audio, force=force) as tmp:
            encode_audio(made.track, made.sample_rate, tmp, label=paths.audio)
        written = [record_output("audio", paths.audio)]
        if paths.srt is not None and paths.vtt is not None:
            write_text(paths.srt, to_srt(result.placements, result.duration_s), force=force)
            write_text(paths.vtt, to_vtt(result.placements, result.duration_s), force=force)
            written += [record_output("srt", paths.srt), record_output("vtt", paths.vtt)]
        if paths.script is not None:
            write_text(paths.script, dump_script(result.script), force=force)
            written.append(record_output("script", paths.script))
        if paths.timeline is not None:
            write_bytes(paths.timeline, self.picture(video, made), force=force)
            written.append(record_output("timeline", paths.timeline))
        if paths.mux is not None:
            self.session.report(f"{video}: muxing into {paths.mux}")
            with atomic_path(paths.mux, force=force) as tmp:
                mux(
                    Path(video),
                    made.track,
                    made.sample_rate,
                    result.placements,
                    tmp,
                    duck_db=self.session.options.duck_db,
                    replace_audio=self.flags.replace_audio,
                    report=self.session.report,
                    label=paths.mux,
                )
            written.append(record_output("mux", paths.mux))
        return written

    def picture(self, video: str, made: Voiceover) -> bytes:
        """The timeline picture: the soundtrack, speech, and where each line landed."""
        r = made.result
        speech = made.soundtrack.speech.regions if made.soundtrack is not None else []
        view = MixView(
            duration_s=r.duration_s,
            title=f"{Path(video).name}: {r.placed} of {r.lines} narration lines placed",
            speech=speech,
            placements=r.placements,
            narration=made.track,
            narration_rate=made.sample_rate,
            dropped=[(r.script.segments[i].start_s, r.script.segments[i].text) for i in r.dropped],
            frames=made.frames or self.thumbnails(video),
            original=audio_peaks(Path(video)),
            notes=_picture_notes(r),
        )
        return render_mix(view)

    def thumbnails(self, video: str) -> list[Frame]:
        """A few small frames along the video, when the run looked at none (--script)."""
        spec = self.session.options.sampling.model_copy(
            update={"mode": "count", "count": 12, "max_frames": 12, "resize": 240}
        )
        try:
            return sample_frames(video, spec).frames
        except InputError:
            return []  # the picture goes without frames rather than fail the run


def _picture_notes(r: VoiceoverResult) -> list[str]:
    pace = f"{r.words_per_second:g} words/s" if r.words_per_second else ""
    parts = [
        f"speech {r.speech_s:.1f} s in {r.speech_regions} stretch(es)" if r.speech_regions else "",
        f"in gaps {r.placed_in_gaps}, shortened {r.shortened}, sped up {r.sped_up}, "
        f"cut {r.cut}, left out {len(r.dropped)}",
        f"over speech {r.seconds_over_speech:.1f} s ({r.over_speech})",
        pace,
    ]
    return [p for p in parts if p]


def _speech_plan_outcome(inp: Input, script: Script, settings: Settings) -> Outcome:
    plan = speech_plan(inp.source, script, stage_options(settings))
    return Outcome(input=inp.source, record=plan_record(plan), text=render_plan(plan))


class VoiceoverJob:
    """One voiceover per input: targets checked, flow run, files written, manifest last."""

    def __init__(
        self,
        settings: Settings,
        session: Session,
        reporter: Reporter,
        flags: VoiceoverFlags,
        *,
        output: Path | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.reporter = reporter
        self.flags = flags
        self.output = output
        self.script = load_script(flags.script) if flags.script is not None else None

    def run(self, video: str, stem: str) -> tuple[VoiceoverResult, Path]:
        """Narrate `video` into files named after `stem`; the result (with its outputs) and the
        manifest's path."""
        settings, flags = self.settings, self.flags
        paths = VoiceoverPaths(
            stem,
            settings.out_dir,
            audio=self.output,
            mux=flags.mux,
            subtitles=settings.subtitles,
            timeline=settings.timeline,
        )
        _check_targets(paths, video, settings.force)
        made = voiceover_flow(
            video,
            self.session,
            script=self.script,
            untimed=flags.untimed,
            progress=self.reporter.progress(video),
        )
        for note in made.result.notes:
            self.reporter.warn(f"{video}: {note}")
        outputs = _Writer(self.session, settings, flags).write(video, made, paths)
        result = made.result.model_copy(update={"outputs": outputs})
        write_manifest(
            paths.manifest,
            settings,
            voiceover_record(result),
            command="voiceover",
            input=video,
            outputs=outputs,
        )
        self.reporter.say(f"{video}: wrote {', '.join(o.path for o in outputs)}")
        return result, paths.manifest


def voiceover(
    settings: Settings, request: Request, reporter: Reporter, flags: VoiceoverFlags
) -> int:
    """`vnarrate voiceover`: a narration timed to each video, with subtitles and a manifest."""
    batch = request.batch(settings, reporter, "voiceover")
    if not batch.single and (request.output or flags.mux or flags.script):
        raise UsageError("-o, --mux and --script take one input; use --out-dir for several")
    if flags.replace_audio and flags.mux is None:
        raise UsageError("--replace-audio goes with --mux")
    if request.dry_run and flags.script is not None:
        given = load_script(flags.script)
        return batch.run(lambda inp: _speech_plan_outcome(inp, given, settings))
    if request.dry_run:
        return batch.run(lambda inp: plan_outcome(inp, batch, "voiceover"))
    job = VoiceoverJob(settings, batch.open_session(), reporter, flags, output=request.output)

    def work(inp: Input) -> Outcome:
        result, manifest = job.run(inp.source, batch.stems[inp])
        shown = [o.path for o in result.outputs]
        record = {**voiceover_record(result), "outputs": [*shown, str(manifest)]}
        return Outcome(input=inp.source, record=record)

    return batch.run(work)
