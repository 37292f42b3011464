"""Messages to live calls from any process, through the channel layer.

A call belongs to the process that holds its upstream session (its bridge). That process
gives the call a :class:`CallMailbox`: a channel of its own, in the call's group
(:func:`call_group`). Through the group come:

* ``webcall.end``: staff ended the call (the admin's "End selected calls", :func:`end_call`);
* ``webcall.attach``: a socket on another process resumes the call. The mailbox answers
  that socket's consumer with ``webcall.attached`` (its own channel) and attaches a
  :class:`RemoteBrowser` to the bridge, which then sends the socket's frames to the
  consumer as ``webcall.text`` / ``webcall.bytes`` / ``webcall.close`` messages; the
  consumer sends the visitor's frames back as ``webcall.frame`` (with the agent audio its
  socket dropped, a slow visitor's, so that the call counts it and tells them) and its end
  as ``webcall.detach``. When the call is already over, the answer is ``webcall.over``.

Only a call whose socket is on another process sends its frames through the layer; a call
held where its socket is never touches it after the mailbox opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from webcall_widget.relay import protocol, tokens

if TYPE_CHECKING:
    from webcall_widget.conf import Settings
    from webcall_widget.relay.bridge import Bridge

logger = logging.getLogger("webcall_widget.relay")

END = "webcall.end"
ATTACH = "webcall.attach"  # {"reply": channel, "origin": str, "resumes": int}
ATTACHED = "webcall.attached"  # {"owner": channel}
OVER = "webcall.over"  # the call ended before the socket could take it up
# {"browser": channel, "text": str | None, "bytes": bytes | None}, or {"browser", "error"},
# or {"browser", "dropped": int}
FRAME = "webcall.frame"
DETACH = "webcall.detach"  # {"browser": channel}
TEXT = "webcall.text"  # {"text": str}
BYTES = "webcall.bytes"  # {"bytes": bytes}
CLOSE = "webcall.close"  # {"code": int}


def call_group(call_id: uuid.UUID | str) -> str:
    """The channel-layer group of one call: the mailbox of the process that holds it."""
    hex_id = call_id.hex if isinstance(call_id, uuid.UUID) else uuid.UUID(str(call_id)).hex
    return f"webcall-call-{hex_id}"


async def aend_call(call_id: uuid.UUID | str) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("Ending calls needs CHANNEL_LAYERS (channels_redis).")
    await layer.group_send(call_group(call_id), {"type": END})


def end_call(call_id: uuid.UUID | str) -> None:
    """Ask whichever process holds the call to end it; nothing happens if none does."""
    async_to_sync(aend_call)(call_id)


class RemoteBrowser:
    """A browser socket whose consumer runs on another process, as the bridge sees it.

    ``on_audio_dropped`` hears of agent audio the channel layer refused (the consumer
    does not keep up): the call counts it as dropped. Nobody is told: the notice would
    wait in the same full channel."""

    def __init__(
        self,
        layer: BaseChannelLayer,
        channel: str,
        label: str,
        on_audio_dropped: Callable[[int], object] | None = None,
    ) -> None:
        self.layer = layer
        self.channel = channel
        self.label = label
        self._on_audio_dropped = on_audio_dropped
        self._dropping = False

    async def send_text(self, frame: str) -> None:
        await self._send({"type": TEXT, "text": frame})

    async def send_bytes(self, data: bytes) -> None:
        if not await self._send({"type": BYTES, "bytes": data}) and self._on_audio_dropped:
            self._on_audio_dropped(len(data))

    async def close(self, code: int) -> None:
        await self._send({"type": CLOSE, "code": int(code)})

    async def _send(self, message: dict[str, Any]) -> bool:
        """False when the message was dropped."""
        try:
            await self.layer.send(self.channel, message)
        except ChannelFull:
            # Its consumer does not keep up (or is gone): drop, as a slow network would.
            if not self._dropping:
                self._dropping = True
                logger.warning(
                    "Call %s: the visitor's socket on another process is not reading; "
                    "frames to it are dropped.",
                    self.label,
                )
            return False
        self._dropping = False
        return True


class CallMailbox:
    """The call's address on the channel layer, for the bridge that holds the call.

    One task, started by :meth:`open` (from ``Bridge.start``) and cancelled and awaited by
    :meth:`close` (a step of the call's end), reads the call's own channel. A failing
    channel layer is logged and leaves the call going; only what comes through the layer
    (resumes on other processes, staff ending it) is lost.
    """

    def __init__(self, layer: BaseChannelLayer, settings: Settings) -> None:
        self.layer = layer
        self.settings = settings
        self.channel: str | None = None
        self._bridge: Bridge | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._remotes: dict[str, RemoteBrowser] = {}

    def open(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._task = asyncio.create_task(
            self._serve(bridge), name=f"webcall-mailbox-{bridge.label}"
        )

    async def close(self) -> None:
        """Stop reading; from the mailbox's own task (a message that ended the call), the
        reading stops once that message is handled."""
        self._closed = True
        task, self._task = self._task, None
        if task is None or task is asyncio.current_task():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _serve(self, bridge: Bridge) -> None:
        group = call_group(bridge.call.call_id)
        try:
            self.channel = await self.layer.new_channel()
            await self.layer.group_add(group, self.channel)
        except Exception:
            logger.exception(
                "Call %s: could not join the channel layer; the call cannot be resumed on "
                "another process nor ended from the admin.",
                bridge.label,
            )
            return
        try:
            while not self._closed:
                message = await self.layer.receive(self.channel)
                try:
                    await self._dispatch(bridge, message)
                except Exception:
                    logger.exception(
                        "Call %s: a %r message failed.", bridge.label, message.get("type")
                    )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "Call %s: its channel layer failed; the call goes on, but cannot be resumed "
                "on another process nor ended from the admin.",
                bridge.label,
            )
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.layer.group_discard(group, self.channel)

    async def _dispatch(self, bridge: Bridge, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == FRAME:
            remote = self._remotes.get(message.get("browser", ""))
            dropped = message.get("dropped")
            if isinstance(dropped, int) and dropped > 0:
                await self._dropped(bridge, remote, dropped)
            elif remote is not None and bridge.holds(remote):
                await self._frame(bridge, remote, message)
        elif kind == ATTACH:
            await self._attach(bridge, message)
        elif kind == DETACH:
            remote = self._remotes.pop(message.get("browser", ""), None)
            if remote is not None:
                await bridge.visitor_gone(remote)
        elif kind == END:
            await bridge.end_by_staff()

    async def _attach(self, bridge: Bridge, message: dict[str, Any]) -> None:
        reply = str(message["reply"])
        grant = tokens.Grant(bridge.call.call_id, str(message["origin"]), int(message["resumes"]))
        remote = RemoteBrowser(self.layer, reply, bridge.label, bridge.count_dropped_audio)
        # Forget sockets that no longer hold the call.
        self._remotes = {c: r for c, r in self._remotes.items() if bridge.holds(r)}
        self._remotes[reply] = remote
        await self.layer.send(reply, {"type": ATTACHED, "owner": self.channel})
        if not await bridge.attach(remote, grant):
            self._remotes.pop(reply, None)
            await self.layer.send(reply, {"type": OVER})

    async def _dropped(self, bridge: Bridge, remote: RemoteBrowser | None, size: int) -> None:
        """A socket on another process dropped agent audio the call had relayed to it (a
        slow visitor): counted in any case, and told to the visitor if the socket still
        holds the call."""
        if remote is not None and bridge.holds(remote):
            notice = bridge.browser_dropped_audio(size)
            if notice is not None:
                await remote.send_text(notice)
        else:
            bridge.count_dropped_audio(size)

    async def _frame(self, bridge: Bridge, remote: RemoteBrowser, message: dict[str, Any]) -> None:
        error = message.get("error")
        if error is not None:  # refused by the consumer: the call decides what follows
            close = error.get("close")
            refused = protocol.ProtocolError(
                str(error["code"]),
                str(error["message"]),
                None if close is None else protocol.CloseCode(close),
            )
            await bridge.refuse(remote, refused, reason=error.get("reason"))
            return
        try:
            frame = protocol.parse(
                message.get("text"),
                message.get("bytes"),
                mode=bridge.mode,
                max_text_length=self.settings.max_text_length,
                max_frame_bytes=self.settings.max_frame_bytes,
            )
        except protocol.ProtocolError as exc:
            await bridge.refuse(remote, exc)
            return
        await bridge.take(remote, frame)
