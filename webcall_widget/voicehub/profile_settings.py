"""The ``UPSTREAM`` settings that make the live socket's profile: keys, checks, builder.

They live beside the profile (:mod:`.profile`) because they say what VoiceHub's socket
looks like; :mod:`webcall_widget.conf` puts them into ``WEBCALL_WIDGET["UPSTREAM"]`` next to
the URL and the timeouts, and the probe and the sandbox's variants build profiles from
them too. Nothing here reads Django's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webcall_widget import schema
from webcall_widget.schema import Key
from webcall_widget.voicehub.events import EventNames, Transport
from webcall_widget.voicehub.profile import (
    DEFAULT_PROTOCOL,
    DEFAULT_SOCKETIO_PATH,
    PLACEHOLDERS,
    AudioDirection,
    AudioShape,
    CallEnd,
    ConnectTemplate,
    JoinConfirmation,
    MessageFields,
    MessageUpdates,
    Rejoin,
    SocketPathAs,
    UpstreamProfile,
    placeholders_in,
)
from webcall_widget.voicehub.protocol import protocol_class


def _sample_rate(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 8000 <= value <= 48000:
        return "must be an integer sample rate between 8000 and 48000"
    return None


def _transport(value: Any) -> str | None:
    if value not in {t.value for t in Transport}:
        return "must be one of " + ", ".join(repr(t.value) for t in Transport)
    return None


def _events(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "must be a dict of event names"
    unknown = sorted(set(value) - set(EventNames.field_names()))
    if unknown:
        return f"has unknown event {unknown[0]!r}; known: " + ", ".join(EventNames.field_names())
    if not all(isinstance(v, str) and v for v in value.values()):
        return "must map to non-empty strings"
    return None


def _optional_event(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        return "must be an event name, or None for EVENTS['audio_chunk']"
    return None


def _placeholders(value: Any) -> str | None:
    unknown = sorted(placeholders_in(value) - set(PLACEHOLDERS))
    if unknown:
        return f"uses {{{unknown[0]}}}; the placeholders are " + ", ".join(
            f"{{{name}}}" for name in PLACEHOLDERS
        )
    return None


def _string_template(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        return "must be a dict of strings to strings, e.g. {'callId': '{callId}'}"
    return _placeholders(value)


def _auth_template(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        return "must be a dict (the CONNECT payload), e.g. {'callId': '{callId}'}, or None"
    return _placeholders(value)


def _message_fields(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "must be a dict of field names"
    known = MessageFields.field_names()
    unknown = sorted(set(value) - set(known))
    if unknown:
        return f"has unknown part {unknown[0]!r}; known: " + ", ".join(known)
    for part, name in value.items():
        if name is None and part in ("id", "final"):
            continue
        if not isinstance(name, str) or not name:
            return f"{part!r} must be a field name" + (
                " or None" if part in ("id", "final") else ""
            )
    return None


def _roles(value: Any) -> str | None:
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(role, str) and role for role in value)
    ):
        return "must be a non-empty list of role names, e.g. ['user', 'customer']"
    return None


def _dotted_path(value: Any) -> str | None:
    if not isinstance(value, str) or "." not in value:
        return "must be a dotted path to a class, e.g. 'myproject.voicehub.MyProtocol'"
    return None


# The order is the order of the settings reference: how to reach the socket first.
CONNECTION_KEYS: dict[str, Key] = {
    "TRANSPORT": Key("socketio", "Live socket framing: 'socketio' or 'websocket'.", _transport),
    "SOCKET_PATH_AS": Key(
        SocketPathAs.PATH.value,
        "How webCallSocketPath is used: 'path' (the Socket.IO path on the VoiceHub host, "
        "or a full URL), 'namespace' (a Socket.IO namespace on SOCKETIO_PATH), 'url' (a "
        "full URL, as it is) or 'auto' (a path, then a namespace).",
        schema.choice(SocketPathAs),
    ),
    "SOCKETIO_PATH": Key(
        DEFAULT_SOCKETIO_PATH,
        "The Socket.IO path, under URL, when webCallSocketPath is a namespace.",
        schema.path,
    ),
    "CONNECT_AUTH": Key(
        None,
        "Socket.IO CONNECT auth payload, a dict whose strings may use {callId}, "
        "{agentId} and {apiKey} (the key goes to VoiceHub only). None: no payload.",
        _auth_template,
    ),
    "CONNECT_QUERY": Key(
        {}, "Query parameters of the socket URL (same placeholders).", _string_template
    ),
    "CONNECT_HEADERS": Key(
        {}, "HTTP headers of the socket's handshake (same placeholders).", _string_template
    ),
    "REJOIN": Key(
        Rejoin.AUTO.value,
        "Whether a call under way may be joined again from a new socket, to move it to "
        "another process after a crash or a deploy: 'auto' (try; a refusal ends the call) "
        "or 'never' (the call ends with its socket). webcall_probe finds out.",
        schema.choice(Rejoin),
    ),
}

EVENT_KEYS: dict[str, Key] = {
    "EVENTS": Key(
        {},
        "Overrides of socket event names: join, joined, leave, text_message, created, "
        "audio_chunk, audio_clear, call_ended, error, exception (voicehub/events.py).",
        _events,
    ),
    "AUDIO_IN_EVENT": Key(
        None, "Event carrying the visitor's audio. None: EVENTS audio_chunk.", _optional_event
    ),
    "AUDIO_IN_FORMAT": Key(
        AudioShape.BINARY.value,
        "Its payload: 'binary', 'object' ({callId, FIELD: binary}) or 'base64' "
        "({callId, FIELD: base64 string}).",
        schema.choice(AudioShape),
    ),
    "AUDIO_IN_FIELD": Key("audio", "FIELD of 'object' and 'base64' payloads.", schema.name),
    "INPUT_SAMPLE_RATE": Key(16000, "Sample rate (Hz) of audio sent up.", _sample_rate),
    "AUDIO_OUT_EVENT": Key(
        None, "Event carrying the agent's audio. None: EVENTS audio_chunk.", _optional_event
    ),
    "AUDIO_OUT_FORMAT": Key(
        AudioShape.BINARY.value,
        "Its payload: 'binary', 'object' or 'base64', as for AUDIO_IN_FORMAT.",
        schema.choice(AudioShape),
    ),
    "AUDIO_OUT_FIELD": Key("audio", "FIELD of 'object' and 'base64' payloads.", schema.name),
    "OUTPUT_SAMPLE_RATE": Key(16000, "Sample rate (Hz) of agent audio.", _sample_rate),
    "FRAME_MS": Key(
        20,
        "Milliseconds of the visitor's audio in each frame sent to VoiceHub: 20, 40 or 60 "
        "(the relay cuts or joins the browser's frames to it).",
        schema.frame_ms,
    ),
    "MESSAGE_FIELDS": Key(
        MessageFields().as_dict(),
        "Where a message (EVENTS created) keeps its parts; overrides merge with these; "
        "dotted names reach into objects; id or final None: messages have none.",
        _message_fields,
    ),
    "VISITOR_ROLES": Key(
        ["user"], "Role values that mean the visitor; any other is the agent.", _roles
    ),
    "MESSAGE_UPDATES": Key(
        MessageUpdates.REPLACE.value,
        "What a message id seen before carries: 'replace' (the text so far) or 'append' "
        "(a piece to add, as in token streaming). Messages without an id get one per turn.",
        schema.choice(MessageUpdates),
    ),
    "CALL_END": Key(
        CallEnd.EVENT.value,
        "What ends a call normally: 'event' (EVENTS call_ended), 'disconnect' (VoiceHub "
        "closing the socket) or 'either'.",
        schema.choice(CallEnd),
    ),
    "JOIN_CONFIRMATION": Key(
        JoinConfirmation.EVENT.value,
        "How channel.join is confirmed: 'event' (EVENTS joined), 'ack' (a Socket.IO "
        "acknowledgement) or 'none'.",
        schema.choice(JoinConfirmation),
    ),
    "PROTOCOL": Key(
        DEFAULT_PROTOCOL,
        "Dotted path to the protocol class, for what settings cannot say (voicehub/protocol.py).",
        _dotted_path,
    ),
}

PROFILE_KEYS: dict[str, Key] = {**CONNECTION_KEYS, **EVENT_KEYS}


def build_profile(upstream: Mapping[str, Any]) -> UpstreamProfile:
    """The profile of an ``UPSTREAM`` dict whose keys each passed their check (missing
    keys take their defaults; keys that are not the profile's are ignored)."""

    def v(key: str) -> Any:
        return schema.value_of(upstream, PROFILE_KEYS, key)

    events = EventNames(**dict(v("EVENTS")))
    return UpstreamProfile(
        transport=Transport(v("TRANSPORT")),
        socket_path_as=SocketPathAs(v("SOCKET_PATH_AS")),
        socketio_path=v("SOCKETIO_PATH"),
        connect=ConnectTemplate(
            auth=v("CONNECT_AUTH"),
            query=dict(v("CONNECT_QUERY")),
            headers=dict(v("CONNECT_HEADERS")),
        ),
        events=events,
        audio_in=AudioDirection(
            v("AUDIO_IN_EVENT") or events.audio_chunk,
            AudioShape(v("AUDIO_IN_FORMAT")),
            v("AUDIO_IN_FIELD"),
            v("INPUT_SAMPLE_RATE"),
        ),
        audio_out=AudioDirection(
            v("AUDIO_OUT_EVENT") or events.audio_chunk,
            AudioShape(v("AUDIO_OUT_FORMAT")),
            v("AUDIO_OUT_FIELD"),
            v("OUTPUT_SAMPLE_RATE"),
        ),
        message_fields=MessageFields(**{**MessageFields().as_dict(), **v("MESSAGE_FIELDS")}),
        visitor_roles=tuple(v("VISITOR_ROLES")),
        message_updates=MessageUpdates(v("MESSAGE_UPDATES")),
        call_end=CallEnd(v("CALL_END")),
        join_confirmation=JoinConfirmation(v("JOIN_CONFIRMATION")),
        rejoin=Rejoin(v("REJOIN")),
        protocol=v("PROTOCOL"),
        frame_ms=v("FRAME_MS"),
    )


def key_problems(upstream: Mapping[str, Any]) -> dict[str, str]:
    """Each profile key of ``upstream`` whose value its check refuses, with the reason."""
    found = {}
    for key, spec in PROFILE_KEYS.items():
        if key in upstream and (reason := spec.validate(upstream[key])):
            found[key] = reason
    return found


def profile_problems(profile: UpstreamProfile) -> list[tuple[str, str]]:
    """Settings that are each valid but cannot work together, and a PROTOCOL class that
    cannot be used: ``(key, sentence)`` pairs, the key ``""`` for the profile as a whole."""
    found = [("", sentence) for sentence in profile.contradictions()]
    try:
        protocol_class(profile.protocol)
    except (ImportError, TypeError) as exc:
        found.append(("PROTOCOL", f"cannot be used: {exc}"))
    return found
