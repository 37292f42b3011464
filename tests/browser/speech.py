"""What the visitors' microphones say: speech made by espeak-ng (scripts/make-speech-wav)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "tests" / ".artifacts"


def speech(name: str, text: str, tail: float) -> Path:
    """``text`` spoken into ``tests/.artifacts/<name>``, then ``tail`` seconds of silence."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    subprocess.run(
        [str(ROOT / "scripts" / "make-speech-wav"), str(path), text, str(tail)], check=True
    )
    return path


@dataclass(frozen=True)
class Speech:
    """A microphone's sentence, said once each time a page opens the microphone, or
    (``loop``) over and over while it is open."""

    name: str
    text: str
    tail: float
    loop: bool

    @cached_property
    def wav(self) -> Path:
        return speech(f"{self.name}.wav", self.text, self.tail)


SPOKEN_ONCE = Speech("question", "Hello, when will my order arrive?", 1.5, loop=False)
# The visitor talks over the agent's echo.
SPOKEN_AGAIN_AND_AGAIN = Speech("repeating", "Hello, when will my order arrive?", 0.8, loop=True)
