"""The app's settings: one ``WEBCALL_WIDGET`` dict, read once into typed, frozen values.

``get_settings()`` is cached and rebuilt when ``WEBCALL_WIDGET`` (or ``DEBUG``) changes,
so ``override_settings`` works in tests. Problems are collected by :func:`problems`,
which the system checks report with stable ids; ``get_settings()`` raises
``ImproperlyConfigured`` with the same words if it is asked to build from bad values.

Every key, its default and its meaning are listed in :data:`DOCS`; the settings reference,
``docs/settings.md``, is generated from :data:`SCHEMA` (``python -m docs.settings_reference``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from webcall_widget import schema
from webcall_widget.schema import Key
from webcall_widget.voicehub.events import AudioFormat, EventNames, Transport
from webcall_widget.voicehub.profile import UpstreamProfile
from webcall_widget.voicehub.profile_settings import (
    CONNECTION_KEYS,
    EVENT_KEYS,
    build_profile,
    profile_problems,
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
class HealthSettings:
    enabled: bool
    check_timeout: float


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    token: str | None = field(repr=False)


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
    drain_seconds: float
    audio_frame_ms: int
    max_text_length: int
    max_frame_bytes: int
    health: HealthSettings
    metrics: MetricsSettings

    @property
    def browser_audio(self) -> AudioFormat:
        """The audio format between the browser and the relay (its frames' length is
        AUDIO_FRAME_MS; VoiceHub's leg is ``upstream.audio``)."""
        return dataclasses.replace(self.upstream.audio, frame_ms=self.audio_frame_ms)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with ``WEBCALL_WIDGET``; ``kind`` selects the check id."""

    kind: str  # "unknown-key" | "bad-value" | "bad-url" | "bad-profile"
    key: str
    message: str
    hint: str


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


def _optional_days(value: Any) -> str | None:
    if value is not None and schema.positive_int(value):
        return "must be a positive number of days, or None to keep everything"
    return None


def _webhook_url(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("/"):
        return None  # a path on the site that created the call
    reason = schema.url(("http", "https"))(value)
    return reason and reason.replace("must be", "must be a path starting with '/' or", 1)


# A bearer token a scraper sends: long enough not to be guessed, and sendable in a header.
_TOKEN = re.compile(r"[\x21-\x7e]{24,256}")


def _metrics_token(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and _TOKEN.fullmatch(value)):
        return None
    return (
        "must be None or 24 to 256 visible ASCII characters (no spaces), "
        "e.g. secrets.token_urlsafe(32)"
    )


# Settings whose value is never echoed in a problem: a pasted credential.
_SECRET = ("UPSTREAM.CONNECT_", "METRICS.TOKEN")


SCHEMA: dict[str, dict[str, Key] | Key] = {
    "UPSTREAM": {
        "URL": Key(
            None,
            "VoiceHub's base URL, e.g. 'https://voicehub.dataqueue.ai'. "
            "None: the sandbox mounted on this site.",
            schema.url(("http", "https")),
        ),
        **CONNECTION_KEYS,
        "REQUEST_TIMEOUT": Key(
            10.0, "Seconds to wait for create-web-call to answer.", schema.positive_number
        ),
        "CONNECT_TIMEOUT": Key(
            10.0,
            "Seconds to open the live socket and finish its handshake.",
            schema.positive_number,
        ),
        "JOIN_TIMEOUT": Key(
            10.0,
            "Seconds to wait for 'channel.joined' after 'channel.join'.",
            schema.positive_number,
        ),
        **EVENT_KEYS,
    },
    "SANDBOX": {
        "ENABLED": Key(
            None,
            "Serve the VoiceHub sandbox where mounted. None: only when DEBUG is on.",
            schema.optional_boolean,
        ),
        "PATH": Key(
            "/voicehub-sandbox/", "Where the sandbox is mounted on this site.", schema.path
        ),
        "WEBHOOK_URL": Key(
            None,
            "Where the mounted sandbox posts its call webhooks: a URL, or a path on the "
            "site that created the call, e.g. '/webcall/agents/echo/webhook'. None: none.",
            _webhook_url,
        ),
        "WEBHOOK_SECRET": Key(
            "", "The x-webhook-secret the mounted sandbox sends with its webhooks.", schema.string
        ),
    },
    "WEBHOOKS": {
        "MAX_BODY_BYTES": Key(
            65536, "Largest webhook body accepted, in bytes (413 beyond).", schema.positive_int
        ),
        "ANALYSIS_TIMEOUT": Key(
            10.0,
            "Seconds to connect, and then to wait for each read, when fetching an analysis.",
            schema.positive_number,
        ),
        "ANALYSIS_MAX_BYTES": Key(
            1048576, "Largest analysis result fetched, in bytes.", schema.positive_int
        ),
        "ANALYSIS_ATTEMPTS": Key(
            5,
            "Tries to fetch an analysis while VoiceHub times out, is unreachable or answers "
            "404, 429 or 5xx.",
            schema.positive_int,
        ),
        "ANALYSIS_RETRY_DELAY": Key(
            2.0,
            "Seconds before the second try of an analysis fetch; each later wait doubles.",
            schema.positive_number,
        ),
    },
    "RETENTION_DAYS": Key(
        None,
        "expire_webcalls deletes transcripts, analyses, recordings lists and webhook events "
        "of calls older than this, and anonymises the calls. None: keep everything.",
        _optional_days,
    ),
    "MICROPHONE": {
        "ECHO_CANCELLATION": Key(
            True,
            "Ask the browser to cancel the agent's voice from the microphone.",
            schema.boolean,
        ),
        "NOISE_SUPPRESSION": Key(
            True, "Ask the browser to suppress background noise.", schema.boolean
        ),
        "AUTO_GAIN_CONTROL": Key(
            True, "Ask the browser to even out the voice level.", schema.boolean
        ),
    },
    "LIMITS": {
        "CALLS_PER_MINUTE_PER_CLIENT": Key(
            10, "New calls one client IP may start per minute (429 beyond).", schema.positive_int
        ),
        "CALLS_PER_MINUTE_PER_AGENT": Key(
            120,
            "New calls an agent takes per minute from everyone (429 beyond).",
            schema.positive_int,
        ),
        "CONCURRENT_CALLS_PER_AGENT": Key(
            20,
            "Calls an agent may have open at once; agents can set their own.",
            schema.positive_int,
        ),
        "CALLS_PER_DAY_PER_AGENT": Key(
            2000,
            "Calls an agent may take per UTC day; agents can set their own. Calls that "
            "never connected do not count.",
            schema.positive_int,
        ),
        "UNCONNECTED_CALLS_PER_CLIENT": Key(
            2,
            "Calls one client (an IPv4 address, or an IPv6 /64) may have created but not yet "
            "connected, per agent (429 beyond, until the oldest one's token expires).",
            schema.positive_int,
        ),
        "CALL_MINUTES_PER_DAY_PER_AGENT": Key(
            None,
            "Minutes of live calls an agent may use per UTC day; agents can set their own. "
            "None: no budget.",
            schema.optional_positive_int,
        ),
        "MAX_CALL_SECONDS": Key(
            900,
            "Longest call, in seconds, then 4408; agents can set their own.",
            schema.positive_int,
        ),
        "IDLE_SECONDS": Key(
            180,
            "Seconds without a message or audible audio either way before 4408.",
            schema.positive_int,
        ),
        "FRAMES_PER_SECOND": Key(
            100,
            "Frames a browser may send per second (bursts of twice that); 4429 beyond.",
            schema.positive_int,
        ),
        "VOICE_CALLS_PER_PROCESS": Key(
            75,
            "Voice calls one server process relays at once; beyond it a new voice call is "
            "refused (4429 agent_busy) rather than delaying every call's audio. Measured: "
            "see docs/performance.md. Text calls are not counted.",
            schema.positive_int,
        ),
    },
    "TRUSTED_PROXIES": Key(
        0,
        "Reverse proxies in front of Django; the client IP is read from X-Forwarded-For "
        "that many hops from the right. 0: REMOTE_ADDR.",
        schema.count,
    ),
    "SOCKET_PATH": Key(
        "/ws/webcall/", "Path the relay's websocket routes are served under.", schema.path
    ),
    "SOCKET_URL": Key(
        None,
        "Absolute ws:// or wss:// base for relay sockets, when they are served by "
        "another host. None: the page's own host and SOCKET_PATH.",
        schema.url(("ws", "wss")),
    ),
    "CONNECT_TOKEN_MAX_AGE": Key(
        60, "Seconds a visitor has to open the relay socket of a new call.", schema.positive_int
    ),
    "AUDIO_FRAME_MS": Key(
        20,
        "Milliseconds of audio in each frame between the browser and the relay, both ways: "
        "20, 40 or 60. Longer frames mean fewer frames (less CPU for the relay) and that "
        "much more delay; VoiceHub's leg follows UPSTREAM.FRAME_MS.",
        schema.frame_ms,
    ),
    "RESUME_SECONDS": Key(
        20,
        "Seconds a live call waits for its visitor after the socket drops without an end "
        "(a reload, another page, a network change), so the widget can take it up again; "
        "agents can set their own. 0: the call ends at once. At most 600.",
        _resume_seconds,
    ),
    "DRAIN_SECONDS": Key(
        25,
        "Seconds a process asked to stop (SIGTERM, SIGINT) waits for its live calls to move "
        "to other processes, or, where VoiceHub refuses a second socket for a call "
        "(UPSTREAM.REJOIN 'never'), to end on their own, before it ends what is left with "
        "1012. Keep it below the stop timeout of systemd (90 s) or Kubernetes (30 s).",
        schema.positive_number,
    ),
    "MAX_TEXT_LENGTH": Key(
        2000, "Longest chat message a visitor may send, in characters.", schema.positive_int
    ),
    "MAX_FRAME_BYTES": Key(
        16384,
        "Largest frame a visitor may send, in bytes; larger closes with 4413. Keep it "
        "below the ASGI server's own websocket message limit (Daphne's: 1 MiB).",
        schema.positive_int,
    ),
    "HEALTH": {
        "ENABLED": Key(
            True,
            "Serve <prefix>/health/live and <prefix>/health/ready to anyone (for load "
            "balancers and Kubernetes probes). False: they answer 404.",
            schema.boolean,
        ),
        "CHECK_TIMEOUT": Key(
            0.5,
            "Seconds the readiness check waits for each of the database, the cache and the "
            "channel layer before it counts that one as failed.",
            schema.positive_number,
        ),
    },
    "METRICS": {
        "TOKEN": Key(
            None,
            "A secret that lets a scraper read <prefix>/metrics with 'Authorization: Bearer "
            "<TOKEN>'. None: staff users only.",
            _metrics_token,
        ),
    },
}


def _flat(tree: Mapping[str, dict[str, Key] | Key]) -> dict[str, Key]:
    flat: dict[str, Key] = {}
    for name, entry in tree.items():
        if isinstance(entry, dict):
            for sub, key in entry.items():
                flat[f"{name}.{sub}"] = key
        else:
            flat[name] = entry
    return flat


DOCS: dict[str, Key] = _flat(SCHEMA)


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
                    Problem("bad-value", name, f"{name} must be a dict.", "See docs/settings.md.")
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
        found += _profile_problems(raw) or _frame_problems(raw)
    return found


def _frame_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """A visitor's audio frame must fit in the largest frame the relay takes."""
    rate = build_profile(raw.get("UPSTREAM", {})).audio_in.rate
    frame_ms, largest = _value(raw, "AUDIO_FRAME_MS"), _value(raw, "MAX_FRAME_BYTES")
    needed = rate * frame_ms // 1000 * 2
    if needed <= largest:
        return []
    return [
        Problem(
            "bad-value",
            "MAX_FRAME_BYTES",
            f"WEBCALL_WIDGET MAX_FRAME_BYTES ({largest}) is smaller than one frame of the "
            f"visitor's audio ({needed} bytes: {frame_ms} ms at {rate} Hz), so every voice "
            "call would close with 4413.",
            f"Raise MAX_FRAME_BYTES to at least {needed}, or lower AUDIO_FRAME_MS.",
        )
    ]


def _profile_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Upstream protocol settings that are each valid but cannot work together, and a
    PROTOCOL class that cannot be used."""
    found = []
    for key, sentence in profile_problems(build_profile(raw.get("UPSTREAM", {}))):
        if key == "PROTOCOL":
            found.append(
                Problem(
                    "bad-profile",
                    "UPSTREAM.PROTOCOL",
                    f"WEBCALL_WIDGET UPSTREAM.PROTOCOL {sentence}.",
                    "Name a subclass of webcall_widget.voicehub.protocol.UpstreamProtocol "
                    "(usually of SettingsProtocol), or remove the setting.",
                )
            )
        else:
            found.append(
                Problem(
                    "bad-profile",
                    "UPSTREAM",
                    f"WEBCALL_WIDGET UPSTREAM: {sentence}",
                    "See docs/voicehub.md, Connecting to the real VoiceHub.",
                )
            )
    return found


def _bad(name: str, key: Key, value: Any) -> Problem:
    reason = key.validate(value)
    kind = (
        "bad-url" if name in ("UPSTREAM.URL", "SOCKET_URL", "SANDBOX.WEBHOOK_URL") else "bad-value"
    )
    # Connection templates may hold a pasted credential, and a token is one: never echoed.
    got = "See docs/settings.md." if name.startswith(_SECRET) else f"Got {value!r}."
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
            profile=build_profile(raw.get("UPSTREAM", {})),
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
        drain_seconds=float(v("DRAIN_SECONDS")),
        audio_frame_ms=v("AUDIO_FRAME_MS"),
        max_text_length=v("MAX_TEXT_LENGTH"),
        max_frame_bytes=v("MAX_FRAME_BYTES"),
        health=HealthSettings(
            enabled=v("HEALTH.ENABLED"), check_timeout=float(v("HEALTH.CHECK_TIMEOUT"))
        ),
        metrics=MetricsSettings(token=v("METRICS.TOKEN")),
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
