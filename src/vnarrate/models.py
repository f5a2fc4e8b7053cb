"""Data passed between the pipeline's stages: frames, plans, descriptions, scripts, clips, usage.

Every stage takes and returns these pydantic models; none of them knows about click or settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Samples = npt.NDArray[np.int16]

Detail = Literal["low", "high", "auto", "original"]
SampleMode = Literal["stride", "count", "interval", "scenes"]
# The kinds of server vnarrate knows (server/providers.py has one profile for each).
ProviderName = Literal["openai", "ollama", "vllm", "llamacpp", "lmstudio", "compatible"]
# Request choices shared by Settings (which adds "auto" where the server decides) and the stages.
TokenField = Literal["max_completion_tokens", "max_tokens"]
StructuredMode = Literal["json_schema", "json_object", "none"]
PackMode = Literal["none", "grid", "auto"]
ImageUrlMode = Literal["auto", "pass", "download"]
SpeechBackendMode = Literal["auto", "speech", "realtime"]
SubtitleMode = Literal["narration", "dialogue", "both", "off"]  # what the .srt/.vtt show
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]  # reasoning, lowest first
EFFORTS: tuple[Effort, ...] = get_args(Effort)
Task = Literal["describe", "script", "voiceover"]


class VideoInfo(BaseModel):
    """What probing a video found out, with the container's lies already corrected where we can."""

    path: str
    width: int  # as displayed (after rotation)
    height: int
    fps: float
    frame_count: int  # best estimate of decodable frames
    duration_s: float  # of the video stream
    rotation: int = 0  # degrees, as stored in the display matrix
    has_audio: bool = False
    codec: str = ""


class Frame(BaseModel):
    """One sampled frame, resized and JPEG-encoded, ready to send."""

    model_config = ConfigDict(frozen=True)

    index: int  # frame number in decoding order
    time_s: float  # presentation time in seconds
    width: int  # of the encoded JPEG
    height: int
    jpeg: bytes = Field(repr=False, exclude=True)
    shot: int | None = None  # shot number when sampling by scenes
    # The time the sampling rule asked for, and whether the nearest keyframe stood in for it
    # (time_s is always the picture's own time; see media/targets.py for the snapping rule).
    target_s: float | None = None
    snapped: bool = False
    # A contact sheet (pack.py): the time of each tile, in reading order, and (columns, rows).
    tiles_s: list[float] | None = None
    grid: tuple[int, int] | None = None


class FrameSet(BaseModel):
    """The frames chosen from one video, in chronological order, and how they were chosen."""

    video: VideoInfo
    frames: list[Frame]
    mode: SampleMode
    shot_starts_s: list[float] = Field(default_factory=list)  # scene sampling only
    # What went wrong but did not stop sampling, for people (damaged data, a header that lies).
    warnings: list[str] = Field(default_factory=list)


class Usage(BaseModel):
    """Tokens a request (or a sum of requests) used, as the API reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            requests=self.requests + other.requests,
        )


class Description(BaseModel):
    """What the model returns for `describe` (structured output schema)."""

    title: str = Field(description="A short, specific title for the video, at most 12 words.")
    description: str = Field(description="The description, in markdown paragraphs.")


class Segment(BaseModel):
    """One narration line and the slot of the video it belongs to."""

    start_s: float = Field(ge=0, description="When the line starts, in seconds from the start.")
    end_s: float = Field(ge=0, description="When the slot for this line ends, in seconds.")
    text: str = Field(description="The words to speak.")

    @field_validator("text")
    @classmethod
    def _strip(cls, v: str) -> str:
        return " ".join(v.split())


class Script(BaseModel):
    """A timed narration script (structured output schema, and the `script.json` file format)."""

    title: str
    language: str = Field(description="BCP 47 language tag of the narration, e.g. 'en'.")
    segments: list[Segment]


class ChatResult(BaseModel):
    """One or more chat requests' parsed answer with the usage they cost."""

    model: str
    usage: Usage = Field(default_factory=Usage)
    requests: int = 1
    cost_usd: float | None = None  # from the API's usage and the price table; None: unknown


class DescribeResult(ChatResult):
    """The product of `describe`."""

    input: str
    title: str
    description: str
    frames_sent: int
    frame_times_s: list[float] = Field(default_factory=list)
    soundtrack: Soundtrack | None = None  # what was heard (None: no audio, or not listened to)


class Clip(BaseModel):
    """Synthesized speech for one segment: mono 16-bit PCM at `sample_rate`."""

    model_config = ConfigDict(frozen=True)

    segment: int
    text: str
    pcm: bytes = Field(repr=False, exclude=True)
    sample_rate: int = 24000
    speed: float = 1.0  # the TTS speed it was synthesized at

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class Placement(BaseModel):
    """Where a clip ended up on the timeline after fitting (the source of subtitles)."""

    segment: int
    text: str
    start_s: float
    end_s: float
    slot_start_s: float
    slot_end_s: float
    speed: float = 1.0  # TTS speed used
    stretch: float = 1.0  # time-stretch factor applied (>1 = faster)
    pushed_s: float = 0.0  # how much later than its slot it starts
    # --- narration in the gaps ---
    cut: bool = False  # cut at a sentence end to fit its gap (`text` is what is spoken)
    over_speech_s: float = 0.0  # seconds of it over detected speech (--over-speech duck)


class SamplingSpec(BaseModel):
    """How to choose frames from a video and how to prepare them (the frames stage's options;
    session/options.py builds it from Settings, where the defaults and bounds live).

    Exactly one of stride / count / every applies, chosen by `mode`; `max_frames` caps the result
    by spreading the kept frames evenly.
    """

    model_config = ConfigDict(frozen=True)

    mode: SampleMode
    stride: int
    count: int
    every_s: float
    max_frames: int
    resize: int  # max side in px; 0 keeps full size
    jpeg_quality: int
    scene_threshold: float
    exact_times: bool  # False: a target may take the nearest keyframe (media/targets.py)


class ShortenedLine(BaseModel):
    """One line back from the shortening request."""

    id: int
    text: str


class ShortenedLines(BaseModel):
    """Structured output schema of the shortening request."""

    lines: list[ShortenedLine]


class ScriptResult(ChatResult):
    """The product of `script`: the repaired script and what repairing it did."""

    input: str
    script: Script
    duration_s: float
    frames_sent: int
    notes: list[str] = Field(default_factory=list)
    over_budget: list[int] = Field(default_factory=list)  # still too long after shortening
    # --- narration in the gaps ---
    shortened: int = 0  # lines the shortening request rewrote to fit their gap
    speech_characters: int = 0  # speech billed while writing it (measuring the voice's pace)
    words_per_second: float | None = None  # the pace the word budgets assumed
    pace_source: str = ""  # where that pace came from (measured, the setting, the default)
    # What the run heard and saw, kept in memory for the voiceover (never serialized).
    soundtrack: Soundtrack | None = Field(default=None, exclude=True, repr=False)
    frames: list[Frame] = Field(default_factory=list, exclude=True, repr=False)


class OutputFile(BaseModel):
    """A file a run wrote, as recorded in the run manifest (used by --skip-existing)."""

    kind: str
    path: str
    bytes: int
    sha256: str


class VoiceoverResult(BaseModel):
    """The product of `voiceover`: the narration's script and timings, the files written (the
    runs layer adds them) and what fitting the speech did."""

    input: str
    script: Script
    placements: list[Placement]
    outputs: list[OutputFile] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    speech_characters: int = 0
    speech_backend: str = ""
    voice: str = ""  # the voice that spoke (another than asked when `auto` fell back to Realtime)
    duration_s: float = 0.0
    audio_s: float = 0.0
    notes: list[str] = Field(default_factory=list)
    cost_usd: float | None = None  # chat + speech; None when a price is unknown
    # --- narration in the gaps: what fitting the lines did, counted in lines ---
    over_speech: str = "avoid"  # --over-speech: avoid (in the gaps) or duck; or "untimed"
    words_per_second: float | None = None  # the voice's pace the budgets assumed
    pace_source: str = ""
    speech_regions: int = 0  # stretches of speech detected in the video's own audio
    speech_s: float = 0.0  # their total length
    lines: int = 0  # lines in the script
    placed: int = 0  # lines on the track
    placed_in_gaps: int = 0  # of them, clear of detected speech
    shortened: int = 0  # rewritten shorter (one request) before any speech was paid for
    sped_up: int = 0  # spoken faster (and really shorter) or time-stretched
    cut: int = 0  # cut at a sentence end
    dropped: list[int] = Field(default_factory=list)  # segments left out: no room for them
    seconds_over_speech: float = 0.0  # narration over detected speech (0 unless duck)
    verify: Verification | None = None  # --verify: the narration heard back (None: not asked)


@dataclass
class Voiceover:
    """A voiceover in memory, before any file is written: the result and its audio track
    (mono int16 at `sample_rate`, exactly as long as the video unless speech ran past its end),
    with what the run heard (the soundtrack) and saw (frames) for the timeline picture."""

    result: VoiceoverResult
    track: Samples
    sample_rate: int
    soundtrack: Soundtrack | None = None
    frames: list[Frame] = field(default_factory=list)


class PlanLimits(BaseModel):
    """Per-request caps a plan keeps every request under (the plan stage's options)."""

    model_config = ConfigDict(frozen=True)

    max_images_per_request: int = Field(ge=1)
    max_input_tokens: int = Field(ge=1)
    max_request_bytes: int = Field(ge=1)
    max_output_tokens: int = Field(ge=1)  # max_completion_tokens of each request


class PlannedRequest(BaseModel):
    """One chat request of a plan: which frames (a contiguous time range) and what it costs."""

    index: int  # 1-based, in the order the requests are sent
    kind: Literal["frames", "merge"]  # merge: the text-only request joining chunk descriptions
    first_frame: int | None = None  # 0-based indexes into Plan.frame_times_s, inclusive
    last_frame: int | None = None
    images: int = 0
    start_s: float = 0.0  # the part of the video this request covers
    end_s: float = 0.0
    image_tokens: int = 0
    text_tokens: int = 0  # prompt text, timestamps, context, message framing
    input_tokens: int = 0
    expected_output_tokens: int = 0
    max_output_tokens: int = 0
    request_bytes: int = 0
    cost_usd: float | None = None  # with the expected output; None: no price for the model
    max_cost_usd: float | None = None  # if the request used its whole output budget


class Plan(BaseModel):
    """What a run would send and cost, worked out offline (`vnarrate plan`, `--dry-run`)."""

    input: str = ""
    task: Task = "describe"
    model: str
    provider: str = "openai"
    detail: str = "auto"
    duration_s: float = 0.0
    frame_times_s: list[float] = Field(default_factory=list)
    shot_starts_s: list[float] = Field(default_factory=list)
    frame_width: int = 0  # of the first frame (all frames of a run share one size)
    frame_height: int = 0
    image_tokens_per_frame: int = 0
    image_rule: str = ""  # the documented rule applied, e.g. "gpt-5.4 patch-based, high: ..."
    image_rule_known: bool = True  # False: the model is unknown and image_rule was assumed
    limits: PlanLimits | None = None  # None: no chat request (voiceover --script)
    requests: list[PlannedRequest] = Field(default_factory=list)
    chunks: int = 0  # requests with frames
    input_tokens: int = 0
    expected_output_tokens: int = 0
    max_output_tokens: int = 0
    chat_cost_usd: float | None = None
    max_chat_cost_usd: float | None = None
    speech_model: str | None = None
    speech_characters: int = 0
    speech_seconds: float = 0.0
    speech_cost_usd: float | None = None
    cost_usd: float | None = None  # chat + speech, expected; None when any part is unknown
    max_cost_usd: float | None = None  # chat at full output budgets + speech
    prices_as_of: str = ""
    # Pricing by server (issue 12): "table" (OpenAI's prices), "free" (a local server) or
    # "unknown" (another server, unless the user's prices file names the model).
    chat_pricing: str = "table"
    speech_pricing: str = "table"
    stt_pricing: str = "table"  # of the speech-to-text server (transcription and --verify)
    notes: list[str] = Field(default_factory=list)
    # The soundtrack (issue 11): where people speak, and what transcribing it would send and cost.
    soundtrack: SpeechMap | None = None  # None: not listened to (no audio track, or not asked)
    transcription_model: str | None = None  # None: nothing would be transcribed
    transcription_requests: int = 0
    transcription_seconds: float = 0.0  # of audio sent
    transcription_cost_usd: float | None = None
    # --verify (issue 11): the narration heard back through speech-to-text, one request a line.
    verify_model: str | None = None  # None: not verified
    verify_requests: int = 0
    verify_seconds: float = 0.0  # of narration sent, margins included
    verify_cost_usd: float | None = None


# --- soundtrack: where people speak in a video's own audio --------------------------------------


class VadOptions(BaseModel):
    """How speech probabilities become speech regions (the soundtrack stage's options).

    No defaults here: they live once in Settings (the `# --- soundtrack ---` block)."""

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(gt=0, lt=1)  # a 32 ms window at or above it starts speech
    min_speech_s: float = Field(ge=0)  # shorter bursts (a cough, a drum hit) are dropped
    min_silence_s: float = Field(ge=0)  # shorter pauses do not split speech
    pad_s: float = Field(ge=0)  # added before and after each region


class AudioTrack(BaseModel):
    """The audio stream a stage listened to."""

    index: int  # stream index in the container
    codec: str
    sample_rate: int
    channels: int
    layout: str
    language: str | None = None


class SpeechMap(BaseModel):
    """Where people speak in a video's audio: merged speech regions and every gap between them.

    Times are seconds from the start of the file. `gaps` is the complement of `regions` in
    [0, duration_s], lead-in and tail included, however short (callers filter by length)."""

    duration_s: float
    regions: list[tuple[float, float]]
    gaps: list[tuple[float, float]]
    speech_s: float  # total length of the regions
    detector: str  # name and version of the voice-activity detector
    track: AudioTrack
    warnings: list[str] = Field(default_factory=list)


class SpokenLine(BaseModel):
    """One stretch of what is said in the soundtrack, placed by the speech detector's times."""

    start_s: float
    end_s: float
    text: str = ""  # empty until transcribed
    speaker: str | None = None


class Soundtrack(BaseModel):
    """What the video's own audio holds: where people speak (always, offline) and, when it was
    transcribed, what they say. The pipeline's `listen` step gives it; None means no audio."""

    speech: SpeechMap
    lines: list[SpokenLine] = Field(default_factory=list)  # one per speech region, in time order
    transcribed: bool = False
    warnings: list[str] = Field(default_factory=list)
    transcription_model: str | None = None  # what transcribed it
    transcription_requests: int = 0  # sent to the server (cache hits are not)
    transcription_seconds: float = 0.0  # of audio sent: what is billed
    transcription_cost_usd: float | None = 0.0  # None: no price for the model


# --- --verify: the narration heard back (issue 11) ------------------------------------------


class VerifiedLine(BaseModel):
    """One narration line as a speech recogniser heard it back from the track."""

    segment: int  # numbered from 1, as in messages and the record's placements
    start_s: float  # placed
    end_s: float
    words: int  # in the line as spoken (after normalizing: digits spelled out)
    heard_words: int  # in what the recogniser heard
    wer: float  # word error rate of what was heard against the line
    said: str  # what the recogniser heard (long answers cut)
    onset_s: float | None  # where its speech really starts in the track (None: no speech)
    onset_error_s: float | None  # onset_s - start_s
    ok: bool
    problems: list[str] = Field(default_factory=list)  # "words", "onset", "silent"


class Verification(BaseModel):
    """--verify: every placed line heard back, and the verdict (`ok`)."""

    model: str  # the speech-to-text model that listened
    wer_threshold: float  # the word error rate a line may have (recogniser and voice together)
    onset_tolerance_s: float
    lines: list[VerifiedLine]
    off: int  # lines with a problem
    words: int  # in all lines
    heard_words: int
    wer: float  # all lines together
    max_onset_error_s: float | None  # the largest |onset error| (None: no speech found)
    requests: int  # sent (cache hits are not)
    seconds: float  # of audio sent: what is billed
    cost_usd: float | None  # None: no price for the model
    ok: bool  # no problem
    # "lines" (some line off), "wer" (all lines together err too much), "missing" (far fewer
    # words heard than written: words dropped)
    problems: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


# ScriptResult refers to Soundtrack, defined below it; VoiceoverResult to Verification.
ScriptResult.model_rebuild()
VoiceoverResult.model_rebuild()
