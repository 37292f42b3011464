"""The Redis channel layer for several processes, configured so that it stays up.

channels_redis waits for the next message with a blocking pop of 5 seconds
(``RedisChannelLayer.brpop_timeout``). redis-py 8 and later give every connection a
socket timeout, 5 seconds by default: the same 5 seconds. Whenever no message comes for a
while, the read times out just before the pop answers, ``redis.exceptions.TimeoutError``
escapes Channels' dispatch loop, the consumer dies and the visitor's socket closes with
1011. So each host needs a socket timeout longer than the blocking pop:
:func:`redis_channel_layer` builds such a configuration, and system check
``webcall_widget.E007`` refuses one without it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

BACKEND = "channels_redis.core.RedisChannelLayer"
# channels_redis.core.RedisChannelLayer.brpop_timeout (not a setting of its own).
BLOCKING_RECEIVE_SECONDS = 5.0
SOCKET_TIMEOUT_SECONDS = 30.0


def redis_channel_layer(url: str, **config: Any) -> dict[str, Any]:
    """A ``CHANNEL_LAYERS["default"]`` for channels_redis on the Redis at ``url``.

    ::

        CHANNEL_LAYERS = {"default": redis_channel_layer("redis://127.0.0.1:6379/0")}

    ``config`` adds to the layer's ``CONFIG`` (e.g. ``prefix``, ``capacity``).
    """
    host = {
        "address": url,
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
    }
    return {"BACKEND": BACKEND, "CONFIG": {"hosts": [host], **config}}


def _redis_default_timeout() -> float | None:
    try:
        from redis import _defaults  # redis-py 8 and later
    except ImportError:
        return None  # older redis-py: no socket timeout unless one is set
    value: object = getattr(_defaults, "DEFAULT_SOCKET_TIMEOUT", None)
    return float(value) if isinstance(value, int | float) else None


def _host_timeout(host: Any, default: float | None) -> float | None:
    """The socket timeout a channels_redis host entry ends up with."""
    if isinstance(host, dict):
        if "socket_timeout" in host:
            value = host["socket_timeout"]
            return None if value is None else float(value)
        address = host.get("address")
    else:
        address = host if isinstance(host, str) else None
    if isinstance(address, str):
        in_url = parse_qs(urlsplit(address).query).get("socket_timeout")
        if in_url:
            try:
                return float(in_url[0])
            except ValueError:
                return default
    return default


def short_timeouts(channel_layers: dict[str, Any]) -> list[tuple[str, float]]:
    """``(layer alias, timeout)`` for every channels_redis host whose socket timeout is
    not longer than the layer's blocking receive."""
    default = _redis_default_timeout()
    found = []
    for alias, layer in channel_layers.items():
        if not isinstance(layer, dict) or layer.get("BACKEND") != BACKEND:
            continue
        hosts = (layer.get("CONFIG") or {}).get("hosts") or ["redis://localhost:6379"]
        for host in hosts if isinstance(hosts, list | tuple) else []:
            timeout = _host_timeout(host, default)
            if timeout is not None and timeout <= BLOCKING_RECEIVE_SECONDS:
                found.append((alias, timeout))
    return found
