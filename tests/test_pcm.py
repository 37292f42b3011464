from __future__ import annotations

import pytest

from webcall_widget import pcm
from webcall_widget.sandbox.audio import tone


@pytest.mark.parametrize("level", [pcm.rms, pcm.peak])
def test_silence_has_no_level(level):
    assert level(bytes(640)) == 0.0


@pytest.mark.parametrize("level", [pcm.rms, pcm.peak])
def test_odd_byte_and_empty_frames_have_no_level(level):
    assert level(b"\x00") == 0.0
    assert level(b"") == 0.0


def test_full_scale_tone_levels():
    full = tone((1000.0,), 1.0, 16000, level=1.0)
    assert pcm.rms(full) == pytest.approx(0.707, abs=0.02)
    assert pcm.peak(full) == pytest.approx(1.0, abs=0.01)


def test_peak_counts_negative_samples():
    assert pcm.peak((-16384).to_bytes(2, "little", signed=True) + bytes(2)) == 0.5


def test_samples_are_little_endian():
    assert list(pcm.samples(b"\x01\x00\xff\xff")) == [1, -1]
    assert pcm.to_bytes(pcm.samples(b"\x01\x00\xff\xff")) == b"\x01\x00\xff\xff"
