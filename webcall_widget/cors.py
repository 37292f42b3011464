"""CORS for the widget's endpoints, following each agent's allowed origins.

django-cors-headers asks :func:`allow_agent_origin` (through its
``check_request_enabled`` signal) about every request its own settings do not already
allow. Requests for other paths are answered by URL resolution alone, without the
database or the cache.

Under ASGI the middleware calls the signal on the event loop, where the ORM may not run
and nothing should wait. So each process keeps one map of every agent's slug to its
allowed origins (:class:`OriginMap`):

- it is built with one query for all agents when it is first needed (on the event loop,
  that query runs in a worker thread), never one per slug;
- saving or deleting an agent in this process changes the map at once (``post_save``,
  ``post_delete``), and once the change is committed, writes a new version stamp to
  Django's cache;
- a process whose map carries another stamp than the cache's rebuilds it (one query), so
  a change reaches every process sharing the cache (Redis) at its next CORS check;
- it is rebuilt at least every ``MAX_AGE`` seconds anyway, for changes no signal saw
  (``QuerySet.update()``, another program writing the table, a lost cache entry).

A slug that no agent has is answered from the map: it never reaches the database and
never writes to the cache. Each CORS check reads the one version key.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from webcall_widget import origins
from webcall_widget.models import Agent
from webcall_widget.origins import parse_origin_list

VERSION_KEY = "webcall_widget:agent-origins:version"
MAX_AGE = 300.0  # seconds
_REQUEST_MEMO = "_webcall_widget_cors"
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


@dataclass(frozen=True)
class _Snapshot:
    origins: dict[str, tuple[str, ...]]  # slug -> allowed origins
    slugs: dict[int, str]  # agent pk -> slug, to follow a renamed slug
    version: object  # the cache's version stamp it was built for
    built_at: float
    stale: bool = False


class OriginMap:
    """Every agent's allowed origins, in this process; see the module's docstring.

    ``load`` runs a function off the event loop when one is running (how the map reads the
    database); ``clock`` and ``max_age`` say when a map is too old to trust.
    """

    def __init__(
        self,
        *,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        load: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self.max_age = max_age
        self._clock = clock
        self._load = load or _outside_event_loop
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._edits = 0  # local changes; a load that started before one is not kept

    def origins_of(self, slug: str) -> list[str] | None:
        """The agent's allowed origins, or None if no agent has that slug."""
        version = cache.get(VERSION_KEY)
        snapshot = self._snapshot
        if (
            snapshot is None
            or snapshot.stale
            or snapshot.version != version
            or self._clock() - snapshot.built_at > self.max_age
        ):
            snapshot = self.load(version)
        found = snapshot.origins.get(slug)
        return None if found is None else list(found)

    def load(self, version: object) -> _Snapshot:
        """Build the map from the database: one query, off the event loop."""
        if version is None:  # first use, or the cache lost it: start a version
            cache.add(VERSION_KEY, _new_version(), None)
            version = cache.get(VERSION_KEY)
        with self._lock:
            edits = self._edits
        slugs, by_slug = self._load(_load_all)
        snapshot = _Snapshot(by_slug, slugs, version, self._clock())
        with self._lock:
            if self._edits == edits:
                self._snapshot = snapshot
        return snapshot

    def agent_saved(self, agent: Agent) -> None:
        self._edit(agent.pk, agent.slug, tuple(agent.origin_list))

    def agent_deleted(self, agent: Agent) -> None:
        self._edit(agent.pk, None, ())

    def _edit(self, pk: int, slug: str | None, allowed: tuple[str, ...]) -> None:
        with self._lock:
            self._edits += 1
            snapshot = self._snapshot
            if snapshot is None:
                return
            by_slug = dict(snapshot.origins)
            slugs = dict(snapshot.slugs)
            previous = slugs.pop(pk, None)
            if previous is not None:
                by_slug.pop(previous, None)
            if slug is not None:
                by_slug[slug] = allowed
                slugs[pk] = slug
            self._snapshot = replace(snapshot, origins=by_slug, slugs=slugs)

    def publish(self) -> None:
        """After a committed change: a new version for every process, this one included
        (its map is rebuilt too, in case another process changed an agent meanwhile)."""
        cache.set(VERSION_KEY, _new_version(), None)
        with self._lock:
            self._edits += 1
            if self._snapshot is not None:
                self._snapshot = replace(self._snapshot, stale=True)

    def clear(self) -> None:
        """Forget the map (tests; another process's view of the world)."""
        with self._lock:
            self._edits += 1
            self._snapshot = None


def _new_version() -> str:
    return uuid.uuid4().hex


def _load_all() -> tuple[dict[int, str], dict[str, tuple[str, ...]]]:
    slugs: dict[int, str] = {}
    by_slug: dict[str, tuple[str, ...]] = {}
    for pk, slug, allowed in Agent.objects.values_list("pk", "slug", "allowed_origins"):
        slugs[pk] = slug
        by_slug[slug] = tuple(parse_origin_list(allowed))
    return slugs, by_slug


ORIGIN_MAP = OriginMap()


def agent_origins(slug: str) -> list[str] | None:
    """The agent's allowed origins, or None if there is no such agent."""
    return ORIGIN_MAP.origins_of(slug)


def remember_agent(instance: Agent, using: str = "default", **kwargs: Any) -> None:
    """``post_save`` receiver: the change counts here at once, everywhere once committed."""
    ORIGIN_MAP.agent_saved(instance)
    transaction.on_commit(ORIGIN_MAP.publish, using=using)


def forget_agent(instance: Agent, using: str = "default", **kwargs: Any) -> None:
    """``post_delete`` receiver."""
    ORIGIN_MAP.agent_deleted(instance)
    transaction.on_commit(ORIGIN_MAP.publish, using=using)


__all__ = ["ORIGIN_MAP", "OriginMap", "agent_origins", "allow_agent_origin"]
