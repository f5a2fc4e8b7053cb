"""Audio: fitting clips to the timeline (every branch), encoding (duration and speech onsets of
the decoded file), the untimed track, and muxing (streams, copied video, ducking measured)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _media import decode_audio as decode
from _media import make_video, onsets, speech_pcm, tone_level, video_packets
from conftest import MEDIA, requires_media

from vnarrate.errors import OutputError, UsageError
from vnarrate.media.audio import encode_audio, time_stretch, trim_silence
from vnarrate.media.mux import DUCK_ATTACK_S, mux
from vnarrate.models import Clip, Placement, Segment
from vnarrate.narration.timeline import UNTIMED_GAP_S, fit_timeline, untimed_track

SR = 24000
DURATION = 6.0
STARTS = (0.5, 2.5, 4.5)  # slots: 0.5-2.5, 2.5-4.5, 4.5-6.0 (less the 0.15 s gap)


# --- helpers (decoding and measuring live in _media.py) ---------------------------------------


def db(ratio: float) -> float:
    return 20 * math.log10(ratio)


def segments(starts: tuple[float, ...] = STARTS) -> list[Segment]:
    ends = [*starts[1:], DURATION]
    return [
        Segment(start_s=s, end_s=e, text=f"line {i}")
        for i, (s, e) in enumerate(zip(starts, ends, strict=True))
    ]


def clip(i: int, seconds: float, speed: float = 1.0) -> Clip:
    return Clip(segment=i, text=f"line {i}", pcm=speech_pcm(seconds), speed=speed)


def no_resynthesis(i: int, speed: float) -> Clip:
    raise AssertionError(f"segment {i} should not have been spoken again (speed {speed})")


class Resynth:
    """A fake TTS that speaks `base` seconds of speech at 1.0 in base/speed seconds."""

    def __init__(self, base: dict[int, float], *, factor: float = 1.0) -> None:
        self.base = base
        self.factor = factor  # >1: the new take comes out longer than it should
        self.calls: list[tuple[int, float]] = []

    def __call__(self, i: int, speed: float) -> Clip:
        self.calls.append((i, speed))
        return clip(i, self.base[i] / speed * self.factor, speed)


def starts_in_track(track: np.ndarray) -> list[float]:
    return onsets(track.astype(np.float32) / 32768)


# --- fitting -----------------------------------------------------------------------------------


def test_fits_as_is() -> None:
    track, placed = fit_timeline(
        segments(),
        [clip(0, 1.0), clip(1, 1.2), clip(2, 1.0)],
        DURATION,
        resynthesize=no_resynthesis,
    )
    assert len(track) == round(DURATION * SR)
    assert [p.start_s for p in placed] == list(STARTS)
    assert [p.segment for p in placed] == [0, 1, 2]
    assert all(p.speed == 1.0 and p.stretch == 1.0 and p.pushed_s == 0.0 for p in placed)
    assert [round(p.end_s - p.start_s, 3) for p in placed] == [1.0, 1.2, 1.0]
    assert [p.slot_end_s for p in placed] == [2.5, 4.5, DURATION]
    assert starts_in_track(track) == pytest.approx(list(STARTS), abs=0.002)


def test_resynthesis_at_a_higher_speed_fits() -> None:
    tts = Resynth({0: 2.2})
    track, placed = fit_timeline(
        segments(), [clip(0, 2.2), clip(1, 1.0), clip(2, 1.0)], DURATION, resynthesize=tts
    )
    assert len(tts.calls) == 1 and tts.calls[0][0] == 0
    speed = tts.calls[0][1]
    assert 1.18 < speed <= 1.25  # 2.2 s into 1.85 s needs ~1.19, plus a small margin
    p = placed[0]
    assert p.speed == speed and p.stretch == 1.0 and p.end_s <= 2.5 - 0.15
    assert placed[1].pushed_s == 0.0
    assert len(track) == round(DURATION * SR)


def test_stretch_fits_without_resynthesis() -> None:
    _, placed = fit_timeline(
        segments(), [clip(0, 2.2), clip(1, 1.0), clip(2, 1.0)], DURATION, resynthesize=None
    )
    p = placed[0]
    assert p.speed == 1.0 and 1.18 < p.stretch <= 1.25
    assert p.end_s <= 2.5 - 0.15 + 0.005
    assert p.end_s - p.start_s == pytest.approx(2.2 / p.stretch, abs=0.01)
    assert placed[1].start_s == 2.5 and placed[1].pushed_s == 0.0


def test_resynthesis_then_stretch_fits() -> None:
    tts = Resynth({0: 2.8})
    _, placed = fit_timeline(
        segments(), [clip(0, 2.8), clip(1, 1.0), clip(2, 1.0)], DURATION, resynthesize=tts
    )
    assert tts.calls == [(0, 1.25)]  # capped at max_speed
    p = placed[0]
    assert p.speed == 1.25 and 1.15 < p.stretch <= 1.25  # 2.24 s into 1.85 s
    assert p.end_s <= 2.35 + 0.005 and placed[1].pushed_s == 0.0


def test_overrun_pushes_the_next_segment_later_and_reports_it() -> None:
    tts = Resynth({0: 3.5})
    track, placed = fit_timeline(
        segments(), [clip(0, 3.5), clip(1, 1.0), clip(2, 1.0)], DURATION, resynthesize=tts
    )
    first, second, third = placed
    assert first.speed == 1.25 and first.stretch == pytest.approx(1.25)
    assert first.end_s == pytest.approx(0.5 + 3.5 / 1.25 / 1.25, abs=0.01)  # not cut
    assert first.end_s > first.slot_end_s - 0.15  # it overruns its slot
    assert second.start_s == pytest.approx(first.end_s + 0.15, abs=0.001)
    assert (
        second.pushed_s == pytest.approx(second.start_s - 2.5, abs=0.001) and second.pushed_s > 0.3
    )
    assert third.pushed_s == 0.0 and third.start_s == 4.5  # back on time where there is room
    assert len(track) == round(DURATION * SR)
    assert starts_in_track(track) == pytest.approx(
        [first.start_s, second.start_s, third.start_s], abs=0.002
    )


def test_last_clip_past_the_end_grows_the_track() -> None:
    track, placed = fit_timeline(
        segments(), [clip(0, 1.0), clip(1, 1.0), clip(2, 3.0)], DURATION, resynthesize=None
    )
    last = placed[-1]
    assert last.stretch == pytest.approx(1.25) and last.end_s == pytest.approx(4.5 + 2.4, abs=0.01)
    assert len(track) == round(last.end_s * SR)  # nothing cut off
    tail = np.abs(track[-SR // 50 :].astype(np.int32))
    assert tail.max() > 1000  # still speaking in the last 20 ms


def test_a_longer_new_take_is_not_used() -> None:
    tts = Resynth({0: 2.2}, factor=1.5)  # the "faster" take comes out longer
    _, placed = fit_timeline(
        segments(), [clip(0, 2.2), clip(1, 1.0), clip(2, 1.0)], DURATION, resynthesize=tts
    )
    assert len(tts.calls) == 1
    assert placed[0].speed == 1.0 and placed[0].stretch > 1.15  # kept the first take, stretched


def test_no_resynthesis_when_already_at_max_speed() -> None:
    _, placed = fit_timeline(
        segments(),
        [clip(0, 2.0, speed=1.25), clip(1, 1.0), clip(2, 1.0)],
        DURATION,
        resynthesize=no_resynthesis,
    )
    assert placed[0].speed == 1.25 and placed[0].stretch > 1.0


def test_silence_around_the_words_is_trimmed_so_speech_starts_on_time() -> None:
    silence = b"\0\0" * round(0.3 * SR)
    padded = Clip(segment=0, text="x", pcm=silence + speech_pcm(1.0) + silence + silence)
    track, placed = fit_timeline(
        segments(), [padded, clip(1, 1.0), clip(2, 1.0)], DURATION, resynthesize=no_resynthesis
    )
    assert placed[0].start_s == 0.5
    assert placed[0].end_s - placed[0].start_s == pytest.approx(1.0 + 0.01 + 0.06, abs=0.011)
    assert starts_in_track(track)[0] == pytest.approx(0.5 + 0.01, abs=0.011)
    assert trim_silence(np.zeros(SR, dtype=np.int16)).size == 0


def test_clips_at_another_rate_are_resampled() -> None:
    other = Clip(segment=0, text="x", pcm=speech_pcm(1.0, sample_rate=48000), sample_rate=48000)
    track, placed = fit_timeline(
        segments(), [other, clip(1, 1.0), clip(2, 1.0)], DURATION, resynthesize=None
    )
    assert placed[0].end_s - placed[0].start_s == pytest.approx(1.0, abs=0.01)
    assert len(track) == round(DURATION * SR)


def test_time_stretch_keeps_pitch() -> None:
    x = np.frombuffer(speech_pcm(2.0, freq=220.0), dtype="<i2")
    y = time_stretch(x, SR, 1.25)
    assert len(y) / SR == pytest.approx(1.6, abs=0.01)
    yf = y.astype(np.float32) / 32768
    assert tone_level(yf, SR, 220.0, 0.2, 1.4) > 5 * tone_level(yf, SR, 275.0, 0.2, 1.4)


def test_untimed_track_is_as_long_as_the_speech() -> None:
    track = untimed_track([clip(0, 1.0), clip(1, 2.0), clip(2, 0.5)])
    assert len(track) == round((3.5 + 2 * UNTIMED_GAP_S) * SR)
    assert starts_in_track(track) == pytest.approx(
        [0.0, 1.0 + UNTIMED_GAP_S, 3.0 + 2 * UNTIMED_GAP_S], abs=0.002
    )
    assert len(untimed_track([])) == 0


# --- encoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".mp3", ".wav", ".m4a"])
def test_encoded_file_is_as_long_as_the_video_and_speech_starts_on_time(
    tmp_path: Path, ext: str
) -> None:
    starts = (0.0, 1.37, 3.05, 4.5)
    segs = [Segment(start_s=s, end_s=s + 1, text="x") for s in starts]
    clips = [clip(i, 0.9) for i in range(len(starts))]
    track, placed = fit_timeline(segs, clips, DURATION, resynthesize=None)
    out = encode_audio(track, SR, tmp_path / f"narration{ext}")
    x = decode(out)
    assert abs(len(x) / SR - DURATION) <= 0.05
    found = onsets(x)
    assert len(found) == len(starts)
    errors = [abs(a - b) for a, b in zip(found, starts, strict=True)]
    assert max(errors) <= 0.06, errors
    assert [p.start_s for p in placed] == list(starts)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"narration{ext}"]  # no temp files


def test_mp3_stream_properties(tmp_path: Path) -> None:
    out = encode_audio(np.zeros(SR, dtype=np.int16), SR, tmp_path / "a.mp3")
    with av.open(str(out)) as c:
        s = c.streams.audio[0]
        assert c.format.name == "mp3" and s.codec_context.name.startswith("mp3")
        assert s.codec_context.sample_rate == SR and s.codec_context.channels == 1


def test_encode_refuses_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"\.mp3, \.wav or \.m4a"):
        encode_audio(np.zeros(100, dtype=np.int16), SR, tmp_path / "a.ogg")


# --- muxing ------------------------------------------------------------------------------------


def streams(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name) for s in c.streams]


def audio_duration(path: Path) -> float:
    return len(decode(path, 48000)) / 48000


def narration(
    duration: float, starts: tuple[float, ...], seconds: float
) -> tuple[np.ndarray, list[Placement]]:
    segs = [Segment(start_s=s, end_s=s + seconds, text="x") for s in starts]
    return fit_timeline(
        segs, [clip(i, seconds) for i in range(len(starts))], duration, resynthesize=None
    )


def test_mux_ducks_the_original_audio_under_speech(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=4.0, fps=10, audio=True)  # 440 Hz, amp 0.2
    track, placed = narration(4.0, (0.5, 2.5), 1.0)
    out = mux(video, track, SR, placed, tmp_path / "out.mp4", duck_db=-12.0)

    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    assert video_packets(out) == video_packets(video)  # copied, not re-encoded
    with av.open(str(out)) as c, av.open(str(video)) as i:
        assert c.streams.video[0].duration * c.streams.video[0].time_base == pytest.approx(
            float(i.streams.video[0].duration * i.streams.video[0].time_base)
        )
    x = decode(out, 48000)
    assert abs(len(x) / 48000 - 4.0) <= 0.05
    full = tone_level(x, 48000, 440.0, 1.95, 2.2)  # between lines, after the release
    under = tone_level(x, 48000, 440.0, 0.7, 1.3)  # while the narrator speaks
    assert full == pytest.approx(0.2, rel=0.15)
    assert db(under / full) == pytest.approx(-12.0, abs=1.0)
    # a ramp, not a step: halfway through the attack the level is in between
    mid = tone_level(
        x, 48000, 440.0, 0.5 - DUCK_ATTACK_S / 2 - 0.02, 0.5 - DUCK_ATTACK_S / 2 + 0.02
    )
    assert under * 1.5 < mid < full / 1.3
    assert tone_level(x, 48000, 220.0, 0.7, 1.3) > 0.2  # the narration is there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "v.mp4"]


def test_mux_replace_audio_and_onsets(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=4.0, fps=10, audio=True)
    starts = (0.3, 1.62, 2.9)
    track, placed = narration(4.0, starts, 0.8)
    out = mux(video, track, SR, placed, tmp_path / "out.mov", replace_audio=True, duck_db=-12.0)
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    x = decode(out, 48000)
    assert tone_level(x, 48000, 440.0, 0.0, 0.25) < 0.005  # original gone
    found = onsets(x, 48000)
    assert max(abs(a - b) for a, b in zip(found, starts, strict=True)) <= 0.06


def test_mux_video_without_audio_gets_the_narration(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=3.0, fps=10)
    track, placed = narration(3.0, (0.5, 1.8), 0.8)
    out = mux(video, track, SR, placed, tmp_path / "out.mkv", duck_db=-12.0)
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    assert video_packets(out) == video_packets(video)
    assert abs(audio_duration(out) - 3.0) <= 0.05
    found = onsets(decode(out, 48000), 48000)
    assert max(abs(a - b) for a, b in zip(found, (0.5, 1.8), strict=True)) <= 0.06


def test_mux_reencodes_a_codec_the_container_cannot_hold(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.webm", seconds=2.0, fps=10, codec="libvpx")
    track, placed = narration(2.0, (0.5,), 0.8)
    said: list[str] = []
    out = mux(video, track, SR, placed, tmp_path / "out.mp4", report=said.append, duck_db=-12.0)
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    assert len(said) == 1 and "vp8" in said[0] and "re-encoding" in said[0]
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 20


def test_mux_uses_the_default_audio_track(tmp_path: Path) -> None:
    video = tmp_path / "two.mkv"
    _two_audio_tracks(video, default=1)  # track 0: 440 Hz, track 1 (default): 880 Hz
    track, placed = narration(2.0, (1.5,), 0.3)
    out = mux(video, track, SR, placed, tmp_path / "out.mp4", duck_db=-12.0)
    # The narrated track first (the default one, 880 Hz), then the other track as it was.
    assert streams(out) == [("video", "h264"), ("audio", "aac"), ("audio", "aac")]
    x = decode(out, 48000)
    assert tone_level(x, 48000, 880.0, 0.2, 1.0) > 0.15
    assert tone_level(x, 48000, 440.0, 0.2, 1.0) < 0.01
    with av.open(str(out)) as c:
        other = c.streams.audio[1]
        y = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(other)])
    assert tone_level(y, 48000, 440.0, 0.2, 1.0) > 0.1  # kept, not mixed with the narration
    replaced = mux(video, track, SR, placed, tmp_path / "r.mp4", duck_db=-12.0, replace_audio=True)
    assert streams(replaced) == [("video", "h264"), ("audio", "aac")]


def test_mux_refuses_bad_targets(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=1.0, fps=10)
    track, placed = narration(1.0, (0.1,), 0.3)
    with pytest.raises(UsageError):
        mux(video, track, SR, placed, tmp_path / "out.avi", duck_db=-12.0)
    with pytest.raises(OutputError):
        mux(video, track, SR, placed, video, duck_db=-12.0)


def _two_audio_tracks(path: Path, *, default: int) -> None:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        tracks = [out.add_stream("aac", rate=48000, layout="mono") for _ in range(2)]
        for k, t in enumerate(tracks):
            t.disposition = (
                av.stream.Disposition.default if k == default else av.stream.Disposition(0)
            )
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90, np.uint8), format="rgb24")
            frame.pts = i
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        for k, t in enumerate(tracks):
            freq = 440.0 * (k + 1)
            sig = (0.2 * np.sin(2 * np.pi * freq * np.arange(96000) / 48000)).astype(np.float32)
            for pos in range(0, len(sig), 1024):
                af = av.AudioFrame.from_ndarray(
                    sig[pos : pos + 1024].reshape(1, -1), format="fltp", layout="mono"
                )
                af.sample_rate, af.pts, af.time_base = 48000, pos, Fraction(1, 48000)
                for p in t.encode(af):
                    out.mux(p)
            for p in t.encode():
                out.mux(p)


@requires_media
@pytest.mark.media
def test_mux_real_clips_keep_rotation_and_downmix(tmp_path: Path) -> None:
    fire = MEDIA / "fire2.mp4"  # rotated 180°, AAC mono
    track, placed = narration(2.38, (0.2,), 1.0)
    out = mux(fire, track, SR, placed, tmp_path / "fire.mp4", duck_db=-12.0)
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).rotation in (180, -180)
    assert video_packets(out) == video_packets(fire)

    vertical = MEDIA / "bbb_vertical.mp4"  # Opus 5.1 in MP4
    track, placed = narration(15.0, (1.0, 6.0), 2.0)
    out = mux(vertical, track, SR, placed, tmp_path / "vertical.mp4", duck_db=-12.0)
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.audio[0].codec_context.channels == 2
    assert abs(audio_duration(out) - 15.0) <= 0.1

    nasa = MEDIA / "nasa_13013.mp4"  # 2 video, 2 audio, 2 subtitle streams
    track, placed = narration(13.0, (1.0,), 2.0)
    out = mux(nasa, track, SR, placed, tmp_path / "nasa.mkv", duck_db=-12.0)
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "audio"]  # both tracks kept
        assert (c.streams.video[0].width, c.streams.video[0].height) == (320, 180)
