"""``manage.py webcall_probe``: learn what a real VoiceHub socket says, and suggest settings.

A client of :mod:`webcall_widget.voicehub` like the relay, but run by hand against a real
VoiceHub once, not on every frame: :mod:`.run` creates a call and records everything that
crosses its socket, :mod:`.findings` turns the recording into findings and ``UPSTREAM``
settings, :mod:`.speech` makes the audio it speaks.
"""

from __future__ import annotations

from webcall_widget.probe.findings import LIMITS
from webcall_widget.probe.run import ProbeOptions, ProbeResult, run_probe

__all__ = ["LIMITS", "ProbeOptions", "ProbeResult", "run_probe"]
