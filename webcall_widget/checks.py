"""System checks: every configuration mistake we can see without the database.

=====================  ==================================================================
id                     problem
=====================  ==================================================================
webcall_widget.E001    a ``WEBCALL_WIDGET`` value has the wrong type or range
webcall_widget.E002    ``WEBCALL_WIDGET`` has a key the app does not know
webcall_widget.E003    ``UPSTREAM.URL`` or ``SOCKET_URL`` is not a usable URL
webcall_widget.E004    Channels is not set up (``channels`` app or ``ASGI_APPLICATION``)
webcall_widget.E005    django-cors-headers is not set up (app or middleware)
webcall_widget.E006    no upstream: no ``UPSTREAM.URL`` and the sandbox is disabled
webcall_widget.W001    the sandbox is the upstream while ``DEBUG`` is off
webcall_widget.W002    several processes (Redis channel layer) but a per-process cache
=====================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from webcall_widget import conf

_KIND_IDS = {
    "bad-value": "webcall_widget.E001",
    "unknown-key": "webcall_widget.E002",
    "bad-url": "webcall_widget.E003",
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


def check_shared_cache(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    layer = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("BACKEND", "")
    cache = settings.CACHES.get("default", {}).get("BACKEND", "")
    per_process = ("locmem", "dummy", "filebased")
    if layer.startswith("channels_redis") and any(name in cache for name in per_process):
        return [
            Warning(
                "Rate limits are counted per process: the cache is not shared.",
                hint=(
                    "The Redis channel layer suggests several processes; use "
                    "django.core.cache.backends.redis.RedisCache so they share one count."
                ),
                id="webcall_widget.W002",
            )
        ]
    return []


ALL: tuple[Callable[..., list[CheckMessage]], ...] = (
    check_settings,
    check_channels,
    check_cors,
    check_upstream,
    check_shared_cache,
)
