"""Test media made on the fly (no binary media in git): videos, audio-only files, PCM speech;
and the measuring tools shared by tests: decoding audio, speech onsets, tone levels, copied video
packets, and SRT/WebVTT parsed back."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vnarrate.models import AudioTrack, Frame, SpeechMap, VideoInfo

# Distinct flat colours (RGB) so that a test can tell shots apart, and a cut is unmistakable.
SHOT_COLOURS = [
    (220, 40, 40),
    (40, 200, 60),
    (40, 60, 220),
    (230, 220, 40),
    (200, 40, 200),
    (40, 210, 210),
    (250, 250, 250),
    (20, 20, 20),
]


def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (160, 120),
    codec: str = "libx264",
    gop: int = 12,
    cuts_s: Sequence[float] = (),
    audio: bool = False,
    rotate: int = 0,
    moving: bool = True,
    barcode: bool = True,
    frame_times: Sequence[float] | None = None,
    faststart: bool = False,
    bframes: int = 0,
    noise: bool = False,
) -> Path:
    """Write a small video: a moving square over flat shots that change at `cuts_s`.

    Each frame's index is drawn as a bar code in a band at the top (`read_index` reads it back),
    so a test can tell which frame it got. `size` is (width, height). With `audio`, a 440 Hz AAC
    track of the same length is added. `rotate` is the clockwise rotation a player applies (like
    ffprobe's `rotate` tag), stored in the display matrix. `frame_times` (seconds, increasing) gives
    each frame its own presentation time: a variable-frame-rate file with len(frame_times) frames.
    `faststart` puts the index before the data (so a truncated copy still opens). `bframes` > 0
    lets x264 use that many B-frames (frames stored out of showing order, most of them referred
    to by none). `noise` fills the shots with fresh noise every frame: big packets, as a test
    that damages bytes needs.
    """
    width, height = size
    n = len(frame_times) if frame_times is not None else max(1, round(seconds * fps))
    if frame_times is not None:
        seconds = frame_times[-1] + 1 / fps
    options = {"movflags": "faststart"} if faststart else {}
    rng = np.random.default_rng(3)
    with av.open(str(path), "w", options=options) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = "yuv420p"
        if frame_times is not None:
            vs.codec_context.time_base = Fraction(1, 1000)
            vs.time_base = Fraction(1, 1000)
        if codec == "libx264":
            vs.options = {
                "g": str(gop),
                "keyint_min": str(gop),
                "sc_threshold": "0",
                "preset": "ultrafast" if not bframes else "veryfast",
            }
            if bframes:
                vs.options |= {"bf": str(bframes), "b_strategy": "0"}
        elif codec == "libx265":  # open GOPs: pictures after a keyframe that show before it
            keys = f"keyint={gop}:min-keyint={gop}:open-gop=1:bframes=3:log-level=none"
            vs.options = {"x265-params": keys}
        elif codec == "libsvtav1":
            vs.options = {"g": str(gop), "preset": "12"}
        elif codec == "libvpx-vp9":
            vs.options = {"g": str(gop), "deadline": "realtime", "cpu-used": "8"}
        if rotate:
            # The display matrix holds the counter-clockwise angle; the `rotate` tag is clockwise.
            vs.set_display_rotation(-rotate)
        as_ = None
        if audio:
            as_ = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(n):
            t = frame_times[i] if frame_times is not None else i / fps
            shot = sum(1 for c in cuts_s if t >= c)
            img = np.empty((height, width, 3), np.uint8)
            img[:] = SHOT_COLOURS[shot % len(SHOT_COLOURS)]
            if noise:
                img ^= rng.integers(0, 64, img.shape, np.uint8)
            if moving:
                s = max(4, min(width, height) // 6)
                x = int((width - s) * (i / max(1, n - 1)))
                img[height // 2 - s // 2 : height // 2 + s // 2, x : x + s] = (128, 128, 128)
            if barcode:
                _draw_index(img, i)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if frame_times is not None:
                frame.pts = round(frame_times[i] * 1000)
                frame.time_base = Fraction(1, 1000)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if as_ is not None:
            sr = 48000
            total = int(seconds * sr)
            tone = (0.2 * np.sin(2 * math.pi * 440 * np.arange(total) / sr)).astype(np.float32)
            step = 1024
            for start in range(0, total, step):
                chunk = tone[start : start + step].reshape(1, -1)
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate = sr
                af.pts = start
                af.time_base = Fraction(1, sr)
                for packet in as_.encode(af):
                    out.mux(packet)
            for packet in as_.encode():
                out.mux(packet)
    return path


BARCODE_BITS = 12  # frame indices up to 4095


def _band(height: int) -> int:
    return max(8, height // 8)


def _draw_index(img: np.ndarray, index: int) -> None:
    """Bits of `index` as black/white blocks across a band at the top (LSB on the left)."""
    height, width = img.shape[:2]
    band, bw = _band(height), width // BARCODE_BITS
    img[:band] = 0
    for b in range(BARCODE_BITS):
        if index >> b & 1:
            img[:band, b * bw : (b + 1) * bw] = 255


def read_index(img: np.ndarray) -> int:
    """The frame index drawn by make_video, read back from a decoded (BGR or RGB) image of the
    size it was made at (or scaled, aspect kept)."""
    height, width = img.shape[:2]
    band = _band(height)
    bw = width / BARCODE_BITS
    value = 0
    for b in range(BARCODE_BITS):
        x = int((b + 0.5) * bw)
        block = img[band // 4 : max(band // 4 + 1, 3 * band // 4), max(0, x - 1) : x + 2]
        if block.mean() > 128:
            value |= 1 << b
    return value


def make_undecodable(path: Path, *, frames: int = 10) -> Path:
    """An .mp4 with a well-formed H.264 track whose packets are noise: zero decodable frames."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        packets = []
        for _ in range(frames):
            img = np.zeros((48, 64, 3), np.uint8)
            packets += vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24"))
        packets += vs.encode()
        for p in packets:
            noise = av.Packet(rng.integers(0, 256, p.size, dtype=np.uint8).tobytes())
            noise.pts, noise.dts, noise.time_base = p.pts, p.dts, p.time_base
            noise.stream = vs
            noise.is_keyframe = p.is_keyframe
            out.mux(noise)
    return path


def make_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An .m4a (AAC) file with a tone and no video stream."""
    sr = 48000
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("aac", rate=sr, layout="mono")
        total = int(seconds * sr)
        tone = (0.2 * np.sin(2 * math.pi * 440 * np.arange(total) / sr)).astype(np.float32)
        for start in range(0, total, 1024):
            af = av.AudioFrame.from_ndarray(
                tone[start : start + 1024].reshape(1, -1), format="fltp", layout="mono"
            )
            af.sample_rate = sr
            af.pts = start
            af.time_base = Fraction(1, sr)
            for packet in st.encode(af):
                out.mux(packet)
        for packet in st.encode():
            out.mux(packet)
    return path


def speech_pcm(seconds: float, *, sample_rate: int = 24000, freq: float = 220.0) -> bytes:
    """Stand-in for TTS output: a tone burst of exactly `seconds`, s16le mono."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    wave = 0.5 * np.sin(2 * math.pi * freq * t) * (1 + 0.3 * np.sin(2 * math.pi * 3 * t))
    return (wave * 32767 * 0.8).astype("<i2").tobytes()


# --- stand-ins for what the stages give (no media needed) ----------------------------------------


def video_info(**kw: object) -> VideoInfo:
    """A 3 s, 10 fps, 160x120 video as probing describes it, with `kw` changed."""
    base: dict[str, object] = {
        "path": "x.mp4",
        "width": 160,
        "height": 120,
        "fps": 10.0,
        "frame_count": 30,
        "duration_s": 3.0,
    }
    return VideoInfo(**{**base, **kw})  # type: ignore[arg-type]


def stub_frames(n: int) -> list[Frame]:
    """`n` 64x36 frames 1.5 s apart whose JPEG bytes are stand-ins (prompts never decode them)."""
    return [
        Frame(index=i * 10, time_s=i * 1.5, width=64, height=36, jpeg=b"\xff\xd8jpeg%d" % i)
        for i in range(n)
    ]


def speech_map(regions: list[tuple[float, float]], duration: float = 12.0) -> SpeechMap:
    """Where people speak, as the detector says it (a 16 kHz mono track)."""
    track = AudioTrack(index=1, codec="aac", sample_rate=16000, channels=1, layout="mono")
    return SpeechMap(
        duration_s=duration,
        regions=regions,
        gaps=[],
        speech_s=sum(b - a for a, b in regions),
        detector="test",
        track=track,
    )


# --- measuring what was written --------------------------------------------------------------


def decode_audio(path: Path, rate: int = 24000) -> np.ndarray:
    """The first audio stream of `path`, decoded from its first sample, mono float32 at `rate`.

    Samples are concatenated rather than placed by timestamp: the decoder already drops the
    encoder's priming samples (LAME header, MP4 edit list), so sample 0 is time 0."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        for frame in container.decode(stream):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks).astype(np.float32)


def onsets(x: np.ndarray, rate: int = 24000, threshold: float = 0.05) -> list[float]:
    """Times where speech starts: RMS over 10 ms windows crosses `threshold` after silence."""
    win = rate // 100
    n = len(x) // win
    rms = np.sqrt(np.mean(x[: n * win].reshape(n, win) ** 2, axis=1))
    loud = rms > threshold
    found = []
    for i in range(n):
        if loud[i] and (i == 0 or not loud[max(0, i - 10) : i].any()):
            # refine inside the window: first sample over the threshold's peak equivalent
            seg = np.abs(x[i * win - win : (i + 1) * win]) if i else np.abs(x[:win])
            first = int(np.argmax(seg > threshold * math.sqrt(2)))
            found.append(((i * win - win if i else 0) + first) / rate)
    return found


def tone_level(x: np.ndarray, rate: int, freq: float, t0: float, t1: float) -> float:
    """Amplitude of the `freq` sinusoid in x[t0:t1] (least-squares fit of sin + cos)."""
    seg = x[round(t0 * rate) : round(t1 * rate)].astype(np.float64)
    t = np.arange(len(seg)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, seg, rcond=None)
    return float(np.hypot(*coef))


def video_packets(path: Path) -> list[str]:
    """A hash of every packet of the first video stream: equal lists mean the video was copied."""
    with av.open(str(path)) as c:
        return [hashlib.sha1(bytes(p)).hexdigest() for p in c.demux(c.streams.video[0]) if p.size]


_TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[tuple[float, float, list[str]]]:
    """SubRip cues back as (start_s, end_s, lines); asserts the numbering and time format."""
    cues = []
    for n, block in enumerate(text.strip().split("\n\n"), 1):
        lines = block.split("\n")
        assert lines[0] == str(n)
        m = re.fullmatch(rf"{_TIME} --> {_TIME}", lines[1])
        assert m, lines[1]
        g = m.groups()
        cues.append((_seconds(*g[:4]), _seconds(*g[4:]), lines[2:]))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, list[str]]]:
    """WebVTT cues back as (start_s, end_s, lines); asserts the header and time format."""
    header, *blocks = text.strip().split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        lines = block.split("\n")
        m = re.fullmatch(rf"{_TIME} --> {_TIME}", lines[0])
        assert m, lines[0]
        g = m.groups()
        cues.append((_seconds(*g[:4]), _seconds(*g[4:]), lines[1:]))
    return cues


# --- soundtracks: speech-like signals, music and noise beds, multi-track files ------------------

# Formants (Hz) of five vowels: the synthetic voice moves between them, one per syllable.
_VOWELS = [
    (730, 1090, 2440),
    (270, 2290, 3010),
    (300, 870, 2240),
    (530, 1840, 2480),
    (570, 840, 2410),
]


def at_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    """`x` scaled to an RMS level of `dbfs` (float32)."""
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) or 1.0
    return (x * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def speechlike(
    seconds: float, *, f0: float = 120.0, seed: int = 0, rate: int = 16000, dbfs: float = -22.0
) -> np.ndarray:
    """A synthetic voice a speech detector takes for speech: a glottal pulse train with a moving
    pitch, shaped by vowel formants that change five times a second, a noise burst (consonant)
    at each syllable's start, and a syllable envelope. Mono float32 at `rate`, `dbfs` RMS."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    pitch = (
        f0 * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t + rng.random() * 6)) * (1 - 0.1 * t / seconds)
    )
    pulses = np.diff(np.floor(np.cumsum(pitch) / rate), prepend=0.0)
    source = np.convolve(pulses, np.exp(-np.arange(40) / 8), mode="same")
    out = np.zeros(n)
    syllable = round(0.2 * rate)
    for start in range(0, n, syllable):
        seg = source[start : start + syllable]
        freqs = np.fft.rfftfreq(len(seg), 1 / rate)
        shape = sum(
            (1 / (k + 1)) / (1 + ((freqs - f) / (80 + 40 * k)) ** 2)
            for k, f in enumerate(_VOWELS[int(rng.integers(len(_VOWELS)))])
        )
        voiced = np.fft.irfft(np.fft.rfft(seg) * shape, len(seg))
        voiced *= np.sin(np.pi * np.linspace(0, 1, len(seg))) ** 0.6
        burst = min(len(seg), round(0.03 * rate))
        voiced[:burst] += rng.standard_normal(burst) * 0.3 * voiced.std()
        out[start : start + len(seg)] = voiced
    return at_dbfs(out, dbfs)


def music_bed(
    seconds: float, *, seed: int = 0, rate: int = 16000, dbfs: float = -22.0
) -> np.ndarray:
    """Music without voice: chords with harmonics, a vibrato melody (the most voice-like part
    of music), a kick and a hi-hat, at 120 bpm. Mono float32 at `rate`, `dbfs` RMS."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros(n)
    beat = round(0.5 * rate)
    roots = [220.0, 174.6, 196.0, 261.6]
    for bar, start in enumerate(range(0, n, 4 * beat)):
        tt = t[start : start + 4 * beat] - t[start]
        env = np.minimum(1, tt / 0.05) * np.exp(-tt / 3)
        for ratio in (1, 1.26, 1.5):
            for k in range(1, 6):
                out[start : start + len(tt)] += (
                    0.2 * env * np.sin(2 * np.pi * roots[bar % 4] * ratio * k * tt) / k**1.5
                )
    for start in range(0, n, beat):
        tt = t[start : start + beat] - t[start]
        f = [440, 494, 523, 587, 659, 698, 784, 880][int(rng.integers(8))]
        phase = 2 * np.pi * np.cumsum(f * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * tt))) / rate
        env = np.minimum(1, tt / 0.03) * np.exp(-tt / 0.4)
        out[start : start + len(tt)] += 0.35 * env * (np.sin(phase) + 0.3 * np.sin(2 * phase))
        out[start : start + len(tt)] += 0.6 * np.exp(-tt / 0.08) * np.sin(2 * np.pi * 60 * tt)
        hat = min(len(tt) // 2, 800)
        mid = start + len(tt) // 2
        out[mid : mid + hat] += 0.15 * rng.standard_normal(hat) * np.exp(-np.arange(hat) / 150)
    return at_dbfs(out, dbfs)


def pink_noise(
    seconds: float, *, seed: int = 0, rate: int = 16000, dbfs: float = -22.0
) -> np.ndarray:
    """Pink (1/f) noise, mono float32 at `rate`, `dbfs` RMS."""
    n = round(seconds * rate)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    return at_dbfs(np.fft.irfft(spec, n), dbfs)


def place(
    seconds: float, parts: Sequence[tuple[float, np.ndarray]], *, rate: int = 16000
) -> np.ndarray:
    """A mono track of `seconds` with each (start_s, samples) added at its time."""
    out = np.zeros(round(seconds * rate), np.float32)
    for start, x in parts:
        i = round(start * rate)
        out[i : i + len(x)] += x[: len(out) - i]
    return out


def make_soundtrack(
    path: Path,
    tracks: Sequence[np.ndarray],
    *,
    rate: int,
    layout: str = "mono",
    codec: str = "aac",
    video: bool = True,
    default: int | None = None,
    start_s: float = 0.0,
) -> Path:
    """A file with one audio stream per array in `tracks` (each (channels, n) or (n,) float32 at
    `rate`, in `layout`), and a small still video stream unless `video` is False. `default`:
    the only track flagged default (None: the muxer's choice). `start_s`: the audio's first
    timestamp, so a stream can start later than the file."""
    seconds = max(t.shape[-1] for t in tracks) / rate
    with av.open(str(path), "w") as out:
        vs = None
        if video:
            vs = out.add_stream("libx264", rate=5)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        streams = [out.add_stream(codec, rate=rate, layout=layout) for _ in tracks]
        if default is not None:
            for i, st in enumerate(streams):
                st.disposition = av.stream.Disposition.default if i == default else 0
        if vs is not None:
            img = np.full((48, 64, 3), 90, np.uint8)
            for i in range(max(1, round(seconds * 5))):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                out.mux(vs.encode(frame))
            out.mux(vs.encode(None))
        for st, samples in zip(streams, tracks, strict=True):
            _encode_track(out, st, np.atleast_2d(samples), rate, layout, round(start_s * rate))
    return path


def _encode_track(
    out: av.container.OutputContainer,
    st: av.AudioStream,
    x: np.ndarray,
    rate: int,
    layout: str,
    pts0: int,
) -> None:
    fmt = st.codec_context.format.name
    step = 960 if st.codec_context.name in ("libopus", "opus") else 1024
    for i in range(0, x.shape[1], step):
        block = x[:, i : i + step]
        if fmt == "s16":
            data = (np.clip(block.T, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        elif fmt == "flt":
            data = np.ascontiguousarray(block.T.reshape(1, -1), np.float32)
        else:
            data = np.ascontiguousarray(block, np.float32)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, pts0 + i, Fraction(1, rate)
        out.mux(st.encode(frame))
    out.mux(st.encode(None))


def damage_audio(src: Path, dst: Path, *, every: int = 1, seed: int = 1) -> Path:
    """A copy of `src` (one video and one audio stream) whose audio packets are replaced by noise
    (every one, or every `every`-th); the video is copied as it is."""
    rng = np.random.default_rng(seed)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        a_in = inp.streams.audio[0]
        a_out = out.add_stream_from_template(a_in)
        v_out = out.add_stream_from_template(inp.streams.video[0]) if inp.streams.video else None
        n = 0
        for packet in inp.demux():
            if packet.dts is None:
                continue
            if packet.stream is a_in:
                if n % every == 0:
                    noise = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                    noise.pts, noise.dts, noise.time_base = packet.pts, packet.dts, packet.time_base
                    packet = noise
                n += 1
                packet.stream = a_out
            else:
                packet.stream = v_out
            out.mux(packet)
    return dst


# --- damaged files ------------------------------------------------------------------------------


def damage_middle(src: Path, dst: Path, *, size: int = 64 * 1024, seed: int = 1) -> Path:
    """A copy of `src` with `size` bytes of noise written over its middle (the container's
    structure stays; the packets there are garbage)."""
    data = bytearray(src.read_bytes())
    mid = len(data) // 2 - size // 2
    data[mid : mid + size] = np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def shorten_mp4_header(src: Path, dst: Path, *, seconds: float) -> Path:
    """A copy of the MP4 `src` whose headers (mvhd, tkhd, mdhd) claim it lasts `seconds`; the
    samples and their index are untouched, so every frame is still there."""
    data = bytearray(src.read_bytes())

    def walk(start: int, end: int, scale: int) -> None:
        pos = start
        while pos + 8 <= end:
            size = int.from_bytes(data[pos : pos + 4], "big")
            kind = bytes(data[pos + 4 : pos + 8])
            if size < 8:
                return
            body = pos + 8
            if kind in (b"moov", b"trak", b"mdia"):
                walk(body, pos + size, scale)
            elif kind in (b"mvhd", b"mdhd", b"tkhd"):
                v1 = data[body] == 1
                ts_at = body + (20 if v1 else 12)
                timescale = scale if kind == b"tkhd" else int.from_bytes(data[ts_at : ts_at + 4])
                if kind == b"mvhd":
                    scale = timescale
                dur_at = body + (28 if v1 else 20) if kind == b"tkhd" else ts_at + 4
                width = 8 if v1 else 4
                data[dur_at : dur_at + width] = round(seconds * timescale).to_bytes(width, "big")
            pos += size

    walk(0, len(data), 1000)
    dst.write_bytes(bytes(data))
    return dst
