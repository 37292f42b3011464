"""The upstream protocol profile: every assumption about VoiceHub's live socket, as data.

VoiceHub documents only ``channel.join`` / ``channel.joined`` / ``channel.leave``. The
rest (how ``webCallSocketPath`` is used, what the connection carries, the audio events
and payloads of each direction, the message fields, how a call ends) is a value of
:class:`UpstreamProfile`, built by :mod:`webcall_widget.conf` from
``WEBCALL_WIDGET["UPSTREAM"]``. The session (:mod:`~webcall_widget.voicehub.session`),
the default protocol (:mod:`~webcall_widget.voicehub.protocol`), the probe and the
sandbox all read this one value, so that learning the real protocol is a change of
settings. What settings cannot express goes through ``UPSTREAM.PROTOCOL``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webcall_widget.voicehub.events import AudioFormat, EventNames, Transport

DEFAULT_PROTOCOL = "webcall_widget.voicehub.protocol.SettingsProtocol"
DEFAULT_SOCKETIO_PATH = "/socket.io/"
# Placeholders a connection template may use. The API key goes to VoiceHub only when a
# template asks for it, and never anywhere a browser can see.
PLACEHOLDERS = ("callId", "agentId", "apiKey")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


class SocketPathAs(enum.StrEnum):
    """What ``webCallSocketPath`` (from create-web-call) is."""

    PATH = "path"  # the Socket.IO path (Engine.IO endpoint) on the VoiceHub host; or a URL
    NAMESPACE = "namespace"  # a Socket.IO namespace, served on SOCKETIO_PATH
    URL = "url"  # a complete ws(s):// or http(s):// URL of the socket
    AUTO = "auto"  # try it as a path, then as a namespace


class AudioShape(enum.StrEnum):
    """How one direction's audio event carries PCM16 mono."""

    BINARY = "binary"  # the payload is the bytes
    OBJECT = "object"  # {"callId": ..., <field>: <bytes>} (Socket.IO binary attachment)
    BASE64 = "base64"  # {"callId": ..., <field>: "<base64>"} in JSON


class MessageUpdates(enum.StrEnum):
    """What a message with an id seen before carries."""

    REPLACE = "replace"  # the whole text so far
    APPEND = "append"  # a piece to add (token streaming)


class CallEnd(enum.StrEnum):
    """What ends a call normally, from VoiceHub's side."""

    EVENT = "event"  # EVENTS call_ended; a disconnect without it is a failure
    DISCONNECT = "disconnect"  # the server disconnecting the socket
    EITHER = "either"


class Rejoin(enum.StrEnum):
    """Whether a call under way may be joined again from a new socket, as the relay does
    to move a call to another process after a crash or a deploy (VoiceHub does not
    document it; ``manage.py webcall_probe`` finds out)."""

    AUTO = "auto"  # try; a refusal ends the call as before
    NEVER = "never"  # do not try: a call ends with the socket that joined it


class JoinConfirmation(enum.StrEnum):
    """How VoiceHub confirms ``channel.join``."""

    EVENT = "event"  # EVENTS joined
    ACK = "ack"  # a Socket.IO acknowledgement of the join event
    NONE = "none"  # it does not: the call is live once the join is sent


@dataclass(frozen=True, slots=True)
class AudioDirection:
    """One direction of audio: the event, its payload shape, the PCM16 sample rate."""

    event: str
    shape: AudioShape = AudioShape.BINARY
    field: str = "audio"
    rate: int = 16000

    def describe(self) -> str:
        if self.shape is AudioShape.BINARY:
            how = "binary"
        elif self.shape is AudioShape.OBJECT:
            how = f"binary in field {self.field!r}"
        else:
            how = f"base64 in field {self.field!r}"
        return f"event {self.event!r}, {how}, {self.rate} Hz"


@dataclass(frozen=True, slots=True)
class MessageFields:
    """Where a message event keeps its parts; dotted names reach into nested objects.

    ``id`` or ``final`` None: messages do not carry one (ids are then assigned per turn;
    every message is final)."""

    id: str | None = "id"
    role: str = "role"
    text: str = "text"
    final: str | None = "final"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return ("id", "role", "text", "final")

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "role": self.role, "text": self.text, "final": self.final}


@dataclass(frozen=True, slots=True)
class ConnectTemplate:
    """What the socket's opening carries, with ``{callId}``, ``{agentId}``, ``{apiKey}``
    placeholders in its string values: the Socket.IO CONNECT ``auth`` payload, query
    parameters, and HTTP headers of the WebSocket handshake."""

    auth: Mapping[str, Any] | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def uses_api_key(self) -> bool:
        return "apiKey" in placeholders_in([self.auth, self.query, self.headers])

    @property
    def is_empty(self) -> bool:
        return self.auth is None and not self.query and not self.headers


@dataclass(frozen=True, slots=True)
class UpstreamProfile:
    """Everything the relay assumes about one VoiceHub socket."""

    transport: Transport = Transport.SOCKETIO
    socket_path_as: SocketPathAs = SocketPathAs.PATH
    socketio_path: str = DEFAULT_SOCKETIO_PATH
    connect: ConnectTemplate = field(default_factory=ConnectTemplate)
    events: EventNames = field(default_factory=EventNames)
    audio_in: AudioDirection = field(default_factory=lambda: AudioDirection("audio.chunk"))
    audio_out: AudioDirection = field(default_factory=lambda: AudioDirection("audio.chunk"))
    message_fields: MessageFields = field(default_factory=MessageFields)
    visitor_roles: tuple[str, ...] = ("user",)
    message_updates: MessageUpdates = MessageUpdates.REPLACE
    call_end: CallEnd = CallEnd.EVENT
    join_confirmation: JoinConfirmation = JoinConfirmation.EVENT
    rejoin: Rejoin = Rejoin.AUTO
    protocol: str = DEFAULT_PROTOCOL
    frame_ms: int = 20  # the visitor's audio, per frame sent

    @property
    def audio(self) -> AudioFormat:
        return AudioFormat(
            input_rate=self.audio_in.rate, output_rate=self.audio_out.rate, frame_ms=self.frame_ms
        )

    def contradictions(self) -> list[str]:
        """Settings that cannot work together, each as a sentence with what to do."""
        found = []
        if self.transport is Transport.WEBSOCKET:
            if self.socket_path_as in (SocketPathAs.NAMESPACE, SocketPathAs.AUTO):
                found.append(
                    f"SOCKET_PATH_AS {self.socket_path_as.value!r} needs TRANSPORT 'socketio': "
                    "a plain WebSocket has no namespaces. Use 'path' or 'url'."
                )
            if self.connect.auth is not None:
                found.append(
                    "CONNECT_AUTH needs TRANSPORT 'socketio' (it is the Socket.IO CONNECT "
                    "payload). With a plain WebSocket use CONNECT_QUERY or CONNECT_HEADERS."
                )
            if self.join_confirmation is JoinConfirmation.ACK:
                found.append(
                    "JOIN_CONFIRMATION 'ack' needs TRANSPORT 'socketio': a plain WebSocket "
                    "has no acknowledgements. Use 'event' or 'none'."
                )
            for name, direction in (("AUDIO_IN", self.audio_in), ("AUDIO_OUT", self.audio_out)):
                if direction.shape is AudioShape.OBJECT:
                    found.append(
                        f"{name}_FORMAT 'object' needs TRANSPORT 'socketio': JSON frames cannot "
                        "carry binary. Use 'base64' (or 'binary' for bare binary frames)."
                    )
        if self.audio_out.event in self._named_events():
            found.append(
                f"AUDIO_OUT_EVENT {self.audio_out.event!r} is also the name of another "
                "event in EVENTS; give agent audio its own event."
            )
        return found

    def _named_events(self) -> set[str]:
        names = self.events
        return {
            names.created,
            names.joined,
            names.audio_clear,
            names.call_ended,
            names.error,
            names.exception,
        }


def placeholders_in(value: Any) -> set[str]:
    """Every ``{name}`` in the string values of ``value`` (nested dicts and lists)."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(_PLACEHOLDER.findall(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= placeholders_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= placeholders_in(item)
    return found


def render(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with each ``{name}`` of ``values`` filled in; other braces stay as they are."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, Mapping):
        return {key: render(item, values) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, values) for item in value]
    return value


def with_overrides(
    profile: UpstreamProfile, transport: Transport | None, names: EventNames | None
) -> UpstreamProfile:
    """``profile`` with another transport and/or other event names (the audio events of
    both directions follow ``names.audio_chunk``), as the older keyword arguments gave."""
    if transport is not None:
        profile = dataclasses.replace(profile, transport=transport)
    if names is not None:
        profile = dataclasses.replace(
            profile,
            events=names,
            audio_in=dataclasses.replace(profile.audio_in, event=names.audio_chunk),
            audio_out=dataclasses.replace(profile.audio_out, event=names.audio_chunk),
        )
    return profile
