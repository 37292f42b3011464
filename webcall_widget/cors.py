"""CORS for the widget's endpoints, following each agent's allowed origins.

django-cors-headers asks :func:`allow_agent_origin` (through its
``check_request_enabled`` signal) about every request its own settings do not already
allow. Requests for other paths are answered by URL resolution alone, without the
database or the cache.

Under ASGI the middleware calls the signal from the event loop, where the ORM may not
run. So each agent's origin list is kept in Django's cache (shared by every process when
the cache is Redis), written whenever an agent is saved, and only on a miss read from the
database in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from webcall_widget import origins
from webcall_widget.models import Agent

_REQUEST_MEMO = "_webcall_widget_cors"
_CACHE_TIMEOUT = 300
_NO_AGENT: list[str] = ["-"]  # cached for unknown slugs; never a valid origin list
T = TypeVar("T")


def allow_agent_origin(sender: Any, request: HttpRequest, **kwargs: Any) -> bool:
    memo = getattr(request, _REQUEST_MEMO, None)
    if memo is None:
        memo = _decide(request)
        setattr(request, _REQUEST_MEMO, memo)
    return bool(memo)


def _decide(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return False
    slug = _agent_slug(request.path_info)
    if slug is None:
        return False
    allowed = agent_origins(slug)
    if allowed is None:
        return False
    return origins.is_allowed(origin, request.get_host(), allowed)


def _agent_slug(path: str) -> str | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if "webcall_widget" not in match.app_names:
        return None
    slug = match.kwargs.get("slug")
    return slug if isinstance(slug, str) else None


def cache_key(slug: str) -> str:
    return f"webcall_widget:agent-origins:{slug}"


def agent_origins(slug: str) -> list[str] | None:
    """The agent's allowed origins, or None if there is no such agent."""
    cached = cache.get(cache_key(slug))
    if cached is None:
        cached = _outside_event_loop(lambda: _load(slug))
        cache.set(cache_key(slug), cached, _CACHE_TIMEOUT)
    return None if cached == _NO_AGENT else list(cached)


def _load(slug: str) -> list[str]:
    agent = Agent.objects.filter(slug=slug).only("allowed_origins").first()
    return _NO_AGENT if agent is None else agent.origin_list


def remember_agent(instance: Agent, **kwargs: Any) -> None:
    """``post_save`` receiver: keep the cached origin list in step with the admin."""
    cache.set(cache_key(instance.slug), instance.origin_list, _CACHE_TIMEOUT)


def forget_agent(instance: Agent, **kwargs: Any) -> None:
    """``post_delete`` receiver."""
    cache.delete(cache_key(instance.slug))


def _outside_event_loop(function: Callable[[], T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function()

    def in_thread() -> T:
        try:
            return function()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="webcall-cors") as pool:
        return pool.submit(in_thread).result()


__all__ = ["agent_origins", "allow_agent_origin", "forget_agent", "remember_agent"]
