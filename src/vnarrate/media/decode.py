"""Decoding: an open video and its Targets -> the decoded picture of each target, in order.

Takes a PyAV container, its Probe, the keyframes around the targets (KeyIndex.near) and the
Targets; gives Pictures (the av.VideoFrame, its own time and frame number). Per target it reads
on from where it is or seeks to the keyframe before it, whichever decodes fewer frames; a target
that snapped to a keyframe costs that one frame after a seek. Packets are held back until it is
certain which frame each one shows (a later packet in decoding order can show earlier), then
sent with `skip_frame` set so that the decoder skips the frames nothing refers to (most
B-frames) unless a target wants them: reading on costs the reference frames, not every frame.
Damaged packets are counted, never fatal."""

from __future__ import annotations

import bisect
import contextlib
import heapq
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .keyframes import Keyframe
from .probe import Probe
from .targets import Target, seek_pays

if TYPE_CHECKING:
    import av
    import av.container
    import av.video.stream

# Without a keyframe index, assume x264's default keyframe interval.
DEFAULT_GOP_FRAMES = 250
# H.264 and HEVC reorder at most 16 frames: without decoding times, hold back this many packets.
_MAX_REORDER = 16
# A seek that lands this much after the keyframe it asked for has not worked (a broken index).
_LATE_S = 1.0
# Decoders that read `skip_frame` as each packet goes in, so that it can change from packet to
# packet. Wrappers that decode on their own threads (libdav1d for AV1) apply it when a frame
# comes out, long after: they decode everything.
_SKIP_PER_PACKET = {"h264", "hevc", "vp8", "vp9", "mpeg1video", "mpeg2video", "mpeg4"}


@dataclass
class Picture:
    """The decoded frame for target number `target`: its own time (s) and frame number."""

    target: int
    frame: av.VideoFrame
    time_s: float
    index: int


@dataclass
class _Held:
    packet: av.Packet[Any]
    pts: int


@dataclass
class _Run:
    """What the decoder has seen since it last started (at the file's start or after a seek)."""

    base: int | None  # frame number of the first frame shown, when known
    pts_seen: list[int] = field(default_factory=list)  # heap: pts not yet behind an output frame
    behind: int = 0  # frames shown before the last frame that came out
    watermark: int | None = None  # no packet still to come shows before this pts


@dataclass
class _Goal:
    """Target k: the first frame at or after `pts`, or the frame numbered `index`."""

    k: int
    pts: int
    index: int | None


class Decoder:
    """Decodes the targets of one video from an open container (see the module doc)."""

    def __init__(
        self,
        container: av.container.InputContainer,
        probe: Probe,
        keyframes: list[Keyframe] | None,
    ) -> None:
        self.container = container
        self.probe = probe
        self.keyframes = keyframes  # sorted: those around the targets (KeyIndex.near)
        self._key_times = [k.time_s for k in keyframes or []]
        # Frame numbers guessed from times count from the first frame, which may show after the
        # stream's start (AVI with B-frames: one frame late).
        self._origin = keyframes[0].time_s if keyframes and keyframes[0].ordinal == 0 else 0.0
        self.stream: av.video.stream.VideoStream = container.streams.video[probe.stream_index]
        self._skips = self.stream.codec_context.name in _SKIP_PER_PACKET
        self.fps = probe.info.fps
        self.half = 0.5 / self.fps
        self.errors: list[float] = []  # times of frames lost to damaged packets
        self.read_error: str | None = None  # why reading stopped before the end, if it did
        self.seeks = 0
        self.seekable = True
        self.ended = False  # reading reached the end of the video
        self.frame_count: int | None = None  # frames counted from the start to the end
        self.end_s: float | None = None  # where the frames end, once reading reached the end
        self._latest = -math.inf  # time of the latest frame that came out
        self._demux: Iterator[av.Packet[Any]] | None = None
        self._held: deque[_Held] = deque()  # read, not yet sent
        self._out: deque[av.VideoFrame] = deque()  # decoded, not yet taken
        self._run = _Run(base=0)
        self._goals: list[_Goal] = []
        self._goal_pts: list[int] = []  # ascending, as the targets are
        self._indices: dict[int, int] = {}  # frame number -> target, for stride sampling
        self._fresh = True  # nothing sent since the file was opened
        # The decoder may go on (not drained since it last started). Probing left the container
        # somewhere: the first target seeks.
        self._clean = False
        self._need_key = False  # references lost: skip packets up to the next keyframe
        self._settled = False  # a frame came out since the decoder last started
        self._here = -math.inf  # time of the last packet sent, s
        self._last: Picture | None = None  # the latest frame that came out, not taken
        self._last_errors = 0  # damaged packets met before it came out
        self._eof = False

    # --- time and frame numbers ------------------------------------------------------------------

    def time_of(self, pts: int) -> float:
        return (pts - self.probe.start_pts) * self.probe.time_base

    def pts_of(self, t: float) -> int:
        return self.probe.start_pts + math.floor(t / self.probe.time_base + 0.5)

    def _index(self, pts: int) -> int:
        """Frame number of the frame at `pts`, once every packet showing before it was read."""
        run = self._run
        if run.base is None:
            return max(0, round((self.time_of(pts) - self._origin) * self.fps))
        return run.base + run.behind + sum(1 for p in run.pts_seen if p < pts)

    def _passed(self, pts: int) -> None:
        """A frame at `pts` came out: every frame showing before it is behind us for good."""
        run = self._run
        while run.pts_seen and run.pts_seen[0] < pts:
            heapq.heappop(run.pts_seen)
            run.behind += 1

    # --- choosing: read on or seek ---------------------------------------------------------------

    def goal_time(self, target: Target) -> float:
        """A target's frame is the first one from this time on (half a frame before it)."""
        return (target.key_s if target.key_s is not None else target.time_s) - self.half

    def keyframe_for(self, goal: float) -> Keyframe | None:
        """The last keyframe at or before the goal's frame (None: no index)."""
        if not self.keyframes:
            return None
        i = bisect.bisect_right(self._key_times, goal + self.half + 1e-6) - 1
        return self.keyframes[max(i, 0)]

    def should_seek(self, here: float, goal: float) -> bool:
        """Seek when decoding from the keyframe before the goal, plus the seek itself, costs
        fewer frames than decoding on from `here` (targets.seek_pays)."""
        if not self.seekable:
            return False
        key = self.keyframe_for(goal)
        if key is None:
            gop = DEFAULT_GOP_FRAMES / self.fps
            key_s = math.floor(max(goal, 0.0) / gop) * gop
        else:
            key_s = key.time_s
        return seek_pays(here, key_s, goal, self.fps)

    # --- the loop ----------------------------------------------------------------------------------

    def pictures(self, targets: Sequence[Target]) -> Iterator[Picture]:
        """The picture for each target, in order. A target that falls on the frame the one before
        it took gives none; so do targets past the end once the last frame was taken."""
        goals = [self.goal_time(t) for t in targets]
        self._goals = [
            _Goal(k, self.pts_of(g), t.index if t.key_s is None else None)
            for k, (g, t) in enumerate(zip(goals, targets, strict=True))
        ]
        self._goal_pts = [g.pts for g in self._goals]
        self._indices = {g.index: g.k for g in self._goals if g.index is not None}
        taken: tuple[int, int] | None = None  # (pts, frame number) of the last frame taken
        for k, goal in enumerate(goals):
            if taken is not None and self._same(self._goals[k], *taken):
                continue  # two targets, one frame
            if self.ended and not self._out and self._last is None:
                break
            here = -math.inf if self._fresh else self._here
            if not self._clean or self.should_seek(here, goal):
                self._seek(goal)
            nxt = goals[k + 1] if k + 1 < len(goals) else None
            picture = self._find(k, nxt)
            if picture is None:
                break
            pts = self.pts_of(picture.time_s)
            if taken is not None and (pts <= taken[0] or picture.index <= taken[1]):
                continue
            taken = (pts, picture.index)
            yield picture

    def _same(self, goal: _Goal, pts: int, index: int) -> bool:
        """Whether the frame last taken is this target's frame too."""
        if goal.index is not None and self._run.base is not None:
            return goal.index <= index
        return goal.pts <= pts

    def _find(self, k: int, nxt: float | None) -> Picture | None:
        """Decode on until target k's frame comes out (or the video ends)."""
        goal = self._goals[k]
        by_index = goal.index is not None and self._run.base is not None
        sent_own = False
        while True:
            while self._out:
                frame = self._out.popleft()
                pts = int(frame.pts or 0)  # frames without one never enter _out
                self._passed(pts)
                picture = Picture(k, frame, round(self.time_of(pts), 6), self._index(pts))
                if (picture.index >= (goal.index or 0)) if by_index else pts >= goal.pts:
                    return self._nearer(picture, goal)
                self._last, self._last_errors = picture, len(self.errors)
            if not self._clean:
                if self._eof:
                    last, self._last = self._last, None
                    if last is not None:
                        last.target = k
                    return last
                # Drained for this target and its frame did not come out (a damaged packet):
                # go on from the next keyframe, the first frame that decodes whole.
                self.stream.codec_context.flush_buffers()
                self._clean, self._need_key = True, True
            item = self._release()
            if item is None:
                self._drain()
                continue
            own = not sent_own and self._wanted_by(item, k, only_own=True)
            self._send(item, keep=own or self._wanted_by(item, k, only_own=False))
            # Once the packet holding this target went in, push it out by draining when the
            # next target seeks anyway, rather than decoding frames nobody wants.
            if own:
                sent_own = True
                if nxt is None or self.should_seek(self._here, nxt):
                    self._drain()

    def _nearer(self, found: Picture, goal: _Goal) -> Picture:
        """Where damage lost the frames around a target, the picture just before the goal may be
        nearer than the first one after it; the other stays for the next target."""
        last = self._last
        if last is None or len(self.errors) == self._last_errors:
            return found
        before = goal.pts - self.pts_of(last.time_s)
        if before >= self.pts_of(found.time_s) - goal.pts:
            return found
        self._out.appendleft(found.frame)
        self._last = None
        last.target = found.target
        return last

    def _wanted_by(self, item: _Held, k: int, *, only_own: bool) -> bool:
        """Whether target k (only_own) or any target from k on will take this packet's frame:
        the frame with its number, or the first frame at or after its time."""
        if self._run.base is not None and self._indices:
            rank = self._index(item.pts)
            j = self._indices.get(rank)
            if j is not None and (j == k if only_own else j >= k):
                return True
        # The last target whose goal is at or before this frame.
        j = bisect.bisect_right(self._goal_pts, item.pts) - 1
        if j < k or (only_own and j != k):
            return False
        goal = self._goals[j]
        if goal.index is not None and self._run.base is not None:
            return False  # that target goes by frame number
        # The first frame at or after the goal, if no packet read so far shows between.
        return not any(goal.pts <= p < item.pts for p in self._run.pts_seen)

    # --- packets in, frames out --------------------------------------------------------------------

    def _next_packet(self) -> av.Packet[Any] | None:
        import av

        if self._demux is None:
            self._demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(self._demux)
            except StopIteration:
                return None
            except av.FFmpegError as e:
                self.read_error = str(e)
                return None
            if packet.size and packet.pts is not None:
                return packet
            if not packet.size and packet.pts is None and packet.dts is None:
                return None  # the demuxer's end-of-stream marker

    def _release(self) -> _Held | None:
        """The next packet in decoding order once it is certain which frame it shows: every packet
        showing before it has been read (decoding times never go back, nor come after showing)."""
        run = self._run
        while not self._eof:
            head = self._held[0] if self._held else None
            if head is not None and (
                (run.watermark is not None and run.watermark >= head.pts)
                or len(self._held) > _MAX_REORDER
            ):
                break
            packet = self._next_packet()
            if packet is None:
                self._eof = True
                break
            pts = int(packet.pts or 0)  # _next_packet passes only packets with one
            heapq.heappush(run.pts_seen, pts)
            if packet.dts is not None:
                run.watermark = int(packet.dts)
            elif not self.stream.codec_context.has_b_frames:
                run.watermark = pts
            self._held.append(_Held(packet, pts))
        return self._held.popleft() if self._held else None

    def _send(self, item: _Held, *, keep: bool) -> None:
        """Decode a packet; unless a target wants it, the decoder may skip it when no other frame
        refers to it."""
        import av

        ctx = self.stream.codec_context
        if self._need_key:
            if not item.packet.is_keyframe:
                if self._settled:
                    self.errors.append(self.time_of(item.pts))  # lost with the damaged one
                return
            self._need_key = False
        want: Literal["DEFAULT", "NONREF"] = "DEFAULT" if keep or not self._skips else "NONREF"
        if ctx.skip_frame != want:
            ctx.skip_frame = want
        self._here = self.time_of(item.pts)
        self._fresh = False
        try:
            self._took(ctx.decode(item.packet))
        except av.FFmpegError:
            # Before the first frame after a seek, a failure is the seek landing between
            # keyframes (a container without an index), not damage.
            if self._settled:
                self.errors.append(self.time_of(item.pts))
            self._recover()

    def _recover(self) -> None:
        """After a packet failed: the frames already in the decoder out, then start again at the
        next keyframe (the frames that refer to the lost one would come out patched with wrong
        pictures, and frame threads report a failure late, on a later packet)."""
        import av

        ctx = self.stream.codec_context
        with contextlib.suppress(av.FFmpegError):
            self._took(ctx.decode(None))
        ctx.flush_buffers()
        self._need_key = True

    def _took(self, frames: list[av.VideoFrame]) -> None:
        self._settled = self._settled or bool(frames)
        for f in frames:
            if f.pts is not None:
                self._out.append(f)
                self._latest = max(self._latest, self.time_of(int(f.pts)))

    def _drain(self) -> None:
        """Everything still inside the decoder out; it must start again before the next packet."""
        import av

        if not self._clean:
            return
        self._clean = False
        with contextlib.suppress(av.FFmpegError):
            self._took(self.stream.codec_context.decode(None))
        if self._eof:
            self.ended = True
            if self._latest > -math.inf:
                self.end_s = self._latest + 1.0 / self.fps
            if self._run.base == 0:
                run = self._run
                self.frame_count = run.behind + len(run.pts_seen)

    def _seek(self, goal: float) -> None:
        """Start again from the keyframe before the goal (PyAV flushes the decoder)."""
        import av

        self.seeks += 1
        key = self.keyframe_for(goal)
        if key is None:
            gop = DEFAULT_GOP_FRAMES / self.fps
            at = self.pts_of(math.floor(max(goal, 0.0) / gop) * gop)
            ts = at if self.seekable else self.probe.start_pts
        else:
            ts = key.ts if self.seekable else self.probe.start_pts
        try:
            self._restart(ts)
        except av.FFmpegError:
            self.seekable = False  # a container that cannot seek there: read from the start
            self._restart(self.probe.start_pts)
        if not self.seekable:
            return
        head = self._release()
        expected = key.time_s if key is not None else self.time_of(ts)
        if head is not None and self.time_of(head.pts) <= max(expected, goal) + _LATE_S:
            self._held.appendleft(head)
            if key is not None and key.ordinal is not None and head.pts == key.ts:
                self._run.base = key.ordinal
            self._here = self.time_of(head.pts)
            return
        # The seek landed late (a broken index or broken times): read from the start instead.
        self.seekable = False
        with contextlib.suppress(av.FFmpegError):
            self._restart(self.probe.start_pts)

    def _restart(self, ts: int) -> None:
        self.container.seek(ts, stream=self.stream, backward=True)
        self.stream.codec_context.flush_buffers()
        self._demux = None
        self._held.clear()
        self._out.clear()
        self._eof = False
        self._clean = True
        self._need_key = False
        self._settled = False
        self._last = None
        self._fresh = ts <= self.probe.start_pts
        self._run = _Run(base=0 if self._fresh else None)
        self._here = -math.inf if self._fresh else self.time_of(ts)
