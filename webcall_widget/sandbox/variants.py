"""Named upstream protocol variants the sandbox can speak, each as the
``WEBCALL_WIDGET["UPSTREAM"]`` settings that make the relay speak it too.

VoiceHub documents too little of its live socket to know which variant it is. Each entry
below is a plausible one; the tests run every one end to end (relay text and voice round
trips, the probe suggesting its settings), and ``python -m webcall_widget.sandbox
--variant NAME`` serves one for trying the demo against it.

Whatever the variant, the sandbox answers an event it does not know with an error event
naming it (``{"message": "unknown event 'text.message'"}``), as the probe expects of a
VoiceHub it can learn names from. What a variant's agent does that settings do not
describe is in :data:`AGENTS`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from webcall_widget.sandbox.config import SandboxConfig
from webcall_widget.voicehub.events import AudioFormat
from webcall_widget.voicehub.profile import UpstreamProfile
from webcall_widget.voicehub.profile_settings import build_profile, key_problems, profile_problems

VARIANTS: Mapping[str, Mapping[str, Any]] = {
    "default": {},
    "websocket": {"TRANSPORT": "websocket"},
    # webCallSocketPath is a Socket.IO namespace, served on /socket.io
    "namespace": {"SOCKET_PATH_AS": "namespace"},
    # webCallSocketPath is a full URL (with a query of its own)
    "full-url": {"SOCKET_PATH_AS": "url"},
    # the server wants the call's id in the Socket.IO CONNECT payload
    "auth-call-id": {"CONNECT_AUTH": {"callId": "{callId}"}},
    # the server wants the key and the agent in the handshake's headers
    "auth-key-headers": {
        "CONNECT_HEADERS": {"x-api-access-key": "{apiKey}", "voicehub-agent-id": "{agentId}"}
    },
    # the call's id in the query of a plain WebSocket
    "auth-query-websocket": {"TRANSPORT": "websocket", "CONNECT_QUERY": {"callId": "{callId}"}},
    # audio inside an object, {callId, audio: <binary>}, both ways
    "audio-object": {"AUDIO_IN_FORMAT": "object", "AUDIO_OUT_FORMAT": "object"},
    # audio as base64 in JSON, both ways, on Socket.IO and on a plain WebSocket
    "audio-base64": {"AUDIO_IN_FORMAT": "base64", "AUDIO_OUT_FORMAT": "base64"},
    "audio-base64-websocket": {
        "TRANSPORT": "websocket",
        "AUDIO_IN_FORMAT": "base64",
        "AUDIO_IN_FIELD": "payload",
        "AUDIO_OUT_FORMAT": "base64",
        "AUDIO_OUT_FIELD": "payload",
    },
    # one audio event name up, another down
    "audio-names": {"AUDIO_IN_EVENT": "audio.input", "AUDIO_OUT_EVENT": "audio.output"},
    # agent audio at 24 kHz
    "output-24k": {"OUTPUT_SAMPLE_RATE": 24000},
    # other message fields, and the visitor's role is "customer"
    "message-fields": {
        "MESSAGE_FIELDS": {
            "id": "messageId",
            "role": "speaker",
            "text": "content",
            "final": "isFinal",
        },
        "VISITOR_ROLES": ["customer"],
    },
    # messages without ids, streamed as pieces to append
    "no-ids-append": {"MESSAGE_FIELDS": {"id": None}, "MESSAGE_UPDATES": "append"},
    # calls end by the server disconnecting, without call.ended
    "end-by-disconnect": {"CALL_END": "disconnect"},
    # channel.join is confirmed by a Socket.IO acknowledgement
    "join-ack": {"JOIN_CONFIRMATION": "ack"},
    # visitor audio expected as audio.in, agent audio sent as audio.out; audio sent as
    # anything else is answered, frame by frame, with "unknown event 'audio.chunk'"
    "audio-in-out": {"AUDIO_IN_EVENT": "audio.in", "AUDIO_OUT_EVENT": "audio.out"},
    # other event names: messages `transcript`, typed text `chat.message`, the end
    # `call.finished` (text.message is answered "unknown event 'text.message'")
    "renamed-events": {
        "EVENTS": {
            "created": "transcript",
            "text_message": "chat.message",
            "call_ended": "call.finished",
        }
    },
    # an agent that does not end calls when the visitor says goodbye (see AGENTS); when a
    # call ends (VoiceHub's own limits), VoiceHub closes the socket without an event
    "agent-never-hangs-up": {"CALL_END": "disconnect"},
    # a second socket may not join a call under way: its channel.join is answered with
    # the error event {"message": "call <id> is under way on another connection and
    # cannot be joined again", "code": "rejoin-refused"}, then call.ended {"reason":
    # "rejoin-refused"} and the socket is closed; the call is over (sandbox/agent.py)
    "no-rejoin": {"REJOIN": "never"},
    # most of the above at once
    "everything": {
        "SOCKET_PATH_AS": "namespace",
        "CONNECT_AUTH": {"callId": "{callId}", "agent": "{agentId}"},
        "AUDIO_IN_EVENT": "media.in",
        "AUDIO_IN_FORMAT": "base64",
        "AUDIO_OUT_EVENT": "media",
        "AUDIO_OUT_FORMAT": "object",
        "AUDIO_OUT_FIELD": "chunk",
        "OUTPUT_SAMPLE_RATE": 24000,
        "MESSAGE_FIELDS": {"id": None, "role": "from", "text": "delta", "final": "done"},
        "VISITOR_ROLES": ["customer", "caller"],
        "MESSAGE_UPDATES": "append",
        "CALL_END": "disconnect",
        "JOIN_CONFIRMATION": "ack",
    },
}


# What a variant's agent does that the settings do not say: SandboxConfig fields.
AGENTS: Mapping[str, Mapping[str, Any]] = {
    "agent-never-hangs-up": {"hangs_up_on_goodbye": False},
}


def variant_settings(name: str) -> dict[str, Any]:
    """The ``UPSTREAM`` settings of a variant (a copy)."""
    return copy.deepcopy(dict(VARIANTS[name]))


def variant_profile(name: str) -> UpstreamProfile:
    upstream = variant_settings(name)
    found = [f"{key} {reason}." for key, reason in key_problems(upstream).items()]
    if not found:
        profile = build_profile(upstream)
        found = [f"{key or 'UPSTREAM'}: {sentence}" for key, sentence in profile_problems(profile)]
    if found:
        raise ValueError(f"variant {name!r}: " + " ".join(found))
    return profile


def variant_config(name: str, config: SandboxConfig | None = None) -> SandboxConfig:
    """``config`` (the defaults if None) speaking variant ``name``: its profile, its
    sample rates as the sandbox's own, and its agent's ways (:data:`AGENTS`)."""
    profile = variant_profile(name)
    base = config or SandboxConfig()
    audio = AudioFormat(input_rate=profile.audio.input_rate, output_rate=profile.audio.output_rate)
    return dataclasses.replace(base, profile=profile, audio=audio, **AGENTS.get(name, {}))
