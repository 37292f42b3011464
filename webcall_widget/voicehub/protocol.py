"""What the upstream's events mean: the interface ``UPSTREAM.PROTOCOL`` names, and the
default, settings-driven implementation.

The session (:mod:`~webcall_widget.voicehub.session`) moves frames and knows the
transport (Socket.IO or a plain WebSocket); a protocol object turns what the relay wants
to say into events (a name and a JSON-able payload, which may hold ``bytes`` on
Socket.IO) and the events VoiceHub sends into the typed events of
:mod:`~webcall_widget.voicehub.events`. One object serves one call, so it may keep
state (message ids, streamed text). Its methods are called on the event loop and must
not block.

To speak a VoiceHub that settings cannot describe, subclass :class:`SettingsProtocol`
(or :class:`UpstreamProtocol`), override what differs, and name the class in
``WEBCALL_WIDGET["UPSTREAM"]["PROTOCOL"]``::

    class MyProtocol(SettingsProtocol):
        def decode(self, name, data):
            if name == "transcript.delta":
                return self.message(data["itemId"], data["speaker"], data["delta"], False)
            return super().decode(name, data)

Return :class:`~webcall_widget.voicehub.events.Unknown` for an event you do not use
and :class:`~webcall_widget.voicehub.events.BadPayload` for one you cannot read: the
session logs and counts both, and the relay never sees them.
"""

from __future__ import annotations

import abc
import functools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from django.utils.module_loading import import_string

from webcall_widget.voicehub.codecs import BadAudio, decode_audio, encode_audio, pick
from webcall_widget.voicehub.events import (
    Audio,
    AudioClear,
    BadPayload,
    CallEnded,
    Joined,
    Message,
    Role,
    Unknown,
    UpstreamError,
    UpstreamEvent,
)
from webcall_widget.voicehub.profile import CallEnd, MessageUpdates, UpstreamProfile

# Streamed messages whose text is being put together (MESSAGE_UPDATES "append").
MAX_OPEN_MESSAGES = 64


class Outgoing(NamedTuple):
    """One event to send: its name and payload."""

    name: str
    data: Any


class UpstreamProtocol(abc.ABC):
    """The interface of ``UPSTREAM.PROTOCOL``: constructed with the profile, once per call.

    ``call_id`` is VoiceHub's id of the call; ``channels`` are those the call's mode
    needs (``"audio"``, ``"text"``).
    """

    def __init__(self, profile: UpstreamProfile) -> None:
        self.profile = profile

    @abc.abstractmethod
    def join(self, call_id: str, channels: Sequence[str]) -> Outgoing:
        """The event that subscribes the socket to the call's channels."""

    @abc.abstractmethod
    def leave(self, call_id: str, channels: Sequence[str]) -> Outgoing:
        """The event that unsubscribes (sent when we end the call)."""

    @abc.abstractmethod
    def text(self, call_id: str, text: str) -> Outgoing:
        """The event that carries a message the visitor typed."""

    @abc.abstractmethod
    def audio(self, call_id: str, pcm: bytes) -> Outgoing:
        """The event that carries one frame (UPSTREAM.FRAME_MS) of the visitor's PCM16 mono at
        INPUT_SAMPLE_RATE.

        On a plain WebSocket, an event whose payload is ``bytes`` goes as a bare binary
        frame."""

    @abc.abstractmethod
    def decode(self, name: str, data: Any) -> UpstreamEvent:
        """The meaning of one event VoiceHub sent. On a plain WebSocket, a binary frame
        arrives as the agent audio event (``AUDIO_OUT_EVENT``) with ``bytes``."""

    @abc.abstractmethod
    def join_acknowledged(self, data: Any, channels: Sequence[str]) -> UpstreamEvent:
        """The meaning of the Socket.IO acknowledgement of the join (``JOIN_CONFIRMATION
        "ack"``): :class:`Joined`, or :class:`UpstreamError` when it refuses."""


class SettingsProtocol(UpstreamProtocol):
    """The default protocol: everything as the profile (``WEBCALL_WIDGET["UPSTREAM"]``)
    says.

    Messages without an id get one per turn: pieces of one role's message share an id
    until a final one, so that partials replace each other and replies do not.
    """

    def __init__(self, profile: UpstreamProfile) -> None:
        super().__init__(profile)
        self.names = profile.events
        self.fields = profile.message_fields
        self.visitor_roles = frozenset(profile.visitor_roles)
        self._audio_out = profile.audio_out
        self._ends_by_event = profile.call_end is not CallEnd.DISCONNECT
        self._append = profile.message_updates is MessageUpdates.APPEND
        self._open_turns: dict[Role, str] = {}
        self._turns = 0
        self._texts: OrderedDict[str, str] = OrderedDict()

    # to VoiceHub

    def join(self, call_id: str, channels: Sequence[str]) -> Outgoing:
        return Outgoing(self.names.join, {"callId": call_id, "channels": list(channels)})

    def leave(self, call_id: str, channels: Sequence[str]) -> Outgoing:
        return Outgoing(self.names.leave, {"callId": call_id, "channels": list(channels)})

    def text(self, call_id: str, text: str) -> Outgoing:
        return Outgoing(self.names.text_message, {"callId": call_id, "text": text})

    def audio(self, call_id: str, pcm: bytes) -> Outgoing:
        direction = self.profile.audio_in
        return Outgoing(direction.event, encode_audio(direction, call_id, pcm))

    # from VoiceHub

    def decode(self, name: str, data: Any) -> UpstreamEvent:
        names = self.names
        if name == self._audio_out.event:
            try:
                return Audio(decode_audio(self._audio_out, data))
            except BadAudio as exc:
                return BadPayload(
                    name,
                    f"agent audio: {exc} (UPSTREAM.AUDIO_OUT_FORMAT, AUDIO_OUT_FIELD)",
                    data,
                )
        payload = data if isinstance(data, Mapping) else {}
        if name == names.created:
            return self._message(name, data)
        if name == names.joined:
            channels = payload.get("channels")
            return Joined(tuple(str(c) for c in channels) if isinstance(channels, list) else ())
        if name == names.audio_clear:
            return AudioClear()
        if name == names.call_ended and self._ends_by_event:
            return CallEnded(str(payload.get("reason") or "ended"))
        if name in (names.error, names.exception):
            message = payload.get("message") if payload else data
            return UpstreamError(str(message) if message else "unknown upstream error")
        return Unknown(name, data)

    def join_acknowledged(self, data: Any, channels: Sequence[str]) -> UpstreamEvent:
        if isinstance(data, Mapping):
            refused = (
                data.get("error")
                or data.get("ok") is False
                or data.get("success") is False
                or data.get("status") in ("error", "failed", "refused")
            )
            if refused:
                message = data.get("error") or data.get("message") or "join refused"
                return UpstreamError(str(message))
            confirmed = data.get("channels")
            if isinstance(confirmed, list):
                return Joined(tuple(str(c) for c in confirmed))
        return Joined(tuple(channels))

    def _message(self, name: str, data: Any) -> UpstreamEvent:
        fields = self.fields
        text = pick(data, fields.text)
        if not isinstance(text, str):
            return BadPayload(
                name, f"no text in field {fields.text!r} (UPSTREAM.MESSAGE_FIELDS)", data
            )
        role = Role.USER if str(pick(data, fields.role)) in self.visitor_roles else Role.AGENT
        final = fields.final is None or pick(data, fields.final) is not False
        upstream_id = pick(data, fields.id) if fields.id else None
        return self.message(upstream_id, role, text, final)

    def message(self, upstream_id: Any, role: Role, text: str, final: bool) -> Message:
        """A message, with an id per turn when it has none, and its text put together
        when pieces are appended."""
        if upstream_id is None or upstream_id == "":
            message_id = self._open_turns.get(role)
            if message_id is None:
                self._turns += 1
                message_id = self._open_turns[role] = f"turn-{self._turns}"
            if final:
                del self._open_turns[role]
        else:
            message_id = str(upstream_id)
        if self._append:
            text = self._texts.pop(message_id, "") + text
            if not final:
                self._texts[message_id] = text
                while len(self._texts) > MAX_OPEN_MESSAGES:
                    self._texts.popitem(last=False)
        return Message(id=message_id, role=role, text=text, final=final)


@functools.cache
def protocol_class(dotted_path: str) -> type[UpstreamProtocol]:
    """The class ``UPSTREAM.PROTOCOL`` names.

    Raises:
        ImportError: it cannot be imported.
        TypeError: it is not an :class:`UpstreamProtocol`.
    """
    found = import_string(dotted_path)
    if not (isinstance(found, type) and issubclass(found, UpstreamProtocol)):
        raise TypeError(f"{dotted_path} is not a subclass of {UpstreamProtocol.__qualname__}")
    return found


def load_protocol(profile: UpstreamProfile) -> UpstreamProtocol:
    return protocol_class(profile.protocol)(profile)
