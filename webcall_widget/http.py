"""What every HTTP endpoint of the app does alike: read a bounded body, answer an error in
one JSON shape, and tell who the client is.

Errors are JSON ``{"error": {"code": ..., "message": ...}}`` with a stable ``code`` the
widget maps to its own (translated) words and a ``message`` a visitor can be shown (the
code's words from :func:`~webcall_widget.strings.visitor_message`, as the relay sends them);
a malformed request adds ``detail``, in English, for the developer.

A client is its IP address as the last trusted proxy saw it (:func:`client_ip`), and, for
the per-client limits, an IPv4 address or an IPv6 /64 (:func:`client_key`).

A database or cache that does not answer (a restart, an outage) is a 503 the widget can
try again after, not a server error page (:func:`answers_outages`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from webcall_widget.strings import visitor_message

logger = logging.getLogger("webcall_widget.http")

IPV6_CLIENT_PREFIX = 64
# What a visitor's widget is told to wait before it tries again, in seconds, when the
# database or the cache does not answer.
OUTAGE_RETRY_AFTER = 5


def _outage_errors() -> tuple[type[BaseException], ...]:
    """What the database and the cache raise when they do not answer: Django's wrappers
    of the database driver's errors, the socket's own, and redis-py's (Django's
    ``RedisCache`` and channels_redis use it), where it is installed."""
    errors: list[type[BaseException]] = [
        OperationalError,
        InterfaceError,
        ConnectionError,
        TimeoutError,
    ]
    try:
        from redis import exceptions as redis_errors
    except ImportError:
        pass
    else:
        errors += [redis_errors.ConnectionError, redis_errors.TimeoutError]
    return tuple(errors)


OUTAGE_ERRORS = _outage_errors()

View = Callable[..., HttpResponse]


def answers_outages(view: View) -> View:
    """The view answers 503 ``relay_error`` with a ``Retry-After`` when the database or
    the cache does not answer, and logs why."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except OUTAGE_ERRORS:
            logger.exception(
                "%s %s: the database or the cache did not answer.", request.method, request.path
            )
            return visitor_error(503, "relay_error", Retry_After=str(OUTAGE_RETRY_AFTER))

    return wrapper


def error_response(
    status: int, code: str, message: str, *, detail: str = "", **extra: Any
) -> JsonResponse:
    """``extra`` are headers (``Retry_After``)."""
    error = {"code": code, "message": message}
    if detail:
        error["detail"] = detail
    response = JsonResponse({"error": error}, status=status)
    for header, value in extra.items():
        response[header.replace("_", "-")] = value
    return response


def visitor_error(status: int, code: str, detail: str = "", **extra: Any) -> JsonResponse:
    """The error ``code`` with the words a visitor is shown for it."""
    return error_response(status, code, visitor_message(code), detail=detail, **extra)


def read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None if it is over ``limit`` bytes: one declared larger by its
    Content-Length is not read at all."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    try:
        body = request.body  # no Content-Length: Django reads up to its own limit
    except RequestDataTooBig:
        return None
    return None if len(body) > limit else body


def client_ip(request: HttpRequest, trusted_proxies: int) -> str | None:
    """The visitor's IP: ``REMOTE_ADDR``, or the address the last trusted proxy saw."""
    return client_address(
        request.META.get("REMOTE_ADDR", ""),
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
        trusted_proxies,
    )


def client_address(remote: str, forwarded_for: str, trusted_proxies: int) -> str | None:
    """The client's IP from the peer's address and an ``X-Forwarded-For`` header: the
    address ``trusted_proxies`` hops from the right, or the peer's with no proxy."""
    address = remote
    if trusted_proxies:
        hops = [h.strip() for h in forwarded_for.split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= trusted_proxies:
            address = hops[-trusted_proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def client_key(ip: str | None) -> str | None:
    """What the per-client limits count by: an IPv4 address as it is, an IPv6 address as
    its /64 network (``2001:db8:1:2::/64``), since one subscriber is given a whole /64 and
    can use any address in it. An IPv4-mapped IPv6 address is its IPv4 address."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)
