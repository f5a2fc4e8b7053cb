"""Benchmark: narration in the gaps between speech, on clips whose speech times are known.

    python benchmarks/bench_gaps.py [--media ../shared/media] [--tts http://127.0.0.1:8766/v1]

Material: the shared `dialogue_*.mp4` clips (truth in their `.json`) and, with `--tts` (an
OpenAI-shaped speech server: the local Piper voice), the generated two-voice conversations of
bench_vad.py (speaker turns after 0.8 s, pauses of 0.3 s inside a turn, one 5 s pause; clean,
over the Big Buck Bunny score and synthetic music at speech loudness, and over pink noise).

1. Rooms: for each --min-gap and --gap-margin, from vnarrate's own speech detection (default
   settings): how many rooms, their seconds, the true speech inside them (must be 0), and how
   many true pauses shorter than 1.2 s (inside a turn, or a speaker turn) became a room.
2. Placement with the real voice: (a) a careless writer's script (a 15-word line every 3 s,
   many on speech, all too long for their gaps, never shortened), and (b) a writer who keeps
   to the budgets (one line per slot, as many words as its budget at the voice's measured
   pace), each repaired into the rooms, spoken by the server, fitted with the default ladder;
   then the narration's audible samples over TRUE speech (10 ms grid), the closest it ends to
   a true speech onset, and how many lines were placed, sped up, cut, dropped.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import openai

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vad  # the conversations and the truth clips

from vnarrate.models import Script, Segment, Soundtrack, SpokenLine, VadOptions
from vnarrate.narration.gaps import (
    GapOptions,
    find_gaps,
    gap_slots,
    repair_into_gaps,
    rooms_for,
)
from vnarrate.narration.pace import measure_pace
from vnarrate.narration.speech import SpeechEndpointBackend, SpeechOptions
from vnarrate.narration.timeline import FitOptions
from vnarrate.narration.voicing import Spoken, fit_summary, speak_script
from vnarrate.settings import Settings
from vnarrate.soundtrack import detect_speech

Intervals = list[tuple[float, float]]
GRID = 100
SENTENCE = "The camera drifts slowly past a quiet row of trees while soft light falls across"
WORDS = [*SENTENCE.lower().split(), "the", "wet", "grass", "and", "a", "small", "bird", "watches"]


def defaults() -> tuple[VadOptions, GapOptions, FitOptions]:
    s = Settings()
    vad = VadOptions(threshold=s.speech_threshold, min_speech_s=s.speech_min_s,
                     min_silence_s=s.speech_min_silence_s, pad_s=s.speech_pad_s)  # fmt: skip
    gaps = GapOptions(over_speech=s.over_speech, min_gap_s=s.min_gap,
                      before_s=s.margin_before_speech, after_s=s.margin_after_speech)  # fmt: skip
    return vad, gaps, FitOptions(max_speed=s.max_speed, max_stretch=s.max_stretch)


def write_audio(x: np.ndarray, rate: int, path: Path) -> Path:
    with av.open(str(path), "w") as out:
        st = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (np.clip(x, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in [*st.encode(frame), *st.encode(None)]:
            out.mux(packet)
    return path


def material(args: argparse.Namespace, tmp: Path) -> dict[str, tuple[Path, Intervals, float]]:
    media = args.media if args.media.is_dir() else None
    out: dict[str, tuple[Path, Intervals, float]] = {}
    for meta in sorted(media.glob("dialogue_*.json")) if media else []:
        truth = bench_vad.json.loads(meta.read_text())
        speech = [(float(s["start"]), float(s["end"])) for s in truth["speech"]]
        out[truth["file"]] = (media / truth["file"], speech, float(truth["duration"]))
    if args.tts:
        for n, (name, (x, truth)) in enumerate(
            bench_vad.mixes(args.tts + "/audio/speech", media).items()
        ):
            path = write_audio(x, bench_vad.RATE, tmp / f"mix{n}.wav")
            out[name] = (path, truth, len(x) / bench_vad.RATE)
    return out


def pauses(truth: Intervals) -> list[float]:
    return [b[0] - a[1] for a, b in itertools.pairwise(truth)]


def rooms_table(clips: dict[str, tuple[Path, Intervals, float]]) -> None:
    vad, _, _ = defaults()
    heard = {name: detect_speech(path, vad) for name, (path, _, _) in clips.items()}
    short = sum(1 for _, t, _ in clips.values() for p in pauses(t) if p < 1.2)
    print(f"\n{len(clips)} clips, {short} true pauses under 1.2 s\n")
    print("| min gap s | margin before / after speech s | rooms | room s | true speech in rooms "
          "(s) | pauses < 1.2 s made rooms | true pauses >= 2 s without a room |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for min_gap in (0.6, 1.0, 1.5):
        for before, after in ((0.0, 0.0), (0.15, 0.15), (0.25, 0.1), (0.35, 0.1), (0.45, 0.1)):
            opts = GapOptions("avoid", min_gap_s=min_gap, before_s=before, after_s=after)
            n = seconds = inside = 0.0
            false_rooms = missed = 0
            for name, (_, truth, duration) in clips.items():
                gaps = find_gaps(soundtrack(heard[name], duration), duration, opts)
                rooms = gaps.rooms if gaps else [(0.0, duration)]
                n += len(rooms)
                seconds += sum(b - a for a, b in rooms)
                inside += overlap_s(rooms, truth, duration)
                for a, b in itertools.pairwise(truth):
                    found = any(lo < b[0] and hi > a[1] for lo, hi in rooms)
                    false_rooms += b[0] - a[1] < 1.2 and found
                    missed += b[0] - a[1] >= 2.0 and not found
            print(f"| {min_gap} | {before} / {after} | {n:.0f} | {seconds:.1f} | {inside:.2f} | "
                  f"{false_rooms} | {missed} |")  # fmt: skip


def soundtrack(speech: object, duration: float) -> Soundtrack | None:
    if speech is None:
        return None
    lines = [SpokenLine(start_s=a, end_s=b) for a, b in speech.regions]  # type: ignore[attr-defined]
    return Soundtrack(speech=speech, lines=lines)  # type: ignore[arg-type]


def overlap_s(spans: Intervals, truth: Intervals, duration: float) -> float:
    return float((bench_vad.mask(spans, duration) & bench_vad.mask(truth, duration)).sum() / GRID)


def careless_script(duration: float) -> Script:
    segments = []
    for k, t in enumerate(np.arange(0.5, duration - 1.0, 3.0)):
        words = WORDS[k % 5 : k % 5 + 12]
        text = " ".join(words).capitalize() + ". " + "It is calm."
        segments.append(Segment(start_s=float(t), end_s=float(t) + 2.5, text=text))
    return Script(title="careless", language="en", segments=segments)


def budgeted_script(gaps: object, duration: float, wps: float) -> Script:
    if gaps is None:
        return careless_script(duration)
    slots = gap_slots(gaps, target_s=6.0, cuts_s=[], words_per_second=wps)  # type: ignore[arg-type]
    segments = [
        Segment(start_s=a, end_s=b, text=" ".join((WORDS * 3)[k : k + n]).capitalize() + ".")
        for k, (a, b, n) in enumerate(slots)
    ]
    return Script(title="budgeted", language="en", segments=segments)


def audible(spoken: Spoken, duration: float) -> Intervals:
    """Where the narration track is not silent (10 ms windows over -50 dBFS)."""
    x = spoken.track.astype(np.float32) / 32768
    win = 240
    n = len(x) // win
    loud = np.sqrt((x[: n * win].reshape(n, win) ** 2).mean(axis=1)) > 10 ** (-50 / 20)
    return [(i / GRID, (i + 1) / GRID) for i in np.flatnonzero(loud)]


def placement_table(clips: dict[str, tuple[Path, Intervals, float]], url: str) -> None:
    vad, gap_opts, fit = defaults()
    backend = SpeechEndpointBackend(openai.OpenAI(api_key="x", base_url=url))
    voice = SpeechOptions(model="tts-1", voice="alloy")
    wps = measure_pace(backend, voice)[0]
    print(f"\nthe voice's measured pace: {wps:.2f} words/s")
    print("\n| clip | script | --over-speech | lines | placed | sped up | cut | dropped | "
          "narration over true speech (s) | closest end to a speech onset (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (path, truth, duration) in clips.items():
        heard = soundtrack(detect_speech(path, vad), duration)
        for writer, mode in (("careless", "avoid"), ("careless", "duck"), ("budgeted", "avoid")):
            opts = GapOptions(mode, gap_opts.min_gap_s, gap_opts.before_s, gap_opts.after_s)  # type: ignore[arg-type]
            gaps = find_gaps(heard, duration, opts)
            if writer == "careless":
                script = careless_script(duration)
            else:
                script = budgeted_script(gaps, duration, wps)
            if gaps is not None:
                script, _ = repair_into_gaps(script, duration, gaps)
            rooms = rooms_for(script, gaps) if gaps is not None else None
            spoken = speak_script(backend, script, voice, duration, rooms=rooms, fit=fit, jobs=4)
            counts = fit_summary(spoken, script, base_speed=1.0, gaps=gaps)
            sound = audible(spoken, duration)
            over = overlap_s(sound, truth, duration)
            onsets = [a for a, _ in truth]
            closest = min((min(abs(a - e) for a in onsets) for _, e in sound if any(
                e <= a for a in onsets)), default=float("nan"))  # fmt: skip
            print(f"| {name} | {writer} | {mode} | {counts['lines']} | {counts['placed']} | "
                  f"{counts['sped_up']} | {counts['cut']} | {len(counts['dropped'])} | "
                  f"{over:.2f} | {closest:.2f} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--media", type=Path, default=bench_vad.ROOT.parent / "shared" / "media")
    ap.add_argument("--tts", help="OpenAI-shaped speech server base URL (ends in /v1)")
    args = ap.parse_args()
    bench_vad.CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        clips = material(args, Path(tmp))
        if not clips:
            sys.exit("no material: give --media with the dialogue clips, or --tts")
        rooms_table(clips)
        if args.tts:
            placement_table(clips, args.tts)


if __name__ == "__main__":
    main()
