"""The voiceover job: videos (or a video and its edited script) -> narration files, manifest last.

Takes Settings, a Request and the voiceover's own flags (`--script`, `--mux`, `--replace-audio`,
`--untimed`); gives the exit code. Per input: name every output (VoiceoverPaths) and check each
before anything is paid for (with --skip-existing, files an interrupted earlier run wrote may be
replaced), run pipeline.voiceover, then write the audio, the subtitles, the script and the muxed
video and the timeline picture (soundtrack, speech, narration) atomically, each on record in the partial run manifest before it takes its name, and the
complete manifest last. A script given with --script is an input: when it is the very file the
run would write (`vnarrate script clip.mp4 && $EDITOR clip.script.json && vnarrate voiceover
clip.mp4 --script clip.script.json`), it is left alone, even with --force.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, UsageError
from ..media.audio import check_audio_path, encode_audio
from ..media.frames import sample_frames
from ..media.mixview import MixView, audio_peaks, render_mix
from ..media.mux import check_mux_path, mux
from ..models import Frame, OutputFile, Script, Voiceover, VoiceoverResult
from ..narration.script import dump_script, load_script
from ..narration.subtitles import subtitle_tracks, to_srt, to_vtt
from ..pipeline import plan_script
from ..pipeline import voiceover as voiceover_flow
from ..session import Session, stage_options
from ..settings import Settings
from .batch_api import run_all
from .driver import Outcome, Reporter
from .inputs import Input, output_path
from .interrupt import ACTIVITY
from .jobs import Request, check_voiceover, plan_outcome
from .manifest import Claim, Journal, claim_targets, manifest_suffix, source_file
from .output import atomic_path, write_bytes, write_text
from .render import plan_record, render_plan, voiceover_record


class VoiceoverPaths:
    """Where a voiceover run writes: named after the video (VIDEO.narration.mp3, VIDEO.srt,
    VIDEO.vtt, VIDEO.script.json, VIDEO.vnarrate.json), or every one of them after `-o`'s audio
    file (`-o NAME.wav`: NAME.srt, NAME.vtt, NAME.script.json, NAME.vnarrate.json beside it; a
    trailing `.narration` is not part of NAME, so `-o out/clip.narration.mp3` names as
    `--out-dir out` does)."""

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
            base = audio.with_suffix("").name.removesuffix(".narration") or audio.stem

            def named(suffix: str) -> Path:
                return audio.with_name(base + suffix)
        else:

            def named(suffix: str) -> Path:
                return output_path(out_dir, stem, suffix)

        self.srt = named(".srt") if subtitles else None
        self.vtt = named(".vtt") if subtitles else None
        self.script = named(".script.json") if write_script else None
        self.manifest = named(manifest_suffix("voiceover"))
        self.timeline = named(".timeline.png") if timeline else None
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


def _check_targets(paths: VoiceoverPaths, video: str, settings: Settings, *, resume: bool) -> Claim:
    """Refuse before anything is paid for: every output, its format, the mux target."""
    if paths.mux is not None:
        check_mux_path(paths.mux, Path(video))
    check_audio_path(paths.audio)
    return claim_targets(
        paths.products(), paths.manifest, command="voiceover", force=settings.force, resume=resume
    )


class _Writer:
    """Writes one voiceover's files atomically, each on record (Journal) before it lands."""

    def __init__(self, session: Session, flags: VoiceoverFlags, claim: Claim) -> None:
        self.session = session
        self.flags = flags
        self.claim = claim

    def write(
        self, video: str, made: Voiceover, paths: VoiceoverPaths, journal: Journal
    ) -> list[OutputFile]:
        result, claim = made.result, self.claim
        ACTIVITY.stage(video, f"writing {paths.audio}")
        with atomic_path(
            paths.audio, force=claim.force(paths.audio), landing=journal.lands("audio", paths.audio)
        ) as tmp:
            encode_audio(made.track, made.sample_rate, tmp, label=paths.audio)
        shown, said = subtitle_tracks(
            self.session.options.subtitles, result.placements, made.soundtrack
        )
        texts: list[tuple[str, Path | None, Callable[[], str]]] = [
            ("srt", paths.srt, lambda: to_srt(shown, result.duration_s, dialogue=said)),
            ("vtt", paths.vtt, lambda: to_vtt(shown, result.duration_s, dialogue=said)),
            ("script", paths.script, lambda: dump_script(result.script)),
        ]
        for kind, path, render in texts:
            if path is not None:
                ACTIVITY.stage(video, f"writing {path}")
                write_text(
                    path, render(), force=claim.force(path), landing=journal.lands(kind, path)
                )
        if paths.timeline is not None:
            ACTIVITY.stage(video, f"drawing {paths.timeline}")
            picture = self.picture(video, made)
            force, landing = claim.force(paths.timeline), journal.lands("timeline", paths.timeline)
            write_bytes(paths.timeline, picture, force=force, landing=landing)
        if paths.mux is not None:
            self.session.report(f"{video}: muxing into {paths.mux}")
            landing = journal.lands("mux", paths.mux)
            with atomic_path(paths.mux, force=claim.force(paths.mux), landing=landing) as tmp:
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
        return list(journal.outputs)

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


def _given_script(given: Path | None, paths: VoiceoverPaths) -> Path | None:
    """The script file the run would write, when --script names that very file."""
    target = paths.script
    if given is None or target is None or not target.exists():
        return None
    try:
        return target if given.samefile(target) else None
    except OSError:
        return None


def _reads(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


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


def _speech_plan_outcome(
    inp: Input, script: Script, settings: Settings, warn: Callable[[str], None], *, untimed: bool
) -> Outcome:
    """`--script --dry-run`: the plan the run checks --max-cost against (pipeline.plan_script)."""
    options = stage_options(settings)
    plan = plan_script(inp.source, script, options, warn=warn, untimed=untimed).plan
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
        resume: bool = False,
    ) -> None:
        self.settings = settings
        self.session = session
        self.reporter = reporter
        self.flags = flags
        self.output = output
        self.resume = resume  # --skip-existing: an interrupted earlier run's files may be replaced
        self.script = load_script(flags.script) if flags.script is not None else None
        # The given script is an input: its checksum goes into the manifest, so that editing it
        # again makes the voiceover stale for --skip-existing.
        self.sources = [source_file("script", flags.script)] if flags.script is not None else []

    def paths(self, stem: str) -> VoiceoverPaths:
        settings, flags = self.settings, self.flags
        return VoiceoverPaths(
            stem,
            settings.out_dir,
            audio=self.output,
            mux=flags.mux,
            subtitles=settings.subtitles != "off",
            timeline=settings.timeline,
        )

    def run(self, video: str, stem: str) -> tuple[VoiceoverResult, Path]:
        """Narrate `video` into files named after `stem`; the result (with its outputs) and the
        manifest's path."""
        settings, flags = self.settings, self.flags
        paths = self.paths(stem)
        kept = _given_script(flags.script, paths)
        if kept is not None:
            paths.script = None  # the user's own file: read, never written
        claim = _check_targets(paths, video, settings, resume=self.resume)
        ACTIVITY.stage(video, "speech" if self.script is not None else "script and speech")
        made = voiceover_flow(
            video,
            self.session,
            script=self.script,
            untimed=flags.untimed,
            progress=self.reporter.progress(video),
        )
        for note in made.result.notes:
            self.reporter.warn(f"{video}: {note}")
        journal = Journal(
            paths.manifest,
            settings,
            command="voiceover",
            input=video,
            claim=claim,
            sources=self.sources,
        )
        outputs = _Writer(self.session, flags, claim).write(video, made, paths, journal)
        if kept is not None and _reads(kept) == dump_script(made.result.script):
            journal.outputs.append(source_file("script", kept))  # as vnarrate writes it: listed
            outputs = list(journal.outputs)
        result = made.result.model_copy(update={"outputs": outputs})
        ACTIVITY.stage(video, f"writing {paths.manifest}")
        journal.complete(voiceover_record(result))
        written = [o.path for o in outputs if kept is None or o.path != str(kept)]
        self.reporter.say(f"{video}: wrote {', '.join(written)}")
        return result, paths.manifest


def voiceover(
    settings: Settings, request: Request, reporter: Reporter, flags: VoiceoverFlags
) -> int:
    """`vnarrate voiceover`: a narration timed to each video, with subtitles and a manifest."""
    if flags.script is not None:
        settings = settings.model_copy(update={"batch": False})  # no chat request to batch
    batch = request.batch(settings, reporter, "voiceover")
    if not batch.single and (request.output or flags.mux or flags.script):
        raise UsageError("-o, --mux and --script take one input; use --out-dir for several")
    if flags.replace_audio and flags.mux is None:
        raise UsageError("--replace-audio goes with --mux")
    check_voiceover(settings)  # a voice the speaking backend lacks...: exit 2 now
    if request.dry_run and flags.script is not None:
        given = load_script(flags.script)
        return batch.run(
            lambda inp: _speech_plan_outcome(
                inp, given, settings, reporter.warn, untimed=flags.untimed
            )
        )
    if request.dry_run:
        return batch.run(lambda inp: plan_outcome(inp, batch, "voiceover"))
    session = batch.open_session(chat=flags.script is None, speech=True)
    job = VoiceoverJob(
        settings, session, reporter, flags, output=request.output, resume=request.skip_existing
    )
    batch.manifest_path = lambda inp: job.paths(batch.stems[inp]).manifest

    def work(inp: Input) -> Outcome:
        result, manifest = job.run(inp.source, batch.stems[inp])
        shown = [o.path for o in result.outputs]
        record = {**voiceover_record(result), "outputs": [*shown, str(manifest)]}
        return Outcome(input=inp.source, record=record)

    return run_all(batch, work)
