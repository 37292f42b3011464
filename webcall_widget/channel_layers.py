"""The Redis channel layer for several processes, configured so that it stays up.

channels_redis waits for the next message with a blocking pop of 5 seconds
(``RedisChannelLayer.brpop_timeout``). redis-py 8 and later give every connection a
socket timeout, 5 seconds by default: the same 5 seconds. Whenever no message comes for a
while, the read times out just before the pop answers, ``redis.exceptions.TimeoutError``
escapes Channels' dispatch loop, the consumer dies and the visitor's socket closes with
1011. So each host needs a socket timeout longer than the blocking pop:
:func:`redis_channel_layer` builds such a configuration, and system check
``webcall_widget.E007`` refuses one without it.

A process's channels are all read by one blocking pop too: whichever ``receive()`` holds
channels_redis's lock pops the next message of any of them and hands it on. Cancelling
that ``receive()`` can lose the message just popped, for another channel of the process,
and the cancelled receive may take seconds to end (channels_redis#366; on a local Redis, 2
messages in 10 lost in one run of a script, none in another). A call's mailbox stopped so
when its call ended, and a resumed socket's reader when its socket closed: in the chaos
test of a Redis restart, where every visitor hangs up at once, a hang-up or a close
between processes never arrived in 3 runs of 10. :class:`ChannelReader` stops a reader
with a message to its own channel instead, and cancels only when that cannot be sent (the
layer is down: nothing is on its way to lose).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.layers import BaseChannelLayer

BACKEND = "channels_redis.core.RedisChannelLayer"
# channels_redis.core.RedisChannelLayer.brpop_timeout (not a setting of its own).
BLOCKING_RECEIVE_SECONDS = 5.0
SOCKET_TIMEOUT_SECONDS = 30.0
# The message that ends a reader's pending receive (ChannelReader.stop).
WAKE = "webcall.wake"


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


class ChannelReader:
    """Reads one channel of ``layer`` without ever cancelling a receive that may be
    under way for the process's other channels.

    The receive under way belongs to the reader, not to the task that awaits
    :meth:`receive`: cancelling that task (or its timeout) leaves the receive pending for
    the next :meth:`receive`, and :meth:`stop` ends it with a message."""

    def __init__(self, layer: BaseChannelLayer, channel: str) -> None:
        self.layer = layer
        self.channel = channel
        self._pending: asyncio.Future[dict[str, Any]] | None = None

    async def receive(self, within: float | None = None) -> dict[str, Any] | None:
        """The next message; None when none came within ``within`` seconds.

        Raises:
            Exception: what the channel layer raised (Redis gone).
        """
        while True:
            if self._pending is None:
                self._pending = asyncio.ensure_future(self.layer.receive(self.channel))
            done, _ = await asyncio.wait({self._pending}, timeout=within)
            if not done:
                return None
            received, self._pending = self._pending, None
            message = received.result()
            if message.get("type") != WAKE:
                return message

    async def stop(self, within: float = 5.0) -> None:
        """End the receive under way, if any: the message that ends it comes through the
        layer, and whatever comes before it is dropped. Cancelled after ``within``
        seconds, or at once when the layer fails."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if pending.done():  # a message nobody wants now, or the layer's failure
            with contextlib.suppress(asyncio.CancelledError, Exception):
                pending.result()
            return
        try:
            async with asyncio.timeout(within):
                await self.layer.send(self.channel, {"type": WAKE})
                while (await asyncio.shield(pending)).get("type") != WAKE:
                    pending = asyncio.ensure_future(self.layer.receive(self.channel))
        except Exception:  # the layer failed, or did not answer in time
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        except BaseException:
            pending.cancel()
            raise
