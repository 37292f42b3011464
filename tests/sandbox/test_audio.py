from __future__ import annotations

import pytest

from webcall_widget.sandbox import audio


def test_silence_has_no_level():
    assert audio.rms(bytes(640)) == 0.0


def test_full_scale_tone_level():
    level = audio.rms(audio.tone((1000.0,), 1.0, 16000, level=1.0))
    assert level == pytest.approx(0.707, abs=0.02)


def test_odd_byte_is_ignored():
    assert audio.rms(b"\x00") == 0.0


@pytest.mark.parametrize(("source", "target"), [(16000, 24000), (24000, 16000), (16000, 48000)])
def test_resampling_keeps_the_duration(source, target):
    pcm = audio.tone((440.0,), 0.5, source)
    out = audio.resample(pcm, source, target)
    assert len(out) == pytest.approx(len(pcm) * target / source, abs=4)
    assert audio.rms(out) == pytest.approx(audio.rms(pcm), rel=0.05)


def test_same_rate_is_untouched():
    pcm = audio.tone((440.0,), 0.1, 16000)
    assert audio.resample(pcm, 16000, 16000) is pcm


def test_frames_split_without_losing_bytes():
    pcm = bytes(range(256)) * 5
    assert b"".join(audio.frames(pcm, 300)) == pcm
    assert [len(f) for f in audio.frames(pcm, 300)] == [300, 300, 300, 300, 80]
