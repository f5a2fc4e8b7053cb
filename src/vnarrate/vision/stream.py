"""Streaming: a long video's requests asked while its later frames are still being decoded.

Takes a video path, the SamplingSpec and PackOptions; gives the frames at once (`sample`: scene
sampling, contact sheets, --batch) or a FrameStream (`choose_frames`): the frames sampling will
give, known before any is decoded (media/frames.predict_frames: times and sizes), to plan from,
then the frames of each planned request as decoding gives them (a plan of one request takes
them all, `finish`). Decoding runs in a
background thread (media/frames.sample_frames hands over each frame as soon as it is encoded)
from the moment the flow starts it, while the flow listens, plans and transcribes. Each frame
goes to the planned request its target time falls in, so a frame that fails to decode, or a
keyframe standing in, never moves a request's bounds (a request left without frames is not
asked); a request's frames are ready once a frame of a later request, or the end, shows that
they are all there. vision/ask.py asks each request then, at most `jobs` at a time, so a long
video takes about its decoding plus one request's latency, not their sum.

A failure on either side stops the other: a failed request, or a flow that gives up (a budget
refused), stops decoding at its next frame, and once decoding failed no request leaves. Requests
already in flight end first (one cannot be recalled); no thread is left running.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from ..errors import InputError
from ..media import load_media_libraries
from ..media.frames import Keep, Progress, predict_frames, sample_frames
from ..models import Frame, FrameSet, Plan, SamplingSpec
from .pack import PackOptions, choose_pack
from .plan import thin_frames_note

R = TypeVar("R")
Report = Callable[[str], None]


class Stopped(Exception):
    """The other side failed or gave up: stop here (never reaches the user)."""


def sample(
    path: str,
    spec: SamplingSpec,
    *,
    warn: Report,
    progress: Progress | None = None,
    keep: Keep | None = None,
) -> FrameSet:
    """The frames at once (media/frames), with what the user should know of them said: a
    damaged file, a header that lies, frames too thin to read."""
    if not Path(path).exists():
        raise InputError(f"{path}: no such file")
    chosen = sample_frames(Path(path), spec, progress=progress, keep=keep)
    for note in _notes(path, chosen):
        warn(note)
    return chosen


def _notes(path: str, frames: FrameSet) -> list[str]:
    thin = thin_frames_note(frames.frames)
    return [*frames.warnings, *([f"{path}: {thin}"] if thin else [])]


def choose_frames(
    path: str,
    spec: SamplingSpec,
    pack: PackOptions,
    *,
    warn: Report,
    progress: Progress | None = None,
    hold: bool = True,
    start: bool = False,
    stream: bool = True,
) -> tuple[FrameSet, FrameStream | None]:
    """The frames to plan from, and the stream that will decode them; or the frames sampled at
    once (`sample`) and None, where they cannot go as they come: scene sampling (its frames are
    known at the end of its pass) and contact sheets (a sheet needs the pixels of all its
    frames), and where `stream` is False (--batch replays a flow until every chunk was asked, so
    no failure may stop the others). `start`: decode in the background from now on.
    `hold`: the frames taken keep their JPEG after they were sent (the voiceover's timeline
    picture shows them); else only their times and sizes stay."""
    if stream and spec.mode != "scenes" and Path(path).is_file():
        predicted = predict_frames(path, spec)
        if not choose_pack(pack.mode, len(predicted.frames), pack.max_images):
            ahead = FrameStream(path, spec, predicted, warn=warn, progress=progress, hold=hold)
            if start:
                ahead.start()
            return predicted, ahead
    return sample(path, spec, warn=warn, progress=progress), None


class FrameStream:
    """The frames of one video's planned requests, as decoding gives them (see the module doc).
    Also the chunks vision/ask.py asks (`len`, `span`, `frames`, `run`)."""

    def __init__(
        self,
        path: str,
        spec: SamplingSpec,
        predicted: FrameSet,
        *,
        warn: Report,
        progress: Progress | None,
        hold: bool,
    ) -> None:
        self.path, self.spec, self.predicted = path, spec, predicted
        self._warn, self._progress, self._hold = warn, progress, hold
        self._said = set(_notes(path, predicted))
        for note in _notes(path, predicted):
            warn(note)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._kept: list[Frame] = []  # what the FrameSet holds of every frame decoded
        self._pending: list[Frame] = []  # decoded before the plan was known
        self._starts: list[float] | None = None  # the target of each request's first frame
        self._spans: list[tuple[float, float]] = []
        self._chunks: list[list[Frame]] = []
        self._latest = -1  # the request of the latest frame
        self._done = False
        self._stopping = False
        self._error: Exception | None = None
        self._result: FrameSet | None = None

    # --- decoding ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Decode in a background thread from now on."""
        with self._cond:
            if self._thread is not None or self._done:
                return
            load_media_libraries()
            self._thread = threading.Thread(
                target=self._decode, name="vnarrate-frames", daemon=True
            )
        self._thread.start()

    def _decode(self) -> None:
        result: FrameSet | None = None
        error: Exception | None = None
        try:
            result = sample_frames(self.path, self.spec, progress=self._progress, keep=self._keep)
        except Stopped:
            pass
        except Exception as exc:  # handed to whoever waits for frames
            error = exc
        finally:
            with self._cond:
                self._result, self._error, self._done = result, error, True
                self._cond.notify_all()

    def _keep(self, frame: Frame) -> Frame:
        """A frame as soon as it is encoded: to its request; what the FrameSet holds of it."""
        kept = frame if self._hold else frame.model_copy(update={"jpeg": b""})
        with self._cond:
            if self._stopping:
                raise Stopped
            self._kept.append(kept)
            if self._starts is None:
                self._pending.append(frame)
            else:
                self._file(frame)
            self._cond.notify_all()
        return kept

    def _file(self, frame: Frame) -> None:
        assert self._starts is not None
        target = frame.target_s if frame.target_s is not None else frame.time_s
        k = max(0, bisect.bisect_right(self._starts, target + 1e-9) - 1)
        self._chunks[k].append(frame)
        self._latest = max(self._latest, k)

    @property
    def stopped(self) -> bool:
        """Whether decoding was told to stop (it ends at its next frame)."""
        return self._stopping

    def stop(self) -> None:
        """Stop decoding at its next frame, and every request not yet asked."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop decoding if it still runs and wait for its thread (it ends at its next frame)."""
        with self._cond:
            if not self._done:
                self._stopping = True
                self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    # --- the plan ---------------------------------------------------------------------------------

    def follow(self, plan: Plan) -> bool:
        """Hand the frames to `plan`'s requests (made from `predicted`) as they come. False when
        it has fewer than two: one request needs every frame anyway (see `finish`)."""
        requests = [r for r in plan.requests if r.kind == "frames" and r.first_frame is not None]
        if len(requests) < 2:
            return False
        # make_plan numbers the frames in time order.
        ordered = sorted(self.predicted.frames, key=lambda f: f.time_s)
        with self._cond:
            self._starts = [ordered[r.first_frame or 0].target_s or 0.0 for r in requests]
            self._spans = [(r.start_s, r.end_s) for r in requests]
            self._chunks = [[] for _ in requests]
            for frame in self._pending:
                self._file(frame)
            self._pending = []
            self._cond.notify_all()
        return True

    def finish(self) -> FrameSet:
        """Every frame, whole, once decoding has ended (here, when no thread decodes): for a
        plan of one request, made again from what decoding gave."""
        if self._thread is None:
            self._decode()
        with self._cond:
            while not self._done:
                self._cond.wait()
        if self._error is not None:
            raise self._error
        frames = self._pending
        self._pending = []
        return self.taken().model_copy(update={"frames": frames})

    def taken(self) -> FrameSet:
        """What decoding gave (what it had, when the requests ended before it did), after
        saying what the user should know of it (damaged data, a video shorter than its header
        says)."""
        self.close()
        base = self._result or self.predicted
        for note in base.warnings:
            if note not in self._said:
                self._said.add(note)
                self._warn(note)
        return base.model_copy(update={"frames": list(self._kept)})

    # --- the chunks vision/ask.py asks ----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._spans)

    def span(self, n: int) -> tuple[float, float]:
        """The stretch of time request `n` (from 0) covers, as planned."""
        return self._spans[n]

    def frames(self, n: int) -> list[Frame]:
        """Request `n`'s frames (from 0), once decoding is past them; handed over once (the
        stream holds them no longer). Raises what stopped decoding."""
        with self._cond:
            while not (self._done or self._stopping or self._latest > n):
                self._cond.wait()
            if self._error is not None:
                raise self._error
            if self._stopping:
                raise Stopped
            chunk, self._chunks[n] = self._chunks[n], []
        return chunk

    def run(self, calls: Sequence[Callable[[], R]], jobs: int) -> list[R]:
        """Every call's result, in order, at most `jobs` at a time, each waiting for its frames
        (`frames`). Without a decoding thread, everything is decoded first. The first failure
        stops decoding and the calls not yet started, and is raised once those in flight ended."""
        if not calls:
            return []
        if self._thread is None:
            self._decode()

        def guarded(call: Callable[[], R]) -> R:
            if self._stopping:
                raise Stopped
            return call()

        workers = max(1, min(jobs, len(calls)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vnarrate-ask") as pool:
            futures = [pool.submit(guarded, call) for call in calls]
            ok = False
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
                ok = _failure(futures) is None
            finally:  # a failure, or an interrupt in this thread: nothing more leaves
                if not ok:
                    self.stop()
                    for future in futures:
                        future.cancel()
        failure = _failure(futures)
        if failure is not None:
            raise failure
        return [f.result() for f in futures]


def _failure(futures: Sequence[Future[R]]) -> BaseException | None:
    """The first real failure among the calls that ended (Stopped is only its echo)."""
    ended = [f.exception() for f in futures if f.done() and not f.cancelled()]
    failures = [e for e in ended if e is not None]
    return next((e for e in failures if not isinstance(e, Stopped)), None) or next(
        iter(failures), None
    )


@contextlib.contextmanager
def stopping(stream: FrameStream | None) -> Iterator[None]:
    """Stop `stream`'s decoding when the block fails."""
    try:
        yield
    except BaseException:
        if stream is not None:
            stream.close()
        raise
