"""A VoiceHub that streams the agent's words as ``transcript.delta`` events: what settings
cannot say, said in code. Name it in ``WEBCALL_WIDGET["UPSTREAM"]["PROTOCOL"]``."""

from __future__ import annotations

from typing import Any

from webcall_widget.voicehub.events import Role, UpstreamEvent
from webcall_widget.voicehub.protocol import SettingsProtocol


class MyVoiceHub(SettingsProtocol):
    def decode(self, name: str, data: Any) -> UpstreamEvent:
        if name == "transcript.delta":  # {"itemId", "speaker", "delta"}
            role = Role.USER if data["speaker"] == "caller" else Role.AGENT
            return self.message(data["itemId"], role, data["delta"], final=False)
        return super().decode(name, data)
