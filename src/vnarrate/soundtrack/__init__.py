"""Soundtrack stage: a video's own audio in, where people speak out.

Takes a video path and VadOptions; gives a SpeechMap (speech regions and the gaps between
them, in seconds) so that narration goes only in the gaps, or None when the video has no audio.
Runs offline with no key (Silero VAD on onnxruntime); see `detect.py` for the rule and failures.
"""

from .detect import SoundtrackError, detect_speech, speech_gaps, speech_regions

__all__ = ["SoundtrackError", "detect_speech", "speech_gaps", "speech_regions"]
