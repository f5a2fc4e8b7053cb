"""Session: StageOptions plus the clients, cache and speech backend one run shares.

Takes validated Settings; gives, for the commands that call a server, a Session (the stage
options of `options.py`, one client, the key for redaction, the response cache and the speech
backend, chosen on first use). The stage options are re-exported here: callers import both from
`vnarrate.session`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, VnarrateError
from ..models import Placement, Soundtrack, SpeechMap, Usage, Verification
from ..narration.backend import BackendChoice, choose_backend
from ..narration.pace import Pace, find_pace
from ..narration.speech import CachedSpeech
from ..narration.verify import summary, verify_failure, verify_narration, verify_warnings
from ..server.cache import ResponseCache
from ..server.client import make_client
from ..server.memory import ServerMemory
from ..settings import Settings
from ..soundtrack.clips import SpeechClip
from ..soundtrack.transcribe import (
    NoTranscriptionEndpoint,
    Transcript,
    transcribe,
    transcribe_clips,
    with_transcript,
)
from ..vision.chat import ChatOptions, complete
from ..vision.tokens import image_tokens_from_usage, resolve_model

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import openai

    Samples = npt.NDArray[np.int16]

from .options import (
    FIX_FIELDS,
    NO_KEY,
    Report,
    StageOptions,
    T,
    _quiet,
    api_key,
    check_speech,
    memory,
    open_cache,
    sampling_spec,
    speech_key,
    speech_model,
    stage_options,
    stt_key,
)


@dataclass
class Session:
    """What every input of one run shares: the stage options, one client, the key (for
    redaction), the response cache, where diagnostics go, and the speech backend."""

    options: StageOptions
    client: openai.OpenAI
    key: str
    cache: ResponseCache | None = None
    report: Report = _quiet  # what happens (--verbose)
    warn: Report = _quiet  # what the user should know
    memory: ServerMemory | None = None  # remembered fixes and learned image tokens
    _speech: BackendChoice | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _chat: ChatOptions | None = field(default=None, repr=False)  # after a fix worked this run
    _learned: set[str] = field(default_factory=set, repr=False)
    _pace: Pace | None = field(default=None, repr=False)
    _pace_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pace_tried: bool = field(default=False, repr=False)  # a measure was allowed once already
    # At most --jobs chat requests in flight for the whole run, whether they come from several
    # inputs or from the chunks of one long video.
    _slots: threading.BoundedSemaphore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(max(1, self.options.jobs))

    _stt: openai.OpenAI | None = field(default=None, repr=False)
    _stt_gone: NoTranscriptionEndpoint | None = field(default=None, repr=False)

    @property
    def secrets(self) -> list[str]:
        """What must never be shown: the keys in use."""
        keys = (self.key, self.options.speech_server.key, self.options.stt_server.key)
        return [s for s in keys if s and s != NO_KEY]

    @property
    def chat_options(self) -> ChatOptions:
        """The chat options now: the run's, with any fix a server taught during the run."""
        with self._lock:
            return self._chat or self.options.chat

    def chat(self, schema: type[T], messages: Sequence[dict[str, Any]]) -> tuple[T, Usage]:
        """One validated answer of type `schema` (from the cache when identical); a request a
        server rejects with a known fix is retried once with it (see vision/chat.py). At most
        --jobs requests are in flight at once."""
        assert self._slots is not None
        with self._slots:
            return complete(
                self.client,
                schema,
                messages,
                self.chat_options,
                key=self.key,
                cache=self.cache,
                report=self.report,
                fixed=self._fixed,
                observe=self._observe if self.memory is not None else None,
            )

    def _fixed(self, better: ChatOptions, changes: list[str]) -> None:
        """A fix worked: the rest of the run uses it, and later runs start with it."""
        with self._lock:
            before = self._chat or self.options.chat
            self._chat = better
        fixes = {
            name: getattr(better, name)
            for name in FIX_FIELDS
            if getattr(better, name) != getattr(before, name)
        }
        stored = self.memory is not None and self.memory.remember_fixes(
            better.base_url, better.model, fixes
        )
        where = f"; remembered in {self.memory.root}" if stored and self.memory else ""
        self.report(f"{better.model}: the retry with {', '.join(changes)} worked{where}")

    def _observe(self, messages: Sequence[dict[str, Any]], usage: Usage, schema: str) -> None:
        """Learn tokens per image from the API's usage, for a model whose rule is unpublished."""
        model = self.options.chat.model
        if self.memory is None or resolve_model(model).known or usage.prompt_tokens <= 0:
            return
        found = image_tokens_from_usage(model, messages, usage.prompt_tokens, extra_text=schema)
        if found is None:
            return
        size, tokens = found
        base_url = self.options.chat.base_url
        if (
            self.memory.learn_image_tokens(base_url, model, size, tokens)
            and size not in self._learned
        ):
            self._learned.add(size)
            count, mean = self.memory.image_tokens(base_url, model).get(size, (0, tokens))
            self.report(
                f"{model}: images at {size} cost ~{mean:.0f} tokens each by the API's usage "
                f"(learned from {count} request{'s' if count != 1 else ''})"
            )

    def hear(self, path: str, heard: Soundtrack | None) -> Soundtrack | None:
        """What is said in each speech region, when transcription is asked for and there is
        speech. Under `--transcribe auto` a failure is a warning and the soundtrack keeps its
        speech regions only; under `on` it fails the run."""
        o = self.options.transcription
        if heard is None or o.mode == "off" or not heard.speech.regions:
            return heard
        regions = len(heard.speech.regions)
        self.report(f"{path}: transcribing {regions} stretch(es) of speech with {o.model}")
        try:
            said = self.transcribe(path, heard.speech)
        except VnarrateError as exc:
            if o.mode == "on":
                raise
            note = f"no transcript: {exc}; going on with where people speak only"
            self.warn(f"{path}: {note}")
            return heard.model_copy(update={"warnings": [*heard.warnings, note]})
        for note in said.warnings:
            self.warn(f"{path}: {note}")
        return with_transcript(heard, said, o)

    def transcribe(self, path: str, speech: SpeechMap) -> Transcript:
        """What is said in each speech region (soundtrack/transcribe.py). A server found to
        have no transcription endpoint is not asked again in this run."""
        client, key = self._stt_client()
        try:
            return transcribe(
                path,
                speech,
                self.options.transcription,
                client=client,
                cache=self.cache,
                key=key,
                jobs=self.options.jobs,
            )
        except NoTranscriptionEndpoint as exc:
            self._stt_gone = exc
            raise

    def _stt_client(self) -> tuple[openai.OpenAI, str]:
        """The speech-to-text client (made once) and its key, for redaction."""
        if self._stt_gone is not None:
            raise self._stt_gone
        server = self.options.stt_server
        with self._lock:
            if self._stt is None:
                self._stt = self.client
                if server.separate:  # the main key stays with the main server
                    self._stt = make_client(
                        api_key=server.key or NO_KEY,
                        base_url=server.base_url,
                        timeout=server.timeout,
                        max_retries=server.max_retries,
                    )
            return self._stt, server.key if server.separate else self.key

    # --- --verify: the narration heard back (issue 11) ------------------------------------------

    def verify(
        self, path: str, track: Samples, rate: int, placements: Sequence[Placement]
    ) -> Verification | None:
        """--verify (None when not asked): every placed line heard back through the same
        speech-to-text server and model as transcription (narration/verify.py); a warning per
        line off and a summary. With --strict an off verdict is an ApiError (exit 5), raised
        before any output is written. A server that cannot transcribe is an error, not a skip:
        --verify was asked for."""
        o = self.options.verify
        if o is None:
            return None
        self.report(f"{path}: verify: hearing {len(placements)} line(s) back with {o.stt.model}")
        try:
            found = verify_narration(track, rate, placements, o, self.hear_clips)
        except NoTranscriptionEndpoint as exc:
            hint = "--verify needs a speech-to-text server: point --stt-base-url at one"
            raise NoTranscriptionEndpoint(exc.message, hint=hint) from None
        except ApiError as exc:  # say which step failed: the narration was made, not yet written
            msg = f"--verify could not hear the narration back: {exc.message}"
            raise ApiError(msg, hint=exc.hint) from None
        notes = [f"verify: {note}" for note in found.notes]
        for note in [*notes, *verify_warnings(found)]:
            self.warn(f"{path}: {note}")
        if found.ok:
            self.report(f"{path}: verify: {summary(found)}")
        elif o.strict:
            raise verify_failure(found)
        return found

    def hear_clips(
        self, clips: Iterator[SpeechClip], regions: Sequence[tuple[float, float]]
    ) -> Transcript:
        """What the speech-to-text server hears in each clip (cached like every call)."""
        client, key = self._stt_client()
        o = self.options
        try:
            return transcribe_clips(
                clips, regions, o.transcription, client=client, cache=self.cache, key=key,
                jobs=o.jobs,
            )  # fmt: skip
        except NoTranscriptionEndpoint as exc:
            self._stt_gone = exc
            raise

    def pace(self, *, measure: bool) -> Pace:
        """The voice's words per second for word budgets (see narration/pace.py), found once
        per run; measured (one short request, then remembered in the cache) only when `measure`
        and nothing better is known. The characters a measure cost are reported once."""
        with self._pace_lock:
            if self._pace is not None and (self._pace_tried or not measure):
                return self._pace
            choice = self.speech() if measure else None
            voice = self.options.voice
            found = find_pace(
                self.options.pace,
                measure=measure,
                backend=choice.backend if choice else None,
                voice=choice.speaking(voice) if choice else voice,
                cache=self.cache,
            )
            self._pace, self._pace_tried = replace(found, characters=0), measure
            return found

    def speech(self) -> BackendChoice:
        """The speech backend (chosen once per run, on first use), why it was chosen, and the
        model it speaks with (a Realtime model when `auto` fell back to it)."""
        with self._lock:
            if self._speech is None:
                self._speech = self._choose_speech()
            return self._speech

    def _choose_speech(self) -> BackendChoice:
        server = self.options.speech_server
        client = self.client
        if server.separate:
            client = make_client(
                api_key=server.key or (self.key if self.key != NO_KEY else "") or NO_KEY,
                base_url=server.base_url,
                timeout=server.timeout,
                max_retries=server.max_retries,
            )
        choice = choose_backend(
            server.backend,
            client,
            provider=server.provider,
            tts_model=self.options.voice.model,
            realtime_model=server.realtime_model,
            voice=self.options.voice.voice,
            timeout_s=server.timeout,
            wer_threshold=server.wer_threshold,
            strict=server.strict,
            cache=self.cache,  # remembers today's model check: an identical rerun asks nothing
        )
        if self.cache is None:
            return choice
        cached = CachedSpeech(
            choice.backend, self.cache, provider=server.provider, base_url=server.base_url
        )
        return choice._replace(backend=cached)


def open_session(
    settings: Settings,
    *,
    report: Report = _quiet,
    warn: Report = _quiet,
    chat: bool = True,
    speech: bool = False,
) -> Session:
    """One client for the whole run; fails early (exit 3) without a key where one is needed.

    `chat` False (voiceover --script) asks no key of the chat server; `speech` True checks the
    speech server's key too (a separate --tts-base-url on a local address needs none). Its chat
    calls the server, so it is priced at the normal price even with --batch (only a
    DeferringSession's answers come from the Batch API)."""
    options = stage_options(settings)
    if options.plan.batch:
        options = dataclasses.replace(
            options, plan=options.plan.model_copy(update={"batch": False})
        )
    key = api_key(settings, options.profile) if chat else settings.secret("api_key") or NO_KEY
    if speech:
        check_speech(options)
        speech_key(settings, options, key)
        stt_key(options, key)  # --verify's speech-to-text server
    client = make_client(
        api_key=key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )
    extra = (settings.secret("tts_api_key"), settings.secret("stt_api_key"))
    secrets = [s for s in (key, *extra) if s != NO_KEY]
    cache = open_cache(settings, *secrets) if settings.cache else None
    if options.remembered:
        said = ", ".join(f"{k}={v}" for k, v in sorted(options.remembered.items()))
        report(f"{settings.model}: using what this server taught an earlier run: {said}")
    return Session(
        options=options,
        client=client,
        key=key,
        cache=cache,
        report=report,
        warn=warn,
        memory=memory(settings),
    )


__all__ = [
    "FIX_FIELDS",
    "NO_KEY",
    "Report",
    "Session",
    "StageOptions",
    "T",
    "api_key",
    "check_speech",
    "memory",
    "open_cache",
    "open_session",
    "sampling_spec",
    "speech_key",
    "speech_model",
    "stage_options",
    "stt_key",
]
