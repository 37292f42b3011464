"""The health and metrics endpoints.

``GET <prefix>/health/live``
    200 while the process serves requests on its event loop.
``GET <prefix>/health/ready``
    200 when the process may take calls: the database, the cache and the channel layer
    answer (:mod:`.readiness`), it is not draining, and it holds fewer voice calls than
    ``LIMITS.VOICE_CALLS_PER_PROCESS``; otherwise 503, with ``failed`` naming the checks.
``GET <prefix>/metrics``
    Prometheus's text format, for staff users and for a request with
    ``Authorization: Bearer <METRICS.TOKEN>``; 403 for anyone else, the same answer
    whether a token is set or not.

Both health answers carry what :meth:`RelayProcess.describe` shows (no call id, no key,
no visitor's anything) and the voice capacity. ``HEAD`` is answered like ``GET``; other
methods get 405 in the app's JSON error shape. Nothing here is for browsers: no CORS,
never cached.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from webcall_widget import metrics
from webcall_widget.conf import Settings, get_settings
from webcall_widget.health.readiness import Readiness, default_probes
from webcall_widget.http import error_response
from webcall_widget.relay import process

# Longer Authorization headers are not read (a token is at most 256 characters).
MAX_AUTHORIZATION = 300

READINESS = Readiness(default_probes(f"webcall_widget:health:{process.current.id}"))
"""This process's dependency checks (tests make their own)."""

View = Callable[..., Coroutine[Any, Any, HttpResponse]]


def _read_only(view: View) -> View:
    @functools.wraps(view)
    async def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return error_response(405, "method_not_allowed", "Use GET or HEAD.", Allow="GET, HEAD")
        response = await view(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response

    return checked


def _not_found() -> JsonResponse:
    return error_response(404, "not_found", "Not found.")


def _state(settings: Settings) -> dict[str, Any]:
    relay = process.current
    relay.ensure_running()  # a process that only gets probes still renews its lease
    return {**relay.describe(), "voice_capacity": settings.limits.voice_calls_per_process}


@_read_only
async def live(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    if not settings.health.enabled:
        return _not_found()
    return JsonResponse({"status": "live", **_state(settings)})


@_read_only
async def ready(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    if not settings.health.enabled:
        return _not_found()
    state = _state(settings)
    answers = await READINESS.check(settings.health.check_timeout)
    checks = {name: check.as_json() for name, check in answers.items()}
    checks["draining"] = {"ok": not state["draining"]}
    checks["capacity"] = {"ok": state["voice_calls"] < state["voice_capacity"]}
    failed = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "not_ready" if failed else "ready", **state, "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


@_read_only
async def scrape(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    if not await _may_scrape(request, settings.metrics.token):
        return error_response(
            403,
            "forbidden",
            "The metrics are for staff users, or for a request with "
            "'Authorization: Bearer <METRICS.TOKEN>'.",
        )
    if not metrics.available():
        return error_response(
            501,
            "metrics_not_installed",
            f"Metrics need prometheus_client: {metrics.INSTALL}.",
        )
    from prometheus_client.exposition import choose_encoder

    from webcall_widget.health import gauges

    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(gauges.served()), content_type=content_type)


async def _may_scrape(request: HttpRequest, token: str | None) -> bool:
    if token is not None and _bearer_matches(request, token):
        return True
    auser = getattr(request, "auser", None)  # no AuthenticationMiddleware: nobody is staff
    if auser is None:
        return False
    user = await auser()
    return bool(user.is_active and user.is_staff)


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    if len(header) > MAX_AUTHORIZATION:
        return False
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return False
    # Digests of equal length: the time taken tells nothing of the token, not its length.
    return hmac.compare_digest(_digest(given), _digest(token))


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
