"""Speech: the /v1/audio/speech backend (request fields, splitting, error mapping, the sample
rate read from what servers answer: WAV at 16, 22.05 and 24 kHz, raw PCM with `x-sample-rate`),
the cache (WAV entries that keep their rate) and synthesize_all (concurrency bound, order,
failing fast)."""

from __future__ import annotations

import io
import json
import threading
import time
import wave
from pathlib import Path

import httpx2
import openai
import pytest
import respx
from _media import speech_pcm

from vnarrate.errors import ApiError
from vnarrate.narration.speech import (
    MAX_INPUT_CHARS,
    CachedSpeech,
    SpeechEndpointBackend,
    SpeechOptions,
    Synthesis,
    decode_speech,
    read_wav,
    split_text,
    supports_instructions,
    synthesize_all,
    synthesize_segment,
    to_pcm16,
    wav_bytes,
)
from vnarrate.server.cache import ResponseCache

KEY = "sk-test-SECRET-0123456789abcdef"


def _client() -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, max_retries=0, timeout=5)


def _body(call: respx.models.Call) -> dict[str, object]:
    body: dict[str, object] = json.loads(call.request.content)
    return body


def test_request_asks_for_wav_and_sends_instructions_to_gpt_4o_mini_tts(api: respx.Router) -> None:
    pcm = speech_pcm(0.5)
    route = api.post("/audio/speech").respond(200, content=pcm)
    options = SpeechOptions(
        model="gpt-4o-mini-tts", voice="onyx", speed=1.1, instructions="Calm, warm."
    )
    syn = SpeechEndpointBackend(_client()).synthesize("Hello there.", options)
    assert syn.pcm == pcm and syn.sample_rate == 24000 and syn.characters == len("Hello there.")
    body = _body(route.calls.last)
    assert body == {
        "model": "gpt-4o-mini-tts",
        "voice": "onyx",
        "input": "Hello there.",
        "response_format": "wav",
        "speed": 1.1,
        "instructions": "Calm, warm.",
    }


@pytest.mark.parametrize("model", ["tts-1", "tts-1-hd", "tts-1-1106"])
def test_no_instructions_for_tts_1_family(api: respx.Router, model: str) -> None:
    route = api.post("/audio/speech").respond(200, content=speech_pcm(0.2))
    options = SpeechOptions(model=model, voice="alloy", instructions="Whisper.")
    SpeechEndpointBackend(_client()).synthesize("Hi.", options)
    body = _body(route.calls.last)
    assert "instructions" not in body and body["response_format"] == "wav"


def test_supports_instructions() -> None:
    assert supports_instructions("gpt-4o-mini-tts")
    assert supports_instructions("gpt-4o-mini-tts-2025-12-15")
    assert not supports_instructions("tts-1") and not supports_instructions("TTS-1-HD")


def test_custom_voice_id_is_sent_as_an_object(api: respx.Router) -> None:
    route = api.post("/audio/speech").respond(200, content=speech_pcm(0.1))
    SpeechEndpointBackend(_client()).synthesize(
        "Hi.", SpeechOptions(model="gpt-4o-mini-tts", voice="voice_1234")
    )
    assert _body(route.calls.last)["voice"] == {"id": "voice_1234"}


def test_long_input_is_split_at_sentences_and_pcm_concatenated(api: respx.Router) -> None:
    sentence = "The heron waits in the shallows, perfectly still, for a fish to pass. "
    text = (sentence * 130).strip()  # ~9,200 characters: three requests
    parts = [speech_pcm(0.3, freq=f) for f in (200.0, 300.0, 400.0)]
    route = api.post("/audio/speech").mock(
        side_effect=[respx.MockResponse(200, content=p) for p in parts]
    )
    syn = SpeechEndpointBackend(_client()).synthesize(
        text, SpeechOptions(model="tts-1", voice="alloy")
    )
    inputs = [str(_body(c)["input"]) for c in route.calls]
    assert len(inputs) == 3
    assert all(len(i) <= MAX_INPUT_CHARS for i in inputs)
    assert all(i.endswith("pass.") for i in inputs)  # cut between sentences
    assert " ".join(inputs) == text
    assert syn.pcm == b"".join(parts)  # in order
    assert syn.characters == len(text)


def test_split_text_falls_back_to_words_then_characters() -> None:
    words = " ".join(["word"] * 2000)  # one 9,999-character "sentence"
    pieces = split_text(words)
    assert all(len(p) <= MAX_INPUT_CHARS for p in pieces) and " ".join(pieces) == words
    assert all(not p.endswith("wor") for p in pieces)  # never inside a word
    blob = "x" * 9000
    assert split_text(blob) == ["x" * 4096, "x" * 4096, "x" * 808]
    assert split_text("  short  ") == ["short"] and split_text("   ") == []


def test_split_text_cjk_sentences() -> None:
    text = "鳥が飛ぶ。" * 1000  # no spaces at all
    pieces = split_text(text)
    assert len(pieces) == 2 and all(p.endswith("。") for p in pieces)
    assert "".join(pieces) == text


def test_empty_text_makes_no_request(api: respx.Router) -> None:
    syn = SpeechEndpointBackend(_client()).synthesize(" ", SpeechOptions(model="m", voice="v"))
    assert syn.pcm == b"" and not api.calls


def test_wav_answer_from_a_compatible_server_is_decoded() -> None:
    pcm = speech_pcm(0.25, sample_rate=16000)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    out = to_pcm16(buf.getvalue())
    assert abs(len(out) // 2 - 6000) <= 64  # 0.25 s at 24 kHz
    assert to_pcm16(b"\x01\x02\x03") == b"\x01\x02"  # raw PCM: whole samples only


# --- the sample rate is read, never assumed ------------------------------------------------------


def _wav(pcm: bytes, rate: int, *, channels: int = 1, streamed: bool = False) -> bytes:
    """A WAV file; `streamed`: sizes unset (0xFFFFFFFF), as OpenAI sends it."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    data = bytearray(buf.getvalue())
    if streamed:
        data[4:8] = data[40:44] = b"\xff\xff\xff\xff"
    return bytes(data)


@pytest.mark.parametrize("rate", [16000, 22050, 24000])
def test_a_wav_answer_keeps_its_own_rate(api: respx.Router, rate: int) -> None:
    pcm = speech_pcm(0.5, sample_rate=rate)
    api.post("/audio/speech").respond(
        200, content=_wav(pcm, rate), headers={"content-type": "audio/wav"}
    )
    syn = SpeechEndpointBackend(_client()).synthesize("Hi.", SpeechOptions(model="m", voice="v"))
    assert syn.sample_rate == rate and syn.pcm == pcm  # 0.5 s, not 0.5 * rate / 24000


@pytest.mark.parametrize("rate", [16000, 22050, 24000])
def test_raw_pcm_takes_the_rate_the_server_states(api: respx.Router, rate: int) -> None:
    pcm = speech_pcm(0.4, sample_rate=rate)
    # A Piper server's answer to `pcm`: raw samples, the rate in a header.
    api.post("/audio/speech").respond(
        200, content=pcm, headers={"content-type": "audio/pcm", "x-sample-rate": str(rate)}
    )
    syn = SpeechEndpointBackend(_client()).synthesize("Hi.", SpeechOptions(model="m", voice="v"))
    assert (syn.sample_rate, len(syn.pcm)) == (rate, len(pcm))


def test_what_a_server_sends_is_decoded_with_its_rate() -> None:
    pcm = speech_pcm(0.3, sample_rate=22050)
    assert decode_speech(_wav(pcm, 22050, streamed=True)) == (pcm, 22050)  # OpenAI's sizes
    assert decode_speech(pcm, content_type="audio/L16; rate=16000") == (pcm, 16000)
    assert decode_speech(pcm, rate_header="22050") == (pcm, 22050)
    assert decode_speech(pcm, rate_header="nonsense")[1] == 24000  # OpenAI's documented rate
    assert decode_speech(pcm, rate_header="7")[1] == 24000  # not a sample rate
    # Stereo is averaged to mono, at the file's rate.
    stereo = b"".join(pcm[i : i + 2] * 2 for i in range(0, len(pcm), 2))
    assert decode_speech(_wav(stereo, 16000, channels=2)) == (pcm, 16000)
    # Raw PCM that starts like an MP3 frame (a sample of -1) is still raw PCM.
    assert decode_speech(b"\xff\xff" + pcm)[0][:2] == b"\xff\xff"
    assert read_wav(b"RIFF....WAVEjunk") is None and read_wav(pcm) is None


def test_a_compressed_answer_is_decoded_at_its_own_rate(tmp_path: Path) -> None:
    import av
    import numpy as np

    path = tmp_path / "a.flac"
    x = np.frombuffer(speech_pcm(0.5, sample_rate=16000), "<i2").reshape(1, -1)
    with av.open(str(path), "w") as out:
        st = out.add_stream("flac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(x, format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*st.encode(frame), *st.encode(None)]:
            out.mux(packet)
    pcm, rate = decode_speech(path.read_bytes(), content_type="audio/flac")
    assert rate == 16000 and abs(len(pcm) // 2 - 8000) <= 32


def test_pieces_at_different_rates_are_joined_at_the_first_ones(api: respx.Router) -> None:
    answers = iter(
        [
            respx.MockResponse(200, content=_wav(speech_pcm(0.5, sample_rate=22050), 22050)),
            respx.MockResponse(200, content=_wav(speech_pcm(0.5, sample_rate=16000), 16000)),
        ]
    )
    api.post("/audio/speech").mock(side_effect=lambda _: next(answers))
    text = "A sentence. " * 400  # two pieces of at most 4096 characters
    syn = SpeechEndpointBackend(_client()).synthesize(text, SpeechOptions(model="m", voice="v"))
    assert syn.sample_rate == 22050
    assert abs(len(syn.pcm) / 2 / 22050 - 1.0) <= 0.01  # 0.5 s + 0.5 s, neither too fast


def test_cached_speech_keeps_the_rate(api: respx.Router, tmp_path: Path) -> None:
    pcm = speech_pcm(0.3, sample_rate=22050)
    route = api.post("/audio/speech").respond(200, content=_wav(pcm, 22050))
    backend = CachedSpeech(
        SpeechEndpointBackend(_client()), ResponseCache(tmp_path), provider="x", base_url=None
    )
    opts = SpeechOptions(model="tts-1", voice="alloy")
    first, again = backend.synthesize("Hi.", opts), backend.synthesize("Hi.", opts)
    assert route.call_count == 1
    assert (again.pcm, again.sample_rate) == (first.pcm, first.sample_rate) == (pcm, 22050)
    assert read_wav(wav_bytes(pcm, 22050)) == (pcm, 22050)


def test_401_maps_to_api_error_without_the_key(api: respx.Router) -> None:
    api.post("/audio/speech").respond(
        401, json={"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth"}}
    )
    with pytest.raises(ApiError) as exc:
        SpeechEndpointBackend(_client()).synthesize("Hi.", SpeechOptions(model="tts-1", voice="a"))
    assert "401" in str(exc.value) and KEY not in str(exc.value)
    assert exc.value.exit_code == 5


def test_429_after_retries_maps_to_api_error(api: respx.Router) -> None:
    route = api.post("/audio/speech").respond(
        429, json={"error": {"message": "Rate limit reached", "type": "requests"}}
    )
    client = openai.OpenAI(api_key=KEY, max_retries=1, timeout=5)
    with pytest.raises(ApiError) as exc:
        SpeechEndpointBackend(client).synthesize("Hi.", SpeechOptions(model="tts-1", voice="a"))
    assert "429" in str(exc.value) and route.call_count == 2  # the SDK retried once


def test_empty_answer_is_an_error(api: respx.Router) -> None:
    api.post("/audio/speech").respond(200, content=b"")
    with pytest.raises(ApiError, match="no audio"):
        SpeechEndpointBackend(_client()).synthesize("Hi.", SpeechOptions(model="tts-1", voice="a"))


# --- synthesize_all ------------------------------------------------------------------------------


def test_synthesize_all_bounds_concurrency_and_keeps_order(api: respx.Router) -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def answer(request: httpx2.Request) -> respx.MockResponse:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        text = json.loads(request.content)["input"]
        time.sleep(0.05 if text != "line 0" else 0.15)  # the first finishes last
        with lock:
            state["now"] -= 1
        n = int(text.split()[1])
        return respx.MockResponse(200, content=speech_pcm(0.01 * (n + 1)))

    api.post("/audio/speech").mock(side_effect=answer)
    texts = [f"line {i}" for i in range(10)]
    seen: list[int] = []
    out = synthesize_all(
        SpeechEndpointBackend(_client()),
        texts,
        SpeechOptions(model="tts-1", voice="alloy"),
        jobs=3,
        progress=lambda done, total: seen.append(done),
    )
    assert [len(s.pcm) for s in out] == [len(speech_pcm(0.01 * (i + 1))) for i in range(10)]
    assert state["peak"] == 3
    assert sorted(seen) == list(range(1, 11))


class _FailingBackend:
    """Fails on one text after a short delay; counts how many calls started."""

    name = "fake"

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.started: list[str] = []
        self.lock = threading.Lock()

    def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
        with self.lock:
            self.started.append(text)
        if text == self.bad:
            time.sleep(0.02)
            raise ApiError("rate limited (429)")
        time.sleep(0.5)
        return Synthesis(pcm=b"\0\0")


def test_synthesize_all_first_failure_cancels_the_rest_promptly() -> None:
    backend = _FailingBackend("t1")
    texts = [f"t{i}" for i in range(40)]
    t0 = time.perf_counter()
    with pytest.raises(ApiError, match="429"):
        synthesize_all(backend, texts, SpeechOptions(model="m", voice="v"), jobs=4)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.35  # raised right away, not after the in-flight calls (0.5 s)
    time.sleep(0.6)  # let the in-flight calls end: none may start after the failure
    assert len(backend.started) <= 5


@pytest.mark.parametrize("jobs", [1, 4])
def test_a_failed_speech_call_names_its_segment(jobs: int) -> None:
    texts = [f"t{i}" for i in range(5)]
    with pytest.raises(ApiError) as err:
        synthesize_all(_FailingBackend("t2"), texts, SpeechOptions(model="m", voice="v"), jobs=jobs)
    assert str(err.value) == "segment 3 of 5: speech failed: rate limited (429)"
    assert err.value.exit_code == 5
    with pytest.raises(ApiError, match=r"^segment 3 of 5: speech failed: rate limited"):
        synthesize_segment(_FailingBackend("t2"), texts, 2, SpeechOptions(model="m", voice="v"))


def test_synthesize_all_sequential_and_empty() -> None:
    class Echo:
        name = "echo"

        def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
            return Synthesis(pcm=text.encode())

    opts = SpeechOptions(model="m", voice="v")
    assert synthesize_all(Echo(), [], opts, jobs=4) == []
    assert [s.pcm for s in synthesize_all(Echo(), ["ab", "cd"], opts, jobs=1)] == [b"ab", b"cd"]


# --- CachedSpeech --------------------------------------------------------------------------------


def test_cached_speech_answers_a_repeat_from_disk(api: respx.Router, tmp_path: Path) -> None:
    route = api.post("/audio/speech").respond(200, content=speech_pcm(0.2))
    cache = ResponseCache(tmp_path, secrets=[KEY])
    backend = CachedSpeech(
        SpeechEndpointBackend(_client()), cache, provider="openai", base_url=None
    )
    opts = SpeechOptions(model="gpt-4o-mini-tts", voice="onyx", instructions="Calm.")
    first = backend.synthesize("Hello.", opts)
    again = backend.synthesize("Hello.", opts)
    assert route.call_count == 1 and again.pcm == first.pcm
    assert first.characters == 6 and again.characters == 0  # a hit is not billed
    backend.synthesize("Hello.", opts.model_copy(update={"speed": 1.2}))  # another take: a miss
    assert route.call_count == 2
    assert backend.name == "speech"


def test_cached_speech_ignores_instructions_the_model_ignores(tmp_path: Path) -> None:
    backend = CachedSpeech(
        _FailingBackend("never"), ResponseCache(tmp_path), provider="openai", base_url=None
    )
    plain = SpeechOptions(model="tts-1", voice="alloy")
    assert backend.key("Hi.", plain) == backend.key(
        "Hi.", plain.model_copy(update={"instructions": "Whisper."})
    )
    gpt = plain.model_copy(update={"model": "gpt-4o-mini-tts"})
    assert backend.key("Hi.", gpt) != backend.key(
        "Hi.", gpt.model_copy(update={"instructions": "Whisper."})
    )


def test_cached_speech_does_not_store_unfaithful_audio(tmp_path: Path) -> None:
    class Unfaithful:
        name = "realtime"
        calls = 0

        def synthesize(self, text: str, options: SpeechOptions) -> Synthesis:
            self.calls += 1
            return Synthesis(pcm=b"\1\0" * 10, faithful=False, wer=0.5)

    inner = Unfaithful()
    backend = CachedSpeech(inner, ResponseCache(tmp_path), provider="openai", base_url=None)
    backend.synthesize("Hi.", SpeechOptions(model="m", voice="v"))
    backend.synthesize("Hi.", SpeechOptions(model="m", voice="v"))
    assert inner.calls == 2
