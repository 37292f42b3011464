"""The call's address on the channel layer, read by the process that holds it.

:class:`CallMailbox` gives a bridge a channel of its own in the call's group
(:func:`~.messages.call_group`), and turns what arrives there (:mod:`.messages`) into calls
on the bridge: staff ending it, and sockets on other processes resuming it, each seen by
the bridge as a :class:`RemoteBrowser`. :func:`end_call` is how the admin reaches a call,
wherever it runs.

Only a call whose socket is on another process sends its frames through the layer; a
call held where its socket is never touches it after the mailbox opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from webcall_widget.channel_layers import ChannelReader
from webcall_widget.relay import messages, tokens
from webcall_widget.relay.bridge import Bridge

logger = logging.getLogger("webcall_widget.relay")

# A failed channel layer is tried again after this, then twice as long each time, up to the
# most.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0


async def aend_call(call_id: uuid.UUID | str) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("Ending calls needs CHANNEL_LAYERS (channels_redis).")
    await layer.group_send(messages.call_group(call_id), {"type": messages.END})


def end_call(call_id: uuid.UUID | str) -> None:
    """Ask whichever process holds the call to end it; nothing happens if none does."""
    async_to_sync(aend_call)(call_id)


class RemoteBrowser:
    """A browser socket whose consumer runs on another process, as the bridge sees it.

    ``on_audio_dropped`` hears of agent audio the channel layer refused (the consumer
    does not keep up): the call counts it as dropped. Nobody is told: the notice would
    wait in the same full channel.

    ``on_lost`` hears, once, that the channel layer failed (Redis went away): the socket
    cannot be reached any more, and whatever is sent to it from then on is dropped. Its
    consumer's layer failed too, and it sends the visitor to resume (:mod:`.remote`).

    Frames go one at a time, in the order the call sends them (from its pump and from the
    visitor's frames): channels_redis takes several round trips to send one, and two sends
    under way together reached the socket in either order (the agent's answer before the
    echo of the message it answers, a partial after its final version).
    """

    def __init__(
        self,
        layer: BaseChannelLayer,
        channel: str,
        label: str,
        on_audio_dropped: Callable[[int], object] | None = None,
        on_lost: Callable[[], object] | None = None,
    ) -> None:
        self.layer = layer
        self.channel = channel
        self.label = label
        self._on_audio_dropped = on_audio_dropped
        self._on_lost = on_lost
        self._dropping = False
        self._one_at_a_time = asyncio.Lock()
        self.lost = False

    async def send_text(self, frame: str) -> None:
        await self._send({"type": messages.TEXT, "text": frame})

    async def send_bytes(self, data: bytes) -> None:
        if (
            not await self._send({"type": messages.BYTES, "bytes": data})
            and self._on_audio_dropped
        ):
            self._on_audio_dropped(len(data))

    async def close(self, code: int) -> None:
        await self._send({"type": messages.CLOSE, "code": int(code)})

    async def _send(self, message: dict[str, Any]) -> bool:
        """False when the message was dropped."""
        async with self._one_at_a_time:
            return await self._send_now(message)

    async def _send_now(self, message: dict[str, Any]) -> bool:
        if self.lost:
            return False
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
        except Exception as exc:
            self.lost = True
            logger.warning(
                "Call %s: the visitor's socket on another process cannot be reached, its "
                "channel layer failed (%s); the call waits for the visitor to come back.",
                self.label,
                type(exc).__name__,
            )
            if self._on_lost is not None:
                self._on_lost()
            return False
        self._dropping = False
        return True


class CallMailbox:
    """The call's address on the channel layer, for the bridge that holds the call.

    One task, started by :meth:`open` (from ``Bridge.start``) and cancelled and awaited by
    :meth:`close` (a step of the call's end), reads the call's own channel; its receive
    under way is ended with a message, not cancelled (:class:`ChannelReader`). A failing
    channel layer is logged and leaves the call going; what comes through the layer
    (resumes on other processes, staff ending it) is lost until it answers again.
    """

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self._reader: ChannelReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._remotes: dict[str, RemoteBrowser] = {}
        self._leaving: set[asyncio.Task[None]] = set()  # sockets elsewhere found lost
        # Made only when a call is taken over here: its group joined, the old owner gone.
        self._joined: asyncio.Future[None] | None = None
        self._released: asyncio.Future[None] | None = None
        self._owner = ""  # the process holding the call: this one
        self._group = ""

    def open(self, bridge: Bridge) -> None:
        self._owner = bridge.call.owner
        self._group = messages.call_group(bridge.call_id)
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
        if self._reader is not None:
            await self._reader.stop()

    async def _serve(self, bridge: Bridge) -> None:
        """Join the call's group and read its channel; when the channel layer fails (Redis
        restarting), join again, a little later each time, until it answers."""
        pause = 0.0
        try:
            while not self._closed:
                try:
                    await self._join()
                    if pause:
                        logger.info("Call %s: its channel layer answers again.", bridge.label)
                    pause = 0.0
                    await self._read(bridge)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if not pause:
                        logger.exception(
                            "Call %s: its channel layer failed; the call goes on, but cannot "
                            "be resumed on another process nor ended from the admin until it "
                            "answers again.",
                            bridge.label,
                        )
                    pause = min(RETRY_MAX_SECONDS, 2 * pause or RETRY_FIRST_SECONDS)
                    await asyncio.sleep(pause)
        finally:
            if self.channel is not None:
                channel, self.channel = self.channel, None
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await self.layer.group_discard(self._group, channel)

    async def _join(self) -> None:
        """Join the call's group on the mailbox's channel, the same one again after a
        failure: a socket attached through another process sends to it (the channel
        answered its attach), and a new name would leave its frames, its hang-up
        among them, where nobody reads."""
        if self.channel is None:
            self.channel = await self.layer.new_channel()
            self._reader = ChannelReader(self.layer, self.channel)
        await self.layer.group_add(self._group, self.channel)
        _done(self._joined_future())

    async def _read(self, bridge: Bridge) -> None:
        assert self._reader is not None
        while not self._closed:
            message = await self._reader.receive()
            assert message is not None
            try:
                await self._dispatch(bridge, message)
            except Exception:
                logger.exception(
                    "Call %s: a %r message failed.", bridge.label, message.get("type")
                )

    async def join_again(self) -> None:
        """Redis lost the call's group (a restart): be in it again."""
        if self.channel is not None:
            await self.layer.group_add(self._group, self.channel)

    async def _dispatch(self, bridge: Bridge, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == messages.FRAME:
            remote = self._remotes.get(message.get("browser", ""))
            visitor = messages.read_visitor_message(message)
            if remote is not None and visitor is not None:
                await self._from_visitor(bridge, remote, visitor)
            elif isinstance(visitor, messages.Dropped):
                # From a socket a newer resume replaced: the audio was relayed to it.
                bridge.drops.to_visitor(visitor.size)
        elif kind == messages.ATTACH:
            await self._attach(bridge, message)
        elif kind == messages.DETACH:
            remote = self._remotes.pop(message.get("browser", ""), None)
            if remote is not None:
                await bridge.visitor_gone(remote)
        elif kind == messages.END:
            await bridge.end_by_staff()
        elif kind == messages.RELEASE and message.get("owner") != self._owner:
            await bridge.let_go()
            await self.layer.send(str(message["reply"]), {"type": messages.RELEASED})
        elif kind == messages.RELEASED:
            _done(self._released_future())

    def _joined_future(self) -> asyncio.Future[None]:
        if self._joined is None:
            self._joined = asyncio.get_running_loop().create_future()
        return self._joined

    def _released_future(self) -> asyncio.Future[None]:
        if self._released is None:
            self._released = asyncio.get_running_loop().create_future()
        return self._released

    async def supersede(self, wait: float) -> None:
        """The call was taken over by this process: the one that held it lets go (and is
        waited for, up to ``wait`` seconds, to write what it holds)."""
        async with asyncio.timeout(5):
            await asyncio.shield(self._joined_future())
        release = {"type": messages.RELEASE, "owner": self._owner, "reply": self.channel}
        await self.layer.group_send(self._group, release)
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await asyncio.shield(self._released_future())

    async def _from_visitor(
        self, bridge: Bridge, remote: RemoteBrowser, message: messages.VisitorMessage
    ) -> None:
        if isinstance(message, messages.Frame):
            await bridge.take(remote, message.frame)
        elif isinstance(message, messages.Refused):
            await bridge.refuse(remote, message.error, reason=message.reason)
        else:
            notice = bridge.dropped_audio(remote, message.size)
            if notice is not None:
                await remote.send_text(notice)

    async def _attach(self, bridge: Bridge, message: dict[str, Any]) -> None:
        reply = str(message["reply"])
        grant = tokens.Grant(bridge.call_id, str(message["origin"]), int(message["resumes"]))
        remote = RemoteBrowser(
            self.layer,
            reply,
            bridge.label,
            bridge.drops.to_visitor,
            on_lost=lambda: self._lost(bridge, reply),
        )
        # Forget sockets that no longer hold the call.
        self._remotes = {c: r for c, r in self._remotes.items() if bridge.holds(r)}
        self._remotes[reply] = remote
        await self.layer.send(reply, {"type": messages.ATTACHED, "owner": self.channel})
        if not await bridge.attach(remote, grant):
            self._remotes.pop(reply, None)
            await self.layer.send(reply, {"type": messages.OVER})

    def _lost(self, bridge: Bridge, channel: str) -> None:
        """The socket elsewhere at ``channel`` cannot be reached: for the call, the visitor
        is gone, as when a socket drops (in a task of its own: this is heard from inside
        a send of the call's)."""
        remote = self._remotes.pop(channel, None)
        if remote is None:
            return
        task = asyncio.create_task(
            bridge.visitor_gone(remote), name=f"webcall-mailbox-lost-{bridge.label}"
        )
        self._leaving.add(task)
        task.add_done_callback(self._leaving.discard)


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
