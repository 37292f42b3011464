"""django-webcall-widget: chat and voice for Dataqueue VoiceHub agents on any site."""

from __future__ import annotations

__version__ = "0.1.0.dev1"
