"""An energy voice-activity detector over PCM16 frames, without I/O.

Speech starts after ``start_ms`` of frames louder than ``threshold``, and ends after
``end_ms`` of frames quieter than it. The utterance keeps ``preroll_ms`` of audio from
before the start, so first syllables are not cut. While the agent is talking,
``barge_in_ms`` of speech is required instead of ``start_ms``: a stricter rule, so
coughs, "mm-hm" or echo leaking past the browser's echo cancellation do not interrupt it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from webcall_widget.pcm import rms


@dataclass(frozen=True, slots=True)
class VadConfig:
    threshold: float = 0.0125  # about -38 dBFS
    start_ms: int = 60
    end_ms: int = 600
    barge_in_ms: int = 200
    preroll_ms: int = 200
    max_utterance_ms: int = 15_000


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    pass


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    pcm: bytes
    seconds: float


VadEvent = SpeechStarted | SpeechEnded


@dataclass
class EnergyVad:
    rate: int
    config: VadConfig = field(default_factory=VadConfig)
    speaking: bool = False
    _loud_ms: int = 0
    _quiet_ms: int = 0
    _utterance: bytearray = field(default_factory=bytearray)
    _preroll: deque[bytes] = field(default_factory=deque)
    _preroll_ms: int = 0

    def feed(self, pcm: bytes, *, agent_talking: bool = False) -> list[VadEvent]:
        """One frame in; what it changed out (usually nothing)."""
        if not pcm:
            return []
        frame_ms = max(1, len(pcm) * 1000 // (2 * self.rate))
        loud = rms(pcm) >= self.config.threshold
        events: list[VadEvent] = []
        if not self.speaking:
            self._remember(pcm, frame_ms)
            self._loud_ms = self._loud_ms + frame_ms if loud else 0
            needed = self.config.barge_in_ms if agent_talking else self.config.start_ms
            if self._loud_ms >= needed:
                self.speaking = True
                self._quiet_ms = 0
                self._utterance = bytearray(b"".join(self._preroll))
                self._preroll.clear()
                self._preroll_ms = 0
                events.append(SpeechStarted())
            return events
        self._utterance += pcm
        self._quiet_ms = 0 if loud else self._quiet_ms + frame_ms
        too_long = len(self._utterance) * 1000 // (2 * self.rate) >= self.config.max_utterance_ms
        if self._quiet_ms >= self.config.end_ms or too_long:
            events.append(self._end())
        return events

    def _remember(self, pcm: bytes, frame_ms: int) -> None:
        self._preroll.append(pcm)
        self._preroll_ms += frame_ms
        while self._preroll and self._preroll_ms - frame_ms >= self.config.preroll_ms:
            dropped = self._preroll.popleft()
            self._preroll_ms -= max(1, len(dropped) * 1000 // (2 * self.rate))

    def _end(self) -> SpeechEnded:
        trailing_silence = self._quiet_ms * self.rate // 1000 * 2
        pcm = bytes(self._utterance[: max(0, len(self._utterance) - trailing_silence)])
        self.speaking = False
        self._loud_ms = 0
        self._quiet_ms = 0
        self._utterance = bytearray()
        return SpeechEnded(pcm, len(pcm) / (2 * self.rate))
