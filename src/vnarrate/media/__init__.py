"""Media: OpenCV and PyAV work on pictures and sound; knows nothing of OpenAI.

Probing, frame sampling, shot detection, sheets (one grid renderer), still images, audio
encoding and muxing, and the one timecode formatter.
"""

import os

# FFmpeg inside OpenCV logs decoder complaints ("moov atom not found", "no frame!") straight to
# stderr, and a core module never prints. Set before any media module imports cv2; a user can
# still override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


def load_media_libraries() -> None:
    """Import numpy, PyAV and OpenCV in the calling thread. Call it before starting threads that
    decode: two threads importing them at once can each meet the other's half-initialised module
    (numpy's C core, `av.audio.frame`) and fail with an ImportError at random."""
    import av  # noqa: F401
    import cv2  # noqa: F401
    import numpy  # noqa: F401
