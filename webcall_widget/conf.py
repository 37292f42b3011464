"""The app's settings: one ``WEBCALL_WIDGET`` dict, read once into typed, frozen values.

``get_settings()`` is cached and rebuilt when ``WEBCALL_WIDGET`` (or ``DEBUG``) changes,
so ``override_settings`` works in tests. Problems are collected by :func:`problems`,
which the system checks report with stable ids; ``get_settings()`` raises
``ImproperlyConfigured`` with the same words if it is asked to build from bad values.

Every key, its default and its meaning are listed in :data:`DOCS` (the README's settings
table is tested against it).
"""

from __future__ import annotations

import difflib
import enum
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from webcall_widget.voicehub.events import AudioFormat, EventNames, Transport
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
    SocketPathAs,
    UpstreamProfile,
    placeholders_in,
)

SETTING_NAME = "WEBCALL_WIDGET"


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    url: str | None
    request_timeout: float
    connect_timeout: float
    join_timeout: float
    profile: UpstreamProfile  # the live socket's protocol: read by voicehub/ only

    @property
    def uses_sandbox(self) -> bool:
        return self.url is None

    @property
    def transport(self) -> Transport:
        return self.profile.transport

    @property
    def events(self) -> EventNames:
        return self.profile.events

    @property
    def audio(self) -> AudioFormat:
        return self.profile.audio


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    enabled: bool
    path: str
    webhook_url: str | None
    webhook_secret: str


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    max_body_bytes: int
    analysis_timeout: float
    analysis_max_bytes: int
    analysis_attempts: int
    analysis_retry_delay: float


@dataclass(frozen=True, slots=True)
class MicrophoneSettings:
    echo_cancellation: bool
    noise_suppression: bool
    auto_gain_control: bool


@dataclass(frozen=True, slots=True)
class LimitSettings:
    calls_per_minute_per_client: int
    calls_per_minute_per_agent: int
    concurrent_calls_per_agent: int
    calls_per_day_per_agent: int
    unconnected_calls_per_client: int
    call_minutes_per_day_per_agent: int | None
    max_call_seconds: int
    idle_seconds: int
    frames_per_second: int
    voice_calls_per_process: int


@dataclass(frozen=True, slots=True)
class Settings:
    upstream: UpstreamSettings
    sandbox: SandboxSettings
    microphone: MicrophoneSettings
    limits: LimitSettings
    webhooks: WebhookSettings
    retention_days: int | None
    trusted_proxies: int
    socket_path: str
    socket_url: str | None
    connect_token_max_age: int
    resume_seconds: int
    max_text_length: int
    max_frame_bytes: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with ``WEBCALL_WIDGET``; ``kind`` selects the check id."""

    kind: str  # "unknown-key" | "bad-value" | "bad-url" | "bad-profile"
    key: str
    message: str
    hint: str


@dataclass(frozen=True, slots=True)
class _Key:
    default: Any
    doc: str
    validate: Callable[[Any], str | None]


def _positive_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return "must be a positive number"
    return None


def _positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return "must be a positive integer"
    return None


def _optional_positive_int(value: Any) -> str | None:
    if value is not None and _positive_int(value):
        return "must be a positive integer, or None for no limit"
    return None


def _optional_bool(value: Any) -> str | None:
    if value is not None and not isinstance(value, bool):
        return "must be True, False or None"
    return None


def _count(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be an integer of 0 or more"
    return None


# A call may wait for its visitor at most this long: it costs credits meanwhile, and its
# resume tokens live as long (relay/tokens.py).
RESUME_SECONDS_MAX = 600


def _resume_seconds(value: Any) -> str | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= RESUME_SECONDS_MAX
    ):
        return f"must be an integer from 0 (off) to {RESUME_SECONDS_MAX}"
    return None


def _bool(value: Any) -> str | None:
    if not isinstance(value, bool):
        return "must be True or False"
    return None


def _sample_rate(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 8000 <= value <= 48000:
        return "must be an integer sample rate between 8000 and 48000"
    return None


def _transport(value: Any) -> str | None:
    if value not in {t.value for t in Transport}:
        return "must be one of " + ", ".join(repr(t.value) for t in Transport)
    return None


def _path(value: Any) -> str | None:
    if not isinstance(value, str) or not value.startswith("/") or not value.endswith("/"):
        return "must be a path that starts and ends with '/'"
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


def _optional_days(value: Any) -> str | None:
    if value is not None and _positive_int(value):
        return "must be a positive number of days, or None to keep everything"
    return None


def _string(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    return None


def _webhook_url(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("/"):
        return None  # a path on the site that created the call
    reason = _url(("http", "https"))(value)
    return reason and reason.replace("must be", "must be a path starting with '/' or", 1)


def _choice(values: type[enum.StrEnum]) -> Callable[[Any], str | None]:
    allowed = [member.value for member in values]

    def validate(value: Any) -> str | None:
        if value not in allowed:
            return "must be one of " + ", ".join(repr(v) for v in allowed)
        return None

    return validate


def _optional_name(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        return "must be an event name, or None for EVENTS['audio_chunk']"
    return None


def _name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
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


def _url(schemes: tuple[str, ...]) -> Callable[[Any], str | None]:
    def validate(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            return "must be a URL string or None"
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            return "must be an absolute URL starting with " + " or ".join(
                f"{s}://" for s in schemes
            )
        if parts.query or parts.fragment:
            return "must not have a query string or fragment"
        return None

    return validate


SCHEMA: dict[str, dict[str, _Key] | _Key] = {
    "UPSTREAM": {
        "URL": _Key(
            None,
            "VoiceHub's base URL, e.g. 'https://voicehub.dataqueue.ai'. "
            "None: the sandbox mounted on this site.",
            _url(("http", "https")),
        ),
        "TRANSPORT": _Key(
            "socketio", "Live socket framing: 'socketio' or 'websocket'.", _transport
        ),
        "SOCKET_PATH_AS": _Key(
            SocketPathAs.PATH.value,
            "How webCallSocketPath is used: 'path' (the Socket.IO path on the VoiceHub host, "
            "or a full URL), 'namespace' (a Socket.IO namespace on SOCKETIO_PATH), 'url' (a "
            "full URL, as it is) or 'auto' (a path, then a namespace).",
            _choice(SocketPathAs),
        ),
        "SOCKETIO_PATH": _Key(
            DEFAULT_SOCKETIO_PATH,
            "The Socket.IO path, under URL, when webCallSocketPath is a namespace.",
            _path,
        ),
        "CONNECT_AUTH": _Key(
            None,
            "Socket.IO CONNECT auth payload, a dict whose strings may use {callId}, "
            "{agentId} and {apiKey} (the key goes to VoiceHub only). None: no payload.",
            _auth_template,
        ),
        "CONNECT_QUERY": _Key(
            {}, "Query parameters of the socket URL (same placeholders).", _string_template
        ),
        "CONNECT_HEADERS": _Key(
            {}, "HTTP headers of the socket's handshake (same placeholders).", _string_template
        ),
        "REQUEST_TIMEOUT": _Key(
            10.0, "Seconds to wait for create-web-call to answer.", _positive_number
        ),
        "CONNECT_TIMEOUT": _Key(
            10.0, "Seconds to open the live socket and finish its handshake.", _positive_number
        ),
        "JOIN_TIMEOUT": _Key(
            10.0, "Seconds to wait for 'channel.joined' after 'channel.join'.", _positive_number
        ),
        "EVENTS": _Key(
            {},
            "Overrides of socket event names: join, joined, leave, text_message, created, "
            "audio_chunk, audio_clear, call_ended, error, exception (voicehub/events.py).",
            _events,
        ),
        "AUDIO_IN_EVENT": _Key(
            None, "Event carrying the visitor's audio. None: EVENTS audio_chunk.", _optional_name
        ),
        "AUDIO_IN_FORMAT": _Key(
            AudioShape.BINARY.value,
            "Its payload: 'binary', 'object' ({callId, FIELD: binary}) or 'base64' "
            "({callId, FIELD: base64 string}).",
            _choice(AudioShape),
        ),
        "AUDIO_IN_FIELD": _Key("audio", "FIELD of 'object' and 'base64' payloads.", _name),
        "INPUT_SAMPLE_RATE": _Key(16000, "Sample rate (Hz) of audio sent up.", _sample_rate),
        "AUDIO_OUT_EVENT": _Key(
            None, "Event carrying the agent's audio. None: EVENTS audio_chunk.", _optional_name
        ),
        "AUDIO_OUT_FORMAT": _Key(
            AudioShape.BINARY.value,
            "Its payload: 'binary', 'object' or 'base64', as for AUDIO_IN_FORMAT.",
            _choice(AudioShape),
        ),
        "AUDIO_OUT_FIELD": _Key("audio", "FIELD of 'object' and 'base64' payloads.", _name),
        "OUTPUT_SAMPLE_RATE": _Key(16000, "Sample rate (Hz) of agent audio.", _sample_rate),
        "MESSAGE_FIELDS": _Key(
            MessageFields().as_dict(),
            "Where a message (EVENTS created) keeps its parts; overrides merge with these; "
            "dotted names reach into objects; id or final None: messages have none.",
            _message_fields,
        ),
        "VISITOR_ROLES": _Key(
            ["user"], "Role values that mean the visitor; any other is the agent.", _roles
        ),
        "MESSAGE_UPDATES": _Key(
            MessageUpdates.REPLACE.value,
            "What a message id seen before carries: 'replace' (the text so far) or 'append' "
            "(a piece to add, as in token streaming). Messages without an id get one per turn.",
            _choice(MessageUpdates),
        ),
        "CALL_END": _Key(
            CallEnd.EVENT.value,
            "What ends a call normally: 'event' (EVENTS call_ended), 'disconnect' (VoiceHub "
            "closing the socket) or 'either'.",
            _choice(CallEnd),
        ),
        "JOIN_CONFIRMATION": _Key(
            JoinConfirmation.EVENT.value,
            "How channel.join is confirmed: 'event' (EVENTS joined), 'ack' (a Socket.IO "
            "acknowledgement) or 'none'.",
            _choice(JoinConfirmation),
        ),
        "PROTOCOL": _Key(
            DEFAULT_PROTOCOL,
            "Dotted path to the protocol class, for what settings cannot say "
            "(voicehub/protocol.py).",
            _dotted_path,
        ),
    },
    "SANDBOX": {
        "ENABLED": _Key(
            None,
            "Serve the VoiceHub sandbox where mounted. None: only when DEBUG is on.",
            _optional_bool,
        ),
        "PATH": _Key("/voicehub-sandbox/", "Where the sandbox is mounted on this site.", _path),
        "WEBHOOK_URL": _Key(
            None,
            "Where the mounted sandbox posts its call webhooks: a URL, or a path on the "
            "site that created the call, e.g. '/webcall/agents/echo/webhook'. None: none.",
            _webhook_url,
        ),
        "WEBHOOK_SECRET": _Key(
            "", "The x-webhook-secret the mounted sandbox sends with its webhooks.", _string
        ),
    },
    "WEBHOOKS": {
        "MAX_BODY_BYTES": _Key(
            65536, "Largest webhook body accepted, in bytes (413 beyond).", _positive_int
        ),
        "ANALYSIS_TIMEOUT": _Key(
            10.0,
            "Seconds to connect, and then to wait for each read, when fetching an analysis.",
            _positive_number,
        ),
        "ANALYSIS_MAX_BYTES": _Key(
            1048576, "Largest analysis result fetched, in bytes.", _positive_int
        ),
        "ANALYSIS_ATTEMPTS": _Key(
            5,
            "Tries to fetch an analysis while VoiceHub times out, is unreachable or answers "
            "404, 429 or 5xx.",
            _positive_int,
        ),
        "ANALYSIS_RETRY_DELAY": _Key(
            2.0,
            "Seconds before the second try of an analysis fetch; each later wait doubles.",
            _positive_number,
        ),
    },
    "RETENTION_DAYS": _Key(
        None,
        "expire_webcalls deletes transcripts, analyses, recordings lists and webhook events "
        "of calls older than this, and anonymises the calls. None: keep everything.",
        _optional_days,
    ),
    "MICROPHONE": {
        "ECHO_CANCELLATION": _Key(
            True, "Ask the browser to cancel the agent's voice from the microphone.", _bool
        ),
        "NOISE_SUPPRESSION": _Key(True, "Ask the browser to suppress background noise.", _bool),
        "AUTO_GAIN_CONTROL": _Key(True, "Ask the browser to even out the voice level.", _bool),
    },
    "LIMITS": {
        "CALLS_PER_MINUTE_PER_CLIENT": _Key(
            10, "New calls one client IP may start per minute (429 beyond).", _positive_int
        ),
        "CALLS_PER_MINUTE_PER_AGENT": _Key(
            120, "New calls an agent takes per minute from everyone (429 beyond).", _positive_int
        ),
        "CONCURRENT_CALLS_PER_AGENT": _Key(
            20, "Calls an agent may have open at once; agents can set their own.", _positive_int
        ),
        "CALLS_PER_DAY_PER_AGENT": _Key(
            2000,
            "Calls an agent may take per UTC day; agents can set their own. Calls that "
            "never connected do not count.",
            _positive_int,
        ),
        "UNCONNECTED_CALLS_PER_CLIENT": _Key(
            2,
            "Calls one client (an IPv4 address, or an IPv6 /64) may have created but not yet "
            "connected, per agent (429 beyond, until the oldest one's token expires).",
            _positive_int,
        ),
        "CALL_MINUTES_PER_DAY_PER_AGENT": _Key(
            None,
            "Minutes of live calls an agent may use per UTC day; agents can set their own. "
            "None: no budget.",
            _optional_positive_int,
        ),
        "MAX_CALL_SECONDS": _Key(
            900, "Longest call, in seconds, then 4408; agents can set their own.", _positive_int
        ),
        "IDLE_SECONDS": _Key(
            180,
            "Seconds without a message or audible audio either way before 4408.",
            _positive_int,
        ),
        "FRAMES_PER_SECOND": _Key(
            100,
            "Frames a browser may send per second (bursts of twice that); 4429 beyond.",
            _positive_int,
        ),
        "VOICE_CALLS_PER_PROCESS": _Key(
            75,
            "Voice calls one server process relays at once; beyond it a new voice call is "
            "refused (4429 agent_busy) rather than delaying every call's audio. Measured: "
            "see the README's Performance section. Text calls are not counted.",
            _positive_int,
        ),
    },
    "TRUSTED_PROXIES": _Key(
        0,
        "Reverse proxies in front of Django; the client IP is read from X-Forwarded-For "
        "that many hops from the right. 0: REMOTE_ADDR.",
        _count,
    ),
    "SOCKET_PATH": _Key(
        "/ws/webcall/", "Path the relay's websocket routes are served under.", _path
    ),
    "SOCKET_URL": _Key(
        None,
        "Absolute ws:// or wss:// base for relay sockets, when they are served by "
        "another host. None: the page's own host and SOCKET_PATH.",
        _url(("ws", "wss")),
    ),
    "CONNECT_TOKEN_MAX_AGE": _Key(
        60, "Seconds a visitor has to open the relay socket of a new call.", _positive_int
    ),
    "RESUME_SECONDS": _Key(
        20,
        "Seconds a live call waits for its visitor after the socket drops without an end "
        "(a reload, another page, a network change), so the widget can take it up again; "
        "agents can set their own. 0: the call ends at once. At most 600.",
        _resume_seconds,
    ),
    "MAX_TEXT_LENGTH": _Key(
        2000, "Longest chat message a visitor may send, in characters.", _positive_int
    ),
    "MAX_FRAME_BYTES": _Key(
        16384,
        "Largest frame a visitor may send, in bytes; larger closes with 4413. Keep it "
        "below the ASGI server's own websocket message limit (Daphne's: 1 MiB).",
        _positive_int,
    ),
}


def _flat(schema: Mapping[str, dict[str, _Key] | _Key]) -> dict[str, _Key]:
    flat: dict[str, _Key] = {}
    for name, entry in schema.items():
        if isinstance(entry, dict):
            for sub, key in entry.items():
                flat[f"{name}.{sub}"] = key
        else:
            flat[name] = entry
    return flat


DOCS: dict[str, _Key] = _flat(SCHEMA)


def _unknown(name: str, given: Mapping[str, Any], known: Mapping[str, Any]) -> list[Problem]:
    found = []
    for key in given:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), list(known), n=1)
        hint = f"Did you mean {close[0]!r}?" if close else "Known keys: " + ", ".join(known)
        found.append(Problem("unknown-key", f"{name}{key}", f"Unknown setting {name}{key}.", hint))
    return found


def problems(raw: Any) -> list[Problem]:
    """Every problem with a ``WEBCALL_WIDGET`` value, in a stable order."""
    if not isinstance(raw, Mapping):
        return [
            Problem(
                "bad-value",
                SETTING_NAME,
                f"{SETTING_NAME} must be a dict.",
                "Set it to a dict such as {'UPSTREAM': {'URL': ...}}, or remove it.",
            )
        ]
    found = _unknown("", raw, SCHEMA)
    for name, entry in SCHEMA.items():
        if name not in raw:
            continue
        if isinstance(entry, dict):
            section = raw[name]
            if not isinstance(section, Mapping):
                found.append(
                    Problem("bad-value", name, f"{name} must be a dict.", "See the README.")
                )
                continue
            found += _unknown(f"{name}.", section, entry)
            found += [
                _bad(f"{name}.{sub}", key, section[sub])
                for sub, key in entry.items()
                if sub in section and key.validate(section[sub])
            ]
        elif entry.validate(raw[name]):
            found.append(_bad(name, entry, raw[name]))
    if not found:
        found += _profile_problems(raw)
    return found


def _profile_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Upstream protocol settings that are each valid but cannot work together, and a
    PROTOCOL class that cannot be used."""
    from webcall_widget.voicehub.protocol import protocol_class

    profile = build_profile(raw)
    found = [
        Problem(
            "bad-profile",
            "UPSTREAM",
            f"WEBCALL_WIDGET UPSTREAM: {sentence}",
            "See 'Connecting to the real VoiceHub' in the README.",
        )
        for sentence in profile.contradictions()
    ]
    try:
        protocol_class(profile.protocol)
    except (ImportError, TypeError) as exc:
        found.append(
            Problem(
                "bad-profile",
                "UPSTREAM.PROTOCOL",
                f"WEBCALL_WIDGET UPSTREAM.PROTOCOL cannot be used: {exc}.",
                "Name a subclass of webcall_widget.voicehub.protocol.UpstreamProtocol "
                "(usually of SettingsProtocol), or remove the setting.",
            )
        )
    return found


def _bad(name: str, key: _Key, value: Any) -> Problem:
    reason = key.validate(value)
    kind = (
        "bad-url" if name in ("UPSTREAM.URL", "SOCKET_URL", "SANDBOX.WEBHOOK_URL") else "bad-value"
    )
    # Connection templates may hold a pasted credential: never echoed.
    got = "See the README." if name.startswith("UPSTREAM.CONNECT_") else f"Got {value!r}."
    return Problem(kind, name, f"WEBCALL_WIDGET {name} {reason}.", got)


def _value(raw: Mapping[str, Any], dotted: str) -> Any:
    if "." in dotted:
        section, key = dotted.split(".", 1)
        return raw.get(section, {}).get(key, DOCS[dotted].default)
    return raw.get(dotted, DOCS[dotted].default)


def build(raw: Mapping[str, Any], *, debug: bool) -> Settings:
    """Build :class:`Settings` from a raw dict; raises ``ImproperlyConfigured`` if invalid."""
    found = problems(raw)
    if found:
        raise ImproperlyConfigured(" ".join(p.message for p in found))

    def v(key: str) -> Any:
        return _value(raw, key)

    sandbox_enabled = v("SANDBOX.ENABLED")
    return Settings(
        upstream=UpstreamSettings(
            url=v("UPSTREAM.URL").rstrip("/") if v("UPSTREAM.URL") else None,
            request_timeout=float(v("UPSTREAM.REQUEST_TIMEOUT")),
            connect_timeout=float(v("UPSTREAM.CONNECT_TIMEOUT")),
            join_timeout=float(v("UPSTREAM.JOIN_TIMEOUT")),
            profile=build_profile(raw),
        ),
        sandbox=SandboxSettings(
            enabled=debug if sandbox_enabled is None else sandbox_enabled,
            path=v("SANDBOX.PATH"),
            webhook_url=v("SANDBOX.WEBHOOK_URL"),
            webhook_secret=v("SANDBOX.WEBHOOK_SECRET"),
        ),
        webhooks=WebhookSettings(
            max_body_bytes=v("WEBHOOKS.MAX_BODY_BYTES"),
            analysis_timeout=float(v("WEBHOOKS.ANALYSIS_TIMEOUT")),
            analysis_max_bytes=v("WEBHOOKS.ANALYSIS_MAX_BYTES"),
            analysis_attempts=v("WEBHOOKS.ANALYSIS_ATTEMPTS"),
            analysis_retry_delay=float(v("WEBHOOKS.ANALYSIS_RETRY_DELAY")),
        ),
        retention_days=v("RETENTION_DAYS"),
        limits=LimitSettings(
            calls_per_minute_per_client=v("LIMITS.CALLS_PER_MINUTE_PER_CLIENT"),
            calls_per_minute_per_agent=v("LIMITS.CALLS_PER_MINUTE_PER_AGENT"),
            concurrent_calls_per_agent=v("LIMITS.CONCURRENT_CALLS_PER_AGENT"),
            calls_per_day_per_agent=v("LIMITS.CALLS_PER_DAY_PER_AGENT"),
            unconnected_calls_per_client=v("LIMITS.UNCONNECTED_CALLS_PER_CLIENT"),
            call_minutes_per_day_per_agent=v("LIMITS.CALL_MINUTES_PER_DAY_PER_AGENT"),
            max_call_seconds=v("LIMITS.MAX_CALL_SECONDS"),
            idle_seconds=v("LIMITS.IDLE_SECONDS"),
            frames_per_second=v("LIMITS.FRAMES_PER_SECOND"),
            voice_calls_per_process=v("LIMITS.VOICE_CALLS_PER_PROCESS"),
        ),
        trusted_proxies=v("TRUSTED_PROXIES"),
        microphone=MicrophoneSettings(
            echo_cancellation=v("MICROPHONE.ECHO_CANCELLATION"),
            noise_suppression=v("MICROPHONE.NOISE_SUPPRESSION"),
            auto_gain_control=v("MICROPHONE.AUTO_GAIN_CONTROL"),
        ),
        socket_path=v("SOCKET_PATH"),
        socket_url=v("SOCKET_URL").rstrip("/") if v("SOCKET_URL") else None,
        connect_token_max_age=v("CONNECT_TOKEN_MAX_AGE"),
        resume_seconds=v("RESUME_SECONDS"),
        max_text_length=v("MAX_TEXT_LENGTH"),
        max_frame_bytes=v("MAX_FRAME_BYTES"),
    )


def build_profile(raw: Mapping[str, Any]) -> UpstreamProfile:
    """The upstream protocol profile of a valid raw ``WEBCALL_WIDGET`` dict."""

    def v(key: str) -> Any:
        return _value(raw, "UPSTREAM." + key)

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
        protocol=v("PROTOCOL"),
    )


def raw_setting() -> Any:
    return getattr(django_settings, SETTING_NAME, {})


@functools.cache
def get_settings() -> Settings:
    return build(raw_setting(), debug=bool(django_settings.DEBUG))


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "DEBUG"):
        get_settings.cache_clear()
