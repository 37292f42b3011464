"""System checks: every configuration mistake we can see without the database.

=====================  ==================================================================
id                     problem
=====================  ==================================================================
webcall_widget.E001    a ``WEBCALL_WIDGET`` value has the wrong type or range
webcall_widget.E002    ``WEBCALL_WIDGET`` has a key the app does not know
webcall_widget.E003    ``UPSTREAM.URL``, ``SOCKET_URL`` or ``SANDBOX.WEBHOOK_URL`` is unusable
webcall_widget.E004    Channels is not set up (``channels`` app or ``ASGI_APPLICATION``)
webcall_widget.E005    django-cors-headers is not set up (app or middleware)
webcall_widget.E006    no upstream: no ``UPSTREAM.URL`` and the sandbox is disabled
webcall_widget.E007    a Redis channel layer whose socket timeout ends its blocking receive
webcall_widget.E008    ``UPSTREAM`` protocol settings that contradict each other, or a
                       ``UPSTREAM.PROTOCOL`` class that cannot be used
webcall_widget.E009    the sandbox is enabled but the ``sandbox`` extra is not installed
webcall_widget.E010    several processes (Redis channel layer) but a per-process cache: relay
                       processes' leases (and rate limits) cannot be shared
webcall_widget.W001    the sandbox is the upstream while ``DEBUG`` is off
webcall_widget.W003    ``LIMITS`` values that undo each other
webcall_widget.W004    ``MAX_FRAME_BYTES`` not below Daphne's own websocket message limit
webcall_widget.W005    ``METRICS.TOKEN`` is set but the ``metrics`` extra is not installed
=====================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from webcall_widget import conf, leases, metrics
from webcall_widget.channel_layers import (
    BLOCKING_RECEIVE_SECONDS,
    SOCKET_TIMEOUT_SECONDS,
    short_timeouts,
)
from webcall_widget.sandbox import extra

_KIND_IDS = {
    "bad-value": "webcall_widget.E001",
    "unknown-key": "webcall_widget.E002",
    "bad-url": "webcall_widget.E003",
    "bad-profile": "webcall_widget.E008",
}


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Error(problem.message, hint=problem.hint, id=_KIND_IDS[problem.kind])
        for problem in conf.problems(conf.raw_setting())
    ]


def check_channels(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    found: list[CheckMessage] = []
    if "channels" not in settings.INSTALLED_APPS and "daphne" not in settings.INSTALLED_APPS:
        found.append(
            Error(
                "The relay needs Channels, which is not in INSTALLED_APPS.",
                hint="Add 'daphne' (first) or 'channels' to INSTALLED_APPS.",
                id="webcall_widget.E004",
            )
        )
    if not getattr(settings, "ASGI_APPLICATION", None):
        found.append(
            Error(
                "ASGI_APPLICATION is not set, so the relay socket is not served.",
                hint=(
                    "Set ASGI_APPLICATION = 'yourproject.asgi.application' and route "
                    "websockets to webcall_widget.routing.websocket_urlpatterns."
                ),
                id="webcall_widget.E004",
            )
        )
    return found


def check_cors(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    middleware = "corsheaders.middleware.CorsMiddleware"
    if "corsheaders" in settings.INSTALLED_APPS and middleware in settings.MIDDLEWARE:
        return []
    return [
        Error(
            "django-cors-headers is not set up, so other sites cannot embed agents.",
            hint=(
                "Add 'corsheaders' to INSTALLED_APPS and "
                f"'{middleware}' near the top of MIDDLEWARE."
            ),
            id="webcall_widget.E005",
        )
    ]


def check_upstream(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    if conf.problems(conf.raw_setting()):
        return []  # reported by check_settings
    current = conf.get_settings()
    if not current.upstream.uses_sandbox:
        return []
    if not current.sandbox.enabled:
        return [
            Error(
                "No VoiceHub URL is set and the sandbox is disabled.",
                hint=(
                    "Set WEBCALL_WIDGET['UPSTREAM']['URL'] = 'https://voicehub.dataqueue.ai' "
                    "for real calls."
                ),
                id="webcall_widget.E006",
            )
        ]
    if not settings.DEBUG:
        return [
            Warning(
                "Calls go to the VoiceHub sandbox while DEBUG is off.",
                hint=(
                    "Set WEBCALL_WIDGET['UPSTREAM']['URL'] to VoiceHub's URL for real calls, "
                    "or silence webcall_widget.W001 if this is a demo."
                ),
                id="webcall_widget.W001",
            )
        ]
    return []


def check_sandbox_extra(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if conf.problems(conf.raw_setting()) or not conf.get_settings().sandbox.enabled:
        return []
    missing = extra.missing()
    if not missing:
        return []
    return [
        Error(
            f"The VoiceHub sandbox is enabled, but {' and '.join(missing)} is not installed.",
            hint=(
                f"Install the sandbox extra: {extra.INSTALL}. Or, if the site does not "
                "use the sandbox, set WEBCALL_WIDGET['SANDBOX']['ENABLED'] = False (it "
                "is on while DEBUG is) and WEBCALL_WIDGET['UPSTREAM']['URL']."
            ),
            id="webcall_widget.E009",
        )
    ]


def check_shared_cache(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if leases.misleading():
        return [
            Error(
                "Several processes (a Redis channel layer) need a shared cache.",
                hint=(
                    "Relay processes' leases and the rate limits live in the cache; use "
                    "django.core.cache.backends.redis.RedisCache, or every process takes "
                    "the others for gone."
                ),
                id="webcall_widget.E010",
            )
        ]
    return []


def check_channel_layer(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    return [
        Error(
            f"CHANNEL_LAYERS[{alias!r}]: Redis connections time out after {timeout:g}s, "
            f"no later than the layer's {BLOCKING_RECEIVE_SECONDS:g}s blocking receive, so "
            "quiet calls die with redis TimeoutError (close 1011).",
            hint=(
                "Use webcall_widget.channel_layers.redis_channel_layer(url), or give each "
                f'host a longer timeout: {{"address": url, "socket_timeout": '
                f"{SOCKET_TIMEOUT_SECONDS:g}}}."
            ),
            id="webcall_widget.E007",
        )
        for alias, timeout in short_timeouts(layers)
    ]


def check_limits(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Limits that are each valid but together leave a hole or refuse every call."""
    if conf.problems(conf.raw_setting()):
        return []  # reported by check_settings
    limits = conf.get_settings().limits
    found: list[CheckMessage] = []
    if limits.unconnected_calls_per_client >= limits.concurrent_calls_per_agent:
        found.append(
            Warning(
                f"LIMITS.UNCONNECTED_CALLS_PER_CLIENT ({limits.unconnected_calls_per_client}) "
                "is not below LIMITS.CONCURRENT_CALLS_PER_AGENT "
                f"({limits.concurrent_calls_per_agent}), so one client can take every line "
                "of an agent with calls it never connects.",
                hint=(
                    "Lower UNCONNECTED_CALLS_PER_CLIENT (a visitor needs 1 or 2) or raise "
                    "CONCURRENT_CALLS_PER_AGENT."
                ),
                id="webcall_widget.W003",
            )
        )
    minutes = limits.call_minutes_per_day_per_agent
    if minutes is not None and minutes * 60 < limits.max_call_seconds:
        found.append(
            Warning(
                f"LIMITS.CALL_MINUTES_PER_DAY_PER_AGENT ({minutes} minutes) is shorter than "
                f"one call may last (LIMITS.MAX_CALL_SECONDS, {limits.max_call_seconds} s), "
                "so a single call can use up an agent's day.",
                hint=(
                    "Raise CALL_MINUTES_PER_DAY_PER_AGENT, or lower MAX_CALL_SECONDS to "
                    "at most a fraction of it."
                ),
                id="webcall_widget.W003",
            )
        )
    return found


# Daphne's default for --websocket-max-message-size and --websocket-max-frame-size, and
# for the DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE / _FRAME_SIZE settings its runserver reads.
DAPHNE_DEFAULT_MAX_MESSAGE = 1024 * 1024


def check_frame_size(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The ASGI server drops a message over its own limit before the app sees it (Daphne:
    the browser gets 1006, the call is recorded ``visitor-disconnected``), so the relay's
    4413 covers only the frames between ``MAX_FRAME_BYTES`` and the server's limit."""
    if "daphne" not in settings.INSTALLED_APPS or conf.problems(conf.raw_setting()):
        return []
    limits = [
        getattr(settings, name, DAPHNE_DEFAULT_MAX_MESSAGE)
        for name in ("DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE", "DAPHNE_WEBSOCKET_MAX_FRAME_SIZE")
    ]
    server_limit = min((limit for limit in limits if limit), default=0)  # 0: no limit
    max_frame_bytes = conf.get_settings().max_frame_bytes
    if not server_limit or max_frame_bytes < server_limit:
        return []
    return [
        Warning(
            f"WEBCALL_WIDGET['MAX_FRAME_BYTES'] ({max_frame_bytes}) is not below Daphne's "
            f"websocket message limit ({server_limit} bytes), so Daphne drops a larger "
            "frame itself (the browser sees 1006) and the relay never closes with 4413.",
            hint=(
                "Lower MAX_FRAME_BYTES (the widget's frames are a few KiB), or raise "
                "DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE and DAPHNE_WEBSOCKET_MAX_FRAME_SIZE "
                "(runserver) and daphne's --websocket-max-message-size and "
                "--websocket-max-frame-size above it."
            ),
            id="webcall_widget.W004",
        )
    ]


def check_metrics_extra(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """A token says someone means to scrape the metrics, which need prometheus_client."""
    if conf.problems(conf.raw_setting()) or conf.get_settings().metrics.token is None:
        return []
    if metrics.available():
        return []
    return [
        Warning(
            "WEBCALL_WIDGET['METRICS']['TOKEN'] is set, but prometheus_client is not "
            "installed, so the metrics endpoint answers 501.",
            hint=f"Install the metrics extra: {metrics.INSTALL}. Or remove METRICS.TOKEN.",
            id="webcall_widget.W005",
        )
    ]


ALL: tuple[Callable[..., list[CheckMessage]], ...] = (
    check_settings,
    check_channels,
    check_cors,
    check_upstream,
    check_sandbox_extra,
    check_shared_cache,
    check_channel_layer,
    check_limits,
    check_frame_size,
    check_metrics_extra,
)
