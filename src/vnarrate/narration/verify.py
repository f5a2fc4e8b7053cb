"""Verify: the narration as placed -> heard back through speech-to-text, line by line.

Takes the finished track (mono int16 at its rate), its Placements, VerifyOptions and a way to
transcribe clips (the session's speech-to-text client: the same --stt-* settings as the video's
own transcription); gives a Verification: for every placed line, what a recogniser heard in its
stretch of the track and the word error rate against the line as spoken, and where its speech
really starts in the track against its placed start; then the verdict. It catches a speech
server that drops words (errors, and fewer words heard), one that plays at the wrong rate
(garbled words, as far as the recogniser stumbles on them: placements follow the samples, so
the rate shows in no time), one whose words start late in its take (the onset) or that returns
silence.

What is sent: each placed line's own span of the final track, with up to MARGIN_S of the
silence around it (never reaching into the next line), as 16 kHz FLAC, one request per line,
`jobs` at a time, cached by the audio's bytes (a rerun of the same narration costs nothing).
One request per line, not clips merged: `gpt-transcribe` returns no times, so a merged clip's
text could not be split back onto its lines; audio is billed by its length, so the cost is the
same; a line's request is small and retried alone.

When is a line off: a recogniser errs too, on clean speech (OpenAI's models rarely; PocketSphinx
on 17-34 % of the words of short narration lines, BENCHMARKS.md "--verify"). So `wer_threshold` is the error
rate allowed to the recogniser and the voice together, and a line is off for its words when it
has more errors than that rate explains: fewer than SIGNIFICANCE of lines would have as many by
chance (a one-sided binomial test). One misheard word in a three-word line is not enough; three
of three, or four of nine, are. All lines together are held to the same test, which catches a
server that drops a word here and there, and to one a weak recogniser passes too: a recogniser
hears about as many words as were said, right or wrong (PocketSphinx 2 % fewer over 40 clean
lines), so hearing significantly more than UNHEARD_RATE fewer words than the lines hold means
words are missing from the speech. A line is off for its onset when its speech starts
more than `onset_tolerance_s` away from its placed start, and "silent" when nothing in its span
sounds like speech. The onset is measured from the track's energy (10 ms windows; the first of
a run of loud windows, loud meaning within ONSET_RANGE_DB of the line's own level): the track
holds nothing but the narration, so energy is exact here, and the relative level ignores a
server's hiss or hum before the words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ApiError
from ..media.audio import resample_mono
from ..models import Placement, Plan, Verification, VerifiedLine
from ..server.prices import total_cost
from ..soundtrack.clips import SpeechClip, encode_flac
from ..soundtrack.detect import SAMPLE_RATE
from ..soundtrack.transcribe import TranscribeOptions, Transcript, price, unpriced_note
from .faithfulness import edit_distance, normalize_words

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.int16]

MARGIN_S = 0.25  # silence sent around a line: recognisers miss a word cut at the clip's edge
SIGNIFICANCE = 0.05  # a line is off when its errors are this unlikely at the allowed rate
UNHEARD_RATE = 0.05  # the share of words a recogniser may not hear in faithful speech
WINDOW_S = 0.01  # onset measurement
ONSET_RANGE_DB = 20.0  # loud: within this of the line's level (its 95th-percentile window)
FLOOR_DBFS = -50.0  # quieter than this is silence (the timeline's trim uses the same level)
ONSET_RUN = (3, 5)  # an onset starts 3 loud windows out of 5: a click is not speech
SAID_CHARS = 240  # what the record keeps of a recogniser's answer

# Clips of the narration -> what was heard in each (session.hear_clips: the STT client).
Hear = Callable[[Iterator[SpeechClip], Sequence[tuple[float, float]]], Transcript]


@dataclass(frozen=True)
class VerifyOptions:
    """What --verify needs (session/options.py builds it from Settings)."""

    stt: TranscribeOptions  # the same speech-to-text server and model as transcription
    wer_threshold: float  # the error rate allowed to the recogniser and the voice together
    onset_tolerance_s: float
    strict: bool  # an off verdict fails the run


def verify_narration(
    track: Samples,
    rate: int,
    placements: Sequence[Placement],
    options: VerifyOptions,
    hear: Hear,
) -> Verification:
    """Every placed line heard back and measured (see the module docstring)."""
    spans = line_spans(placements, len(track) / rate)
    heard = hear(narration_clips(track, rate, spans), spans)
    lines = [
        _line(p, said.text, onset(track, rate, *span), options)
        for p, said, span in zip(placements, heard.lines, spans, strict=True)
    ]
    errors = sum(round(line.wer * line.words) for line in lines)
    words = sum(line.words for line in lines)
    heard_words = sum(line.heard_words for line in lines)
    offsets = [abs(line.onset_error_s) for line in lines if line.onset_error_s is not None]
    off = sum(not line.ok for line in lines)
    problems = [
        name
        for name, bad in (
            ("lines", off > 0),
            ("wer", too_many_errors(errors, words, options.wer_threshold)),
            ("missing", too_many_errors(words - heard_words, words, UNHEARD_RATE)),
        )
        if bad
    ]
    return Verification(
        model=options.stt.model,
        wer_threshold=options.wer_threshold,
        onset_tolerance_s=options.onset_tolerance_s,
        lines=lines,
        off=off,
        words=words,
        heard_words=heard_words,
        wer=round(errors / words, 4) if words else 0.0,
        max_onset_error_s=round(max(offsets), 3) if offsets else None,
        requests=heard.requests,
        seconds=heard.seconds,
        cost_usd=price(options.stt, heard.seconds),
        ok=not problems,
        problems=problems,
        notes=heard.warnings,
    )


def _line(p: Placement, said: str, start: float | None, options: VerifyOptions) -> VerifiedLine:
    ref, hyp = normalize_words(p.text), normalize_words(said)
    errors = edit_distance(ref, hyp)
    error_s = None if start is None else round(start - p.start_s, 3)
    problems = [
        name
        for name, bad in (
            ("silent", start is None),
            ("words", too_many_errors(errors, len(ref), options.wer_threshold)),
            ("onset", error_s is not None and abs(error_s) > options.onset_tolerance_s),
        )
        if bad
    ]
    return VerifiedLine(
        segment=p.segment + 1,
        start_s=p.start_s,
        end_s=p.end_s,
        words=len(ref),
        heard_words=len(hyp),
        wer=round(errors / len(ref), 4) if ref else float(bool(hyp)),
        said=_cut(said),
        onset_s=None if start is None else round(start, 3),
        onset_error_s=error_s,
        ok=not problems,
        problems=problems,
    )


def _cut(text: str, limit: int = SAID_CHARS) -> str:
    if len(text) <= limit:
        return text
    return (text[:limit].rsplit(" ", 1)[0] or text[:limit]) + " …"


def too_many_errors(errors: int, words: int, rate: float) -> bool:
    """Whether `errors` word errors in `words` words are more than an error rate of `rate`
    explains: the chance of as many or more (binomial) is under SIGNIFICANCE. Insertions can
    make errors exceed words; they count as every word wrong."""
    if words <= 0 or errors <= rate * words:
        return False
    if rate <= 0.0:
        return True
    if rate >= 1.0:
        return False
    errors = min(errors, words)
    lp, lq = math.log(rate), math.log1p(-rate)
    head = math.lgamma(words + 1)
    tail = sum(
        math.exp(head - math.lgamma(k + 1) - math.lgamma(words - k + 1) + k * lp + (words - k) * lq)
        for k in range(errors, words + 1)
    )
    return tail < SIGNIFICANCE


def line_spans(placements: Sequence[Placement], total_s: float) -> list[tuple[float, float]]:
    """Each line's stretch of the track to hear: its placement with up to MARGIN_S of silence
    before and after, never past half the pause to its neighbours (their words stay out)."""
    spans = []
    for i, p in enumerate(placements):
        lo, hi = p.start_s - MARGIN_S, p.end_s + MARGIN_S
        if i:
            lo = max(lo, (placements[i - 1].end_s + p.start_s) / 2)
        if i + 1 < len(placements):
            hi = min(hi, (p.end_s + placements[i + 1].start_s) / 2)
        lo, hi = max(0.0, lo), min(total_s, hi)
        spans.append((round(lo, 3), round(max(hi, lo), 3)))
    return spans


def narration_clips(
    track: Samples, rate: int, spans: Sequence[tuple[float, float]]
) -> Iterator[SpeechClip]:
    """Each span of the track as 16 kHz FLAC (what transcription sends), one at a time."""
    import numpy as np

    for i, (lo, hi) in enumerate(spans):
        samples = track[round(lo * rate) : round(hi * rate)]
        if rate != SAMPLE_RATE:
            samples = resample_mono(samples, rate, SAMPLE_RATE)
        audio = encode_flac(samples.astype(np.float32) / 32768.0)
        yield SpeechClip(region=i, start_s=lo, end_s=hi, audio=audio)


def onset(track: Samples, rate: int, lo: float, hi: float) -> float | None:
    """Where speech starts in track[lo:hi] (seconds from the track's start), None when nothing
    there is louder than silence. See the module docstring."""
    import numpy as np

    win = max(1, round(WINDOW_S * rate))
    first = round(lo * rate)
    samples = track[first : round(hi * rate)]
    n = len(samples) // win
    if n == 0:
        return None
    frames = samples[: n * win].astype(np.float64).reshape(n, win) / 32768.0
    level = 20 * np.log10(np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 1e-10))
    top = float(np.percentile(level, 95))
    if top < FLOOR_DBFS:
        return None
    loud = (level >= max(FLOOR_DBFS, top - ONSET_RANGE_DB)).astype(np.int32)
    need, within = ONSET_RUN
    runs = np.convolve(loud, np.ones(within, dtype=np.int32))[within - 1 :]
    starts = np.flatnonzero((loud == 1) & (runs >= min(need, n)))
    if len(starts) == 0:
        return None
    return (first + int(starts[0]) * win) / rate


# --- what people read, and the verdict -----------------------------------------------------------


def verify_warnings(found: Verification) -> list[str]:
    """One line per line off, and a summary when anything is off."""
    out = [_problem(line, found) for line in found.lines if not line.ok]
    if not found.ok:
        out.append(f"verify: {summary(found)}")
    return out


def _problem(line: VerifiedLine, found: Verification) -> str:
    parts = []
    if "silent" in line.problems:
        parts.append("no speech in its place on the track")
    if "words" in line.problems:
        wrong = round(line.wer * line.words)
        parts.append(
            f"heard with {wrong} of {line.words} words wrong (word error rate {line.wer:.0%} > "
            f'{found.wer_threshold:.0%}): "{_cut(line.said, 80) or "(nothing)"}"'
        )
    if "onset" in line.problems and line.onset_error_s is not None:
        late = "late" if line.onset_error_s > 0 else "early"
        parts.append(
            f"its speech starts {abs(line.onset_error_s):.2f} s {late} "
            f"(tolerance {found.onset_tolerance_s:g} s)"
        )
    where = f"{line.start_s:.1f}–{line.end_s:.1f} s"
    return f"verify: segment {line.segment} ({where}) " + "; ".join(parts)


def summary(found: Verification) -> str:
    """The verdict in one line."""
    reasons = {
        "lines": f"{found.off} of {len(found.lines)} line(s) off",
        "wer": "too many word errors over all lines",
        "missing": "words missing from the speech",
    }
    verdict = "; ".join(reasons[p] for p in found.problems) or "all lines as written"
    onset = found.max_onset_error_s
    return (
        f"{verdict}: word error rate {found.wer:.0%} (allowed {found.wer_threshold:.0%}), "
        f"{found.heard_words} words heard of {found.words}, with {found.model}"
        + (f"; onsets within {onset:.2f} s" if onset is not None else "")
    )


def verify_failure(found: Verification) -> ApiError:
    """--strict: the run fails (exit 5) on an off verdict, before any output is written."""
    return ApiError(
        f"--verify: {summary(found)}",
        hint="the speech server may drop words, play at the wrong rate or add silence; rerun "
        "without --strict (free: from the cache) for the files and the manifest's verify block",
    )


def plan_verify(plan: Plan, options: VerifyOptions | None, lines: float) -> Plan:
    """`plan` with what hearing its narration back sends and costs (about `lines` lines, each
    with its margins), counted in its totals; unchanged without --verify."""
    if options is None:
        return plan
    n = max(1, math.ceil(lines))
    seconds = round(plan.speech_seconds + 2 * MARGIN_S * n, 1)
    cost = price(options.stt, seconds)
    notes = [*plan.notes, unpriced_note(options.stt, "--verify's")] if cost is None else plan.notes
    return plan.model_copy(
        update={
            "stt_pricing": options.stt.pricing,
            "verify_model": options.stt.model,
            "verify_requests": n,
            "verify_seconds": seconds,
            "verify_cost_usd": cost,
            "cost_usd": total_cost(plan.cost_usd, cost),
            "max_cost_usd": total_cost(plan.max_cost_usd, cost),
            "notes": notes,
        }
    )
