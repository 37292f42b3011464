"""Relay processes' leases in the shared cache: who is alive, and who is stopping.

A relay process writes its lease (:mod:`webcall_widget.relay.process`) every few seconds,
valid for :data:`LEASE_SECONDS`; a process whose lease is missing has stopped renewing it
(it was stopped or died). The call limits read leases too: a call whose owner is gone
holds no line (:func:`webcall_widget.limits.active_calls`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver

# A process that stops renewing its lease is taken for gone this long after its last
# renewal: the longest a dead process's calls hold their agent's lines.
LEASE_SECONDS = 15.0
PREFIX = "webcall_widget:relay-lease:"


def key(process_id: str) -> str:
    return PREFIX + process_id


def renew(process_id: str, *, draining: bool, at: float, seconds: float = LEASE_SECONDS) -> bool:
    """Write the process's lease; whether the one it wrote before was still there. A
    process that renews in time always finds it: when it does not, the cache lost its keys
    (Redis restarted or was flushed), and every other process's lease is gone too until
    each writes its own again."""
    held = cache.get(key(process_id)) is not None
    cache.set(key(process_id), {"at": at, "draining": draining}, seconds)
    return held


def drop(process_id: str) -> None:
    cache.delete(key(process_id))


def alive(owners: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The live leases among ``owners``; a process missing from the answer is gone."""
    keys = {key(owner): owner for owner in owners if owner}
    if not keys:
        return {}
    found = cache.get_many(list(keys))
    return {keys[k]: value for k, value in found.items() if isinstance(value, dict)}


def gone(owners: Iterable[str]) -> set[str]:
    """The processes among ``owners`` whose lease has lapsed; none where leases cannot be
    seen from every process (:func:`misleading`)."""
    if misleading():
        return set()
    wanted = {owner for owner in owners if owner}
    return wanted - set(alive(wanted))


PER_PROCESS_CACHES = ("locmem", "dummy")


@functools.cache
def misleading() -> bool:
    """Whether this process cannot see the others' leases: a per-process cache where a
    Redis channel layer says there are several processes (``webcall_widget.E010``). Every
    other process would then look gone, and its calls be taken from it."""
    layers = getattr(settings, "CHANNEL_LAYERS", {}) or {}
    layer = layers.get("default", {}).get("BACKEND", "")
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    return layer.startswith("channels_redis") and any(n in backend for n in PER_PROCESS_CACHES)


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CACHES", "CHANNEL_LAYERS"):
        misleading.cache_clear()
