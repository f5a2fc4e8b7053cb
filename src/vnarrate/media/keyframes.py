"""Keyframe index: an open video stream -> its keyframes, looked up where they are needed.

Takes a PyAV container and its video stream; gives KeyIndex (the keyframe at or before and after
any time, each with its showing time, the timestamp a seek asks for and, when the index lists
every frame, its frame number), how many frames the index lists and how many of those the file
holds, and where the frames end. Lookups go through FFmpeg's own search, so an hour-long MP4
(90,000 entries) costs a few calls, not a pass over its index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import av.container
    import av.video.stream


@dataclass(frozen=True)
class Keyframe:
    """A keyframe from the container's index."""

    time_s: float  # when it shows, s from the stream's start
    ts: int  # when it shows, in the stream's time base: what a seek asks for
    ordinal: int | None  # its frame number, when the index lists every frame


@dataclass(frozen=True)
class KeyIndex:
    """The index of one open stream (valid while its container is open)."""

    entries: Any  # av.index.IndexEntries
    start_pts: int
    time_base: float
    count: int  # frames the index lists; 0 when it lists only some (Matroska's cues)
    present: int  # of those, how many lie inside the file
    offset: int = 0  # showing time - index timestamp (MP4 indexes decoding times)

    @classmethod
    def read(
        cls,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        start_pts: int,
        file_size: int,
    ) -> KeyIndex | None:
        """The stream's index, or None when the container has none."""
        import av

        entries = stream.index_entries
        if len(entries) < 2:
            # Matroska loads its cues on the first seek.
            try:
                container.seek(start_pts, stream=stream, backward=True)
            except av.FFmpegError:
                return None
            entries = stream.index_entries
        n = len(entries)
        if n < 2 or entries.search_timestamp(entries[0].timestamp, backward=False) < 0:
            return None
        complete = bool(stream.frames) and n == stream.frames
        last = entries[n - 1]
        # Entries are in file order: when the last one is inside, all are.
        inside = n if last.pos + last.size <= file_size else _inside(entries, file_size)
        tb = float(stream.time_base) if stream.time_base else 1e-6
        index = cls(entries, start_pts, tb, n if complete else 0, inside)
        return cls(entries, start_pts, tb, index.count, inside, index._offset(container, stream))

    def _offset(
        self, container: av.container.InputContainer, stream: av.video.stream.VideoStream
    ) -> int:
        """MP4 indexes keyframes by decoding time, which runs ahead of showing time when there are
        B-frames; Matroska by showing time. The first keyframe's packet tells which."""
        import av

        first = self.entries[self.entries.search_timestamp(self.entries[0].timestamp)]
        try:
            container.seek(first.timestamp, stream=stream, backward=True)
            packet = next(p for p in container.demux(stream) if p.size)
        except (av.FFmpegError, StopIteration):
            return 0
        if packet.pts is None or packet.dts is None or packet.dts != first.timestamp:
            return 0
        return int(packet.pts - packet.dts)

    def _key(self, i: int) -> Keyframe:
        ts = int(self.entries[i].timestamp) + self.offset
        return Keyframe(
            max(0.0, (ts - self.start_pts) * self.time_base), ts, i if self.count else None
        )

    def _search(self, t: float, *, backward: bool) -> Keyframe | None:
        ts = self.start_pts + round(t / self.time_base) - self.offset
        i = self.entries.search_timestamp(ts if backward else ts + 1, backward=backward)
        return self._key(i) if 0 <= i < self.present else None

    def before(self, t: float) -> Keyframe | None:
        """The last keyframe showing at or before `t` (s)."""
        return self._search(t, backward=True)

    def after(self, t: float) -> Keyframe | None:
        """The first keyframe showing after `t` (s)."""
        return self._search(t, backward=False)

    def near(self, times: Iterable[float]) -> list[Keyframe]:
        """The keyframes on either side of each time, sorted: all that snapping and seeking for
        targets at these times look at."""
        found = {k.ts: k for t in times for k in (self.before(t), self.after(t)) if k is not None}
        first = self._search(0.0, backward=False)
        if first is not None:
            found.setdefault(first.ts, first)
        return sorted(found.values(), key=lambda k: k.time_s)

    def end_s(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        frame_pts: int,
    ) -> float | None:
        """Where the frames end: the packets from the last keyframe on, read to the end of the
        file (no decoding). None when they cannot be read."""
        import av

        last = self.before(self._time(self.entries[self.present - 1].timestamp + self.offset))
        if last is None:
            return None
        end: int | None = None
        try:
            container.seek(last.ts, stream=stream, backward=True)
            for packet in container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue
                stop = int(packet.pts) + (int(packet.duration or 0) or frame_pts)
                end = stop if end is None else max(end, stop)
        except av.FFmpegError:
            pass
        return None if end is None else self._time(end)

    def _time(self, ts: int) -> float:
        return (ts - self.start_pts) * self.time_base


def _inside(entries: Any, file_size: int) -> int:
    """How many entries lie inside a file that was cut off (the index promises more)."""
    return sum(1 for e in entries if e.pos + e.size <= file_size)
