"""PCM16 little-endian mono samples and their levels, shared by the relay and the sandbox.

Pure Python on the ``array`` module: the relay looks at a frame only now and then (see
:mod:`webcall_widget.relay.activity`), the sandbox at seconds of audio, not hours.
"""

from __future__ import annotations

import math
import sys
from array import array

_BIG_ENDIAN = sys.byteorder == "big"


def samples(pcm: bytes) -> array[int]:
    values = array("h")
    values.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def to_bytes(values: array[int]) -> bytes:
    if _BIG_ENDIAN:
        values = array("h", values)
        values.byteswap()
    return values.tobytes()


def rms(pcm: bytes) -> float:
    """Root mean square level, 0.0 (silence) to 1.0 (full scale)."""
    values = samples(pcm)
    if not values:
        return 0.0
    return math.sqrt(sum(v * v for v in values) / len(values)) / 32768.0


def peak(pcm: bytes) -> float:
    """The loudest sample, 0.0 (silence) to 1.0 (full scale)."""
    values = samples(pcm)
    if not values:
        return 0.0
    return max(max(values), -min(values)) / 32768.0
