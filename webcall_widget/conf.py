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

SETTING_NAME = "WEBCALL_WIDGET"


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    url: str | None
    transport: Transport
    request_timeout: float
    connect_timeout: float
    join_timeout: float
    events: EventNames
    audio: AudioFormat

    @property
    def uses_sandbox(self) -> bool:
        return self.url is None


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    enabled: bool
    path: str


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
    max_call_seconds: int
    idle_seconds: int
    frames_per_second: int


@dataclass(frozen=True, slots=True)
class Settings:
    upstream: UpstreamSettings
    sandbox: SandboxSettings
    microphone: MicrophoneSettings
    limits: LimitSettings
    trusted_proxies: int
    socket_path: str
    socket_url: str | None
    connect_token_max_age: int
    max_text_length: int
    max_frame_bytes: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with ``WEBCALL_WIDGET``; ``kind`` selects the check id."""

    kind: str  # "unknown-key" | "bad-value" | "bad-url"
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


def _optional_bool(value: Any) -> str | None:
    if value is not None and not isinstance(value, bool):
        return "must be True, False or None"
    return None


def _count(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be an integer of 0 or more"
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
        "REQUEST_TIMEOUT": _Key(
            10.0, "Seconds to wait for create-web-call to answer.", _positive_number
        ),
        "CONNECT_TIMEOUT": _Key(
            10.0, "Seconds to open the live socket and finish its handshake.", _positive_number
        ),
        "JOIN_TIMEOUT": _Key(
            10.0, "Seconds to wait for 'channel.joined' after 'channel.join'.", _positive_number
        ),
        "INPUT_SAMPLE_RATE": _Key(16000, "Sample rate (Hz) of audio sent up.", _sample_rate),
        "OUTPUT_SAMPLE_RATE": _Key(16000, "Sample rate (Hz) of agent audio.", _sample_rate),
        "EVENTS": _Key({}, "Overrides of socket event names (see voicehub/events.py).", _events),
    },
    "SANDBOX": {
        "ENABLED": _Key(
            None,
            "Serve the VoiceHub sandbox where mounted. None: only when DEBUG is on.",
            _optional_bool,
        ),
        "PATH": _Key("/voicehub-sandbox/", "Where the sandbox is mounted on this site.", _path),
    },
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
            2000, "Calls an agent may take per UTC day; agents can set their own.", _positive_int
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
    "MAX_TEXT_LENGTH": _Key(
        2000, "Longest chat message a visitor may send, in characters.", _positive_int
    ),
    "MAX_FRAME_BYTES": _Key(
        16384,
        "Largest frame a visitor may send, in bytes; larger closes with 4413.",
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
    return found


def _bad(name: str, key: _Key, value: Any) -> Problem:
    reason = key.validate(value)
    kind = "bad-url" if name in ("UPSTREAM.URL", "SOCKET_URL") else "bad-value"
    return Problem(kind, name, f"WEBCALL_WIDGET {name} {reason}.", f"Got {value!r}.")


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

    events = EventNames(**dict(v("UPSTREAM.EVENTS")))
    sandbox_enabled = v("SANDBOX.ENABLED")
    return Settings(
        upstream=UpstreamSettings(
            url=v("UPSTREAM.URL").rstrip("/") if v("UPSTREAM.URL") else None,
            transport=Transport(v("UPSTREAM.TRANSPORT")),
            request_timeout=float(v("UPSTREAM.REQUEST_TIMEOUT")),
            connect_timeout=float(v("UPSTREAM.CONNECT_TIMEOUT")),
            join_timeout=float(v("UPSTREAM.JOIN_TIMEOUT")),
            events=events,
            audio=AudioFormat(
                input_rate=v("UPSTREAM.INPUT_SAMPLE_RATE"),
                output_rate=v("UPSTREAM.OUTPUT_SAMPLE_RATE"),
            ),
        ),
        sandbox=SandboxSettings(
            enabled=debug if sandbox_enabled is None else sandbox_enabled,
            path=v("SANDBOX.PATH"),
        ),
        limits=LimitSettings(
            calls_per_minute_per_client=v("LIMITS.CALLS_PER_MINUTE_PER_CLIENT"),
            calls_per_minute_per_agent=v("LIMITS.CALLS_PER_MINUTE_PER_AGENT"),
            concurrent_calls_per_agent=v("LIMITS.CONCURRENT_CALLS_PER_AGENT"),
            calls_per_day_per_agent=v("LIMITS.CALLS_PER_DAY_PER_AGENT"),
            max_call_seconds=v("LIMITS.MAX_CALL_SECONDS"),
            idle_seconds=v("LIMITS.IDLE_SECONDS"),
            frames_per_second=v("LIMITS.FRAMES_PER_SECOND"),
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
        max_text_length=v("MAX_TEXT_LENGTH"),
        max_frame_bytes=v("MAX_FRAME_BYTES"),
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
