from __future__ import annotations

import pytest

from webcall_widget import pcm
from webcall_widget.sandbox import audio


@pytest.mark.parametrize(("source", "target"), [(16000, 24000), (24000, 16000), (16000, 48000)])
def test_resampling_keeps_the_duration(source, target):
    sound = audio.tone((440.0,), 0.5, source)
    out = audio.resample(sound, source, target)
    assert len(out) == pytest.approx(len(sound) * target / source, abs=4)
    assert pcm.rms(out) == pytest.approx(pcm.rms(sound), rel=0.05)


def test_same_rate_is_untouched():
    pcm = audio.tone((440.0,), 0.1, 16000)
    assert audio.resample(pcm, 16000, 16000) is pcm


def test_frames_split_without_losing_bytes():
    pcm = bytes(range(256)) * 5
    assert b"".join(audio.frames(pcm, 300)) == pcm
    assert [len(f) for f in audio.frames(pcm, 300)] == [300, 300, 300, 300, 80]
