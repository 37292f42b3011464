"""PCM16 little-endian mono helpers for the sandbox: resampling, tones, frames (levels are
in :mod:`webcall_widget.pcm`).

Pure Python (the ``array`` module), since the sandbox handles seconds of audio, not hours.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator

from webcall_widget.pcm import samples, to_bytes


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Linear-interpolation resampling; good enough for an echo."""
    if from_rate == to_rate or not pcm:
        return pcm
    source = samples(pcm)
    count = max(1, len(source) * to_rate // from_rate)
    step = from_rate / to_rate
    out = array("h", bytes(2 * count))
    last = len(source) - 1
    for i in range(count):
        position = i * step
        j = int(position)
        frac = position - j
        a = source[min(j, last)]
        b = source[min(j + 1, last)]
        out[i] = int(a + (b - a) * frac)
    return to_bytes(out)


def tone(frequencies: tuple[float, ...], seconds: float, rate: int, level: float = 0.25) -> bytes:
    """A chord with 10 ms fades, so it starts and stops without clicks."""
    count = int(seconds * rate)
    fade = max(1, rate // 100)
    out = array("h", bytes(2 * count))
    for i in range(count):
        envelope = min(1.0, i / fade, (count - 1 - i) / fade)
        value = sum(math.sin(2 * math.pi * f * i / rate) for f in frequencies) / len(frequencies)
        out[i] = int(32767 * level * envelope * value)
    return to_bytes(out)


def frames(pcm: bytes, frame_bytes: int) -> Iterator[bytes]:
    for start in range(0, len(pcm), frame_bytes):
        yield pcm[start : start + frame_bytes]
