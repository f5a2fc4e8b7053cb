"""Encoding: a decoded frame -> the JPEG that is sent, at the size and the way up it is shown.

Takes PyAV frames and the video's displayed size and rotation; gives JPEG bytes. One swscale
call, with a context kept between frames, shrinks and converts to BGR together (area averaging;
under 1 ms at 720p, against ~5 ms for converting at full size and shrinking after, and 41 dB
from OpenCV's INTER_AREA, closer than JPEG q85 itself: BENCHMARKS.md),
numpy turns the picture upright (PyAV never rotates), libjpeg-turbo (OpenCV) encodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError
from ..models import SamplingSpec, VideoInfo

if TYPE_CHECKING:
    import av
    import numpy as np
    import numpy.typing as npt

    Image = npt.NDArray[np.uint8]


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size a frame is sent at: shrunk to fit `max_side` (0 = as is), aspect kept, never
    enlarged."""
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class FrameEncoder:
    """Frames of one video -> JPEG bytes at `size` (width, height as shown); cv2 and numpy bound
    once per video, not per frame."""

    def __init__(self, info: VideoInfo, spec: SamplingSpec) -> None:
        import cv2
        import numpy as np
        from av.video.reformatter import VideoReformatter

        self.cv2, self.np = cv2, np
        # One reformatter keeps its swscale context between frames: 0.6 ms a frame at 720p,
        # against 1-6 ms (up to 13 under load) when every frame.reformat() sets up a new one.
        self.reformatter = VideoReformatter()
        self.size = scaled_size(info.width, info.height, spec.resize)
        self.turns = (info.rotation // 90) % 4  # quarter turns counter-clockwise
        self.params = [cv2.IMWRITE_JPEG_QUALITY, int(spec.jpeg_quality)]

    def bgr(self, frame: av.VideoFrame) -> Image:
        """The frame as an upright BGR array at the sent size."""
        w, h = self.size
        if self.turns % 2:
            w, h = h, w  # the stored picture is on its side
        shrink = w < frame.width or h < frame.height
        small = self.reformatter.reformat(
            frame, width=w, height=h, format="bgr24", interpolation="AREA" if shrink else "BILINEAR"
        )
        img: Image = self.np.asarray(small.to_ndarray(), dtype=self.np.uint8)
        if self.turns:
            img = self.np.ascontiguousarray(self.np.rot90(img, self.turns))
        return img

    def jpeg(self, frame: av.VideoFrame) -> bytes:
        ok, buf = self.cv2.imencode(".jpg", self.bgr(frame), self.params)
        if not ok:
            raise InputError("could not encode a frame as JPEG")
        return bytes(buf.tobytes())
