"""Speech clips (soundtrack/clips.py): each speech region cut from the audio and encoded as FLAC,
long regions cut at their quietest moment, the same bytes for the same audio."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from _media import make_soundtrack, place, speechlike

from vnarrate.soundtrack import SoundtrackError
from vnarrate.soundtrack.clips import (
    SAMPLE_RATE,
    encode_flac,
    piece_count,
    quietest_cut,
    speech_clips,
)

RATE = 16000


def decode(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        assert (stream.codec_context.name, stream.rate, stream.channels) == ("flac", RATE, 1)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(stream)])


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s: a tone 2-4 s (a marker to find in the clips), speech-like sound 6-9 s."""
    t = np.arange(2 * RATE) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    x = place(10.0, [(2.0, tone), (6.0, speechlike(3.0, seed=4))])
    folder = tmp_path_factory.mktemp("clips")
    return make_soundtrack(folder / "talk.mp4", [x], rate=RATE, codec="flac")


def test_each_region_becomes_one_flac_clip_with_its_own_samples(talk: Path) -> None:
    clips = list(speech_clips(talk, [(2.0, 4.0), (6.0, 9.0)]))
    assert [(c.region, c.start_s, c.end_s) for c in clips] == [(0, 2.0, 4.0), (1, 6.0, 9.0)]
    tone = decode(clips[0].audio)
    assert len(tone) == 2 * RATE
    # The first clip is the tone, from its first sample: the times mean the same samples.
    # A sine in phase with the tone's own start explains it: no sample was lost or shifted.
    sine = np.sin(2 * np.pi * 440 * np.arange(len(tone)) / RATE)
    assert np.dot(tone, sine) / np.dot(sine, sine) == pytest.approx(0.3 * 32767, rel=0.02)
    assert clips[1].seconds == pytest.approx(3.0)


def test_the_same_audio_gives_the_same_bytes(talk: Path) -> None:
    first = [c.audio for c in speech_clips(talk, [(6.0, 9.0)])]
    again = [c.audio for c in speech_clips(talk, [(6.0, 9.0)])]
    assert first == again and b"Lavf" not in first[0]


def test_a_long_region_is_cut_at_its_quietest_moment(tmp_path: Path) -> None:
    # Speech with a pause at 2.6-2.9 s, cut with a 3.5 s cap: the cut lands in the pause.
    x = place(6.0, [(0.0, speechlike(2.6, seed=1)), (2.9, speechlike(3.1, seed=2))])
    clip = make_soundtrack(tmp_path / "long.mp4", [x], rate=RATE, codec="flac", video=False)
    clips = list(speech_clips(clip, [(0.0, 6.0)], max_piece_s=3.5))
    assert [c.region for c in clips] == [0, 0]
    assert 2.6 <= clips[0].end_s <= 2.9 and clips[1].start_s == clips[0].end_s
    assert clips[1].end_s == 6.0
    assert piece_count([(0.0, 6.0)], 3.5) == len(clips)


def test_regions_past_the_end_of_the_audio_get_what_there_is(talk: Path) -> None:
    clips = list(speech_clips(talk, [(8.0, 12.0), (20.0, 21.0)]))
    assert [(c.region, c.start_s) for c in clips] == [(0, 8.0)]
    assert clips[0].end_s == pytest.approx(10.0, abs=0.05)


def test_no_regions_reads_nothing_and_unreadable_audio_is_a_soundtrack_error(
    tmp_path: Path,
) -> None:
    assert list(speech_clips(tmp_path / "missing.mp4", [])) == []
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SoundtrackError):
        list(speech_clips(bad, [(0.0, 1.0)]))


def test_quietest_cut_and_encoding_helpers() -> None:
    x = np.ones(SAMPLE_RATE, np.float32)
    x[12000:12320] = 0.0  # 20 ms of silence
    assert 12000 <= quietest_cut(x, 8000) <= 12320
    assert quietest_cut(x[:100], 8000) == 100  # no room: cut at the end
    assert len(decode(encode_flac(np.zeros(1600, np.float32)))) == 1600
