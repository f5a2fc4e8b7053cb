"""Soundtrack stage: a video's own audio in, where people speak and what they say out.

detect.py     a path and VadOptions -> a SpeechMap (speech regions and the gaps between them, in
              seconds), or None when the video has no audio; offline, no key (Silero VAD on
              onnxruntime). Narration goes only in the gaps.
clips.py      the speech regions -> each as a small 16 kHz FLAC file, ready to upload.
transcribe.py the clips -> /v1/audio/transcriptions, one request per region -> one SpokenLine per
              region on the detector's times; plus what a plan says transcription costs.
"""

from .detect import SoundtrackError, detect_speech, speech_gaps, speech_in, speech_regions

__all__ = ["SoundtrackError", "detect_speech", "speech_gaps", "speech_in", "speech_regions"]
