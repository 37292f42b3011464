"""Everything we know or assume about VoiceHub's wire protocol, in one place.

Documented by VoiceHub: the create-web-call endpoint, its headers and body, the call
modes, and the socket events ``channel.join`` / ``channel.joined`` / ``channel.leave``
with the rule that each mode joins only the channels it needs.

Assumed (the rest of the "WebCall Socket V1" page could not be obtained): the names of
the text, audio, interruption, end and error events, their payloads, and the audio
format. The names are defaults of :class:`EventNames`; everything else about the socket
(how it is reached, payload shapes, message fields, how calls end) is a default of the
profile (:mod:`~webcall_widget.voicehub.profile`). All of it is overridable through
``WEBCALL_WIDGET["UPSTREAM"]``, so learning the real protocol is a change of settings.
The typed events below are what the relay sees, whatever the wire looks like.

The sandbox imports the same names, so it always speaks what the relay expects.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CREATE_WEB_CALL_PATH = "/calls/public/create-web-call"
HEADER_API_KEY = "x-api-access-key"
HEADER_AGENT_ID = "voicehub-agent-id"
# Both spellings appear in VoiceHub's docs for the socket path of a new call.
SOCKET_PATH_FIELDS = ("webCallSocketPath", "webSocketPath")
DEFAULT_VOICEHUB_URL = "https://voicehub.dataqueue.ai"


class Mode(enum.StrEnum):
    """A call's media, spelled exactly as VoiceHub's ``type`` field expects."""

    TEXT = "text"
    WEB_AUDIO = "WebAudio"
    TEXT_AUDIO = "TextAudio"

    @property
    def has_text(self) -> bool:
        return self is not Mode.WEB_AUDIO

    @property
    def has_audio(self) -> bool:
        return self is not Mode.TEXT


class Channel(enum.StrEnum):
    AUDIO = "audio"
    TEXT = "text"


# Every joined channel costs credits: join only what the mode needs. Audio calls join
# ``text`` too, because it carries the ``created`` transcript events.
CHANNELS_FOR_MODE: Mapping[Mode, tuple[Channel, ...]] = {
    Mode.TEXT: (Channel.TEXT,),
    Mode.WEB_AUDIO: (Channel.AUDIO, Channel.TEXT),
    Mode.TEXT_AUDIO: (Channel.AUDIO, Channel.TEXT),
}


class Role(enum.StrEnum):
    USER = "user"
    AGENT = "agent"


class Transport(enum.StrEnum):
    """How the live socket is framed."""

    SOCKETIO = "socketio"  # Socket.IO v4 with ``webCallSocketPath`` as its path
    WEBSOCKET = "websocket"  # plain WebSocket, ``{"event": ..., "data": ...}`` JSON frames


@dataclass(frozen=True, slots=True)
class EventNames:
    """Socket event names; the first three are documented, the rest assumed."""

    join: str = "channel.join"
    joined: str = "channel.joined"
    leave: str = "channel.leave"
    text_message: str = "text.message"
    created: str = "created"
    audio_chunk: str = "audio.chunk"
    audio_clear: str = "audio.clear"
    call_ended: str = "call.ended"
    error: str = "error"
    exception: str = "exception"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """PCM16 little-endian mono in both directions, in frames of ``frame_ms``."""

    input_rate: int = 16000
    output_rate: int = 16000
    frame_ms: int = 20
    encoding: str = "pcm16le"

    @property
    def input_frame_bytes(self) -> int:
        return self.input_rate * self.frame_ms // 1000 * 2

    @property
    def output_frame_bytes(self) -> int:
        return self.output_rate * self.frame_ms // 1000 * 2


# Upstream events, decoded into the few shapes the relay acts on.


@dataclass(frozen=True, slots=True)
class Joined:
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    role: Role
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class Audio:
    pcm: bytes


@dataclass(frozen=True, slots=True)
class AudioClear:
    pass


@dataclass(frozen=True, slots=True)
class CallEnded:
    reason: str


@dataclass(frozen=True, slots=True)
class UpstreamError:
    message: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """An event we do not act on; the session logs and counts it, the relay never sees it."""

    name: str
    data: Any = None


@dataclass(frozen=True, slots=True)
class BadPayload:
    """A known event whose payload is not what the profile says; logged and counted."""

    name: str
    problem: str  # what was expected and what came, with the setting to look at
    data: Any = None


UpstreamEvent = (
    Joined | Message | Audio | AudioClear | CallEnded | UpstreamError | Unknown | BadPayload
)


def join_payload(call_id: str, channels: tuple[str, ...]) -> dict[str, Any]:
    return {"callId": call_id, "channels": list(channels)}


def text_payload(call_id: str, text: str) -> dict[str, Any]:
    return {"callId": call_id, "text": text}
