"""Speech-like PCM16 for the probe: voiced syllables any voice-activity detector hears.

Not speech (no words), but shaped like it: a 100-160 Hz voice with falling harmonics,
about four syllables a second with short gaps, at a comfortable level. An agent that
transcribes it may hear nothing it understands; what the probe wants to see is that it
reacts at all (a transcript, a reply, its audio), which tells that visitor audio arrives.
"""

from __future__ import annotations

import math
from array import array

from webcall_widget.pcm import to_bytes

SYLLABLES_PER_SECOND = 4.0
LEVEL = 0.3  # of full scale, before the envelope


def speech_like(seconds: float, rate: int) -> bytes:
    """``seconds`` of voiced syllables at ``rate`` Hz, PCM16LE mono."""
    count = int(seconds * rate)
    out = array("h", bytes(2 * count))
    phase = 0.0
    harmonics = [(k, 1.0 / k) for k in range(1, 9)]
    norm = sum(weight for _, weight in harmonics)
    fade = max(1, rate // 50)  # 20 ms in and out of the whole sound
    for i in range(count):
        t = i / rate
        within = (t * SYLLABLES_PER_SECOND) % 1.0
        envelope = math.sin(math.pi * within / 0.8) ** 0.5 if within < 0.8 else 0.0
        pitch = 130.0 + 30.0 * math.sin(2 * math.pi * 0.7 * t)
        phase += 2 * math.pi * pitch / rate
        value = sum(weight * math.sin(k * phase) for k, weight in harmonics) / norm
        edge = min(1.0, i / fade, (count - 1 - i) / fade)
        out[i] = int(32767 * LEVEL * envelope * edge * value)
    return to_bytes(out)


def silence(seconds: float, rate: int) -> bytes:
    return bytes(2 * int(seconds * rate))


def frames(pcm: bytes, rate: int, frame_ms: int = 20) -> list[bytes]:
    size = rate * frame_ms // 1000 * 2
    return [pcm[start : start + size] for start in range(0, len(pcm), size)]
