"""A resumed call whose bridge runs on another process, as the socket's consumer sees it.

:class:`RemoteCall` asks the call's group to attach the socket (:mod:`.messages`), then
carries the visitor's frames (parsed here, once) to the mailbox that answered, and what
the call sends back to the socket. When nobody answers within the attach timeout, the
process that held the call is gone: ``take_over`` decides what follows (:mod:`.resume`
takes the call over here, or shows the visitor how it ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from webcall_widget.channel_layers import ChannelReader
from webcall_widget.conf import Settings
from webcall_widget.relay import messages, over, protocol, records, tokens
from webcall_widget.relay.call import MAX_EARLY_FRAMES
from webcall_widget.relay.outcomes import Browser
from webcall_widget.relay.port import CallPort
from webcall_widget.voicehub.events import Mode

logger = logging.getLogger("webcall_widget.relay")

# How long a socket that resumes a call held by another process waits for that process
# (a Redis round trip, normally milliseconds) before it takes that process for gone.
ATTACH_TIMEOUT_SECONDS = 1.5


class RemoteCall:
    def __init__(
        self,
        layer: BaseChannelLayer,
        call: records.CallInfo,
        socket: Browser,
        settings: Settings,
        *,
        take_over: Callable[[], Awaitable[CallPort | None]],
        attach_timeout: float = ATTACH_TIMEOUT_SECONDS,
    ) -> None:
        """``take_over``: what to do when the process holding the call does not answer (it
        is gone): the port of the call taken over here, or None when it showed the socket
        how the call ended."""
        self._layer = layer
        self._take_over = take_over
        self.call_id: uuid.UUID = call.call_id
        self._mode = Mode(call.mode)
        self._socket = socket
        self._settings = settings
        self._attach_timeout = attach_timeout
        self._channel = ""
        self._inbox: ChannelReader | None = None
        self._owner: str | None = None  # the owner's mailbox channel, once it answered
        self._early: deque[messages.Frame | messages.Refused] = deque(maxlen=MAX_EARLY_FRAMES)
        self._reader: asyncio.Task[None] | None = None
        self._dropping = False
        self._lost = False  # the channel layer failed: the socket was sent to resume
        self._dropped = 0  # bytes of agent audio the socket dropped, not yet told

    @property
    def mode(self) -> Mode:
        return self._mode

    async def open(self, grant: tokens.Grant) -> None:
        """Ask the process holding the call (if any) to attach this socket.

        Raises:
            Exception: whatever the channel layer raised (nothing is left running).
        """
        self._channel = await self._layer.new_channel()
        self._inbox = ChannelReader(self._layer, self._channel)
        self._reader = asyncio.create_task(self._read(), name=f"webcall-remote-{self.call_id}")
        try:
            await self._layer.group_send(
                messages.call_group(self.call_id),
                messages.attach(self._channel, grant.origin, grant.resumes),
            )
        except BaseException:
            await self._stop_reading()
            raise

    # from the visitor

    async def take(self, frame: protocol.ClientFrame) -> None:
        await self._to_owner(messages.Frame(frame))

    async def refuse(self, error: protocol.ProtocolError, reason: str | None = None) -> None:
        await self._to_owner(messages.Refused(error, reason))

    def audio_dropped(self, size: int) -> str | None:
        # Dropped from inside the socket's send of a BYTES message: told with it
        # (:meth:`_from_owner`); the process holding the call tells the visitor.
        self._dropped += size
        return None

    async def socket_closed(self, code: int | None) -> None:
        """The call lives on where it is held: it waits for the visitor from there."""
        await self._stop_reading()
        message = {"type": messages.DETACH, "browser": self._channel}
        try:
            if self._owner is not None:
                await self._layer.send(self._owner, message)
            else:
                await self._layer.group_send(messages.call_group(self.call_id), message)
        except Exception:
            logger.exception(
                "Call %s: could not tell its process the socket closed.", self.call_id
            )

    async def _stop_reading(self) -> None:
        """Stop the reading task; its receive under way is ended with a message
        (:class:`ChannelReader`)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if self._inbox is not None:
            await self._inbox.stop()

    async def _to_owner(self, message: messages.Frame | messages.Refused) -> bool:
        """False when the message was dropped (the owner does not keep up)."""
        if self._owner is None:
            self._early.append(message)  # until the owner answers
            return True
        return await self._send_to(self._owner, message)

    async def _send_to(self, owner: str, message: messages.VisitorMessage) -> bool:
        if self._lost:
            return False
        try:
            await self._layer.send(owner, messages.visitor_message(self._channel, message))
        except ChannelFull:
            if not self._dropping:
                self._dropping = True
                logger.warning(
                    "Call %s: the process holding it is not reading; frames are dropped.",
                    self.call_id,
                )
            return False
        except Exception as exc:
            await self._layer_lost(exc)
            return False
        self._dropping = False
        return True

    async def _layer_lost(self, exc: Exception) -> None:
        """Redis went away: the call goes on where it is held, and waits for the visitor,
        whom the widget brings back with a resume (4013), here or anywhere; what they
        typed meanwhile, the widget sends again."""
        if self._lost:
            return
        self._lost = True
        logger.warning(
            "Call %s: the resumed socket lost its channel layer (%s); the visitor is sent "
            "to resume.",
            self.call_id,
            type(exc).__name__,
        )
        await self._socket.close(protocol.CloseCode.MOVING)

    # from the process that holds the call

    async def _read(self) -> None:
        assert self._inbox is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._attach_timeout
        try:
            while True:
                waiting = None if self._owner is not None else max(0, deadline - loop.time())
                message = await self._inbox.receive(waiting)
                if message is None:  # the owner did not answer the attach in time
                    await self._inbox.stop()
                    await self._owner_silent()
                    return
                if not await self._from_owner(message):
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._layer_lost(exc)

    async def _from_owner(self, message: dict[str, Any]) -> bool:
        """Handle one message; False when there will be no more."""
        kind = message.get("type")
        if kind == messages.BYTES:
            await self._socket.send_bytes(message["bytes"])
            if self._dropped and self._owner is not None:
                dropped, self._dropped = self._dropped, 0
                if not await self._send_to(self._owner, messages.Dropped(dropped)):
                    self._dropped += dropped  # told with the next frame
        elif kind == messages.TEXT:
            await self._socket.send_text(message["text"])
        elif kind == messages.ATTACHED:
            owner = str(message["owner"])
            while self._early:  # in order, with what the visitor sends meanwhile
                await self._send_to(owner, self._early.popleft())
            self._owner = owner
        elif kind == messages.CLOSE:
            await self._socket.close(int(message["code"]))
            return False
        elif kind == messages.OVER:  # it ended before it could be attached to this socket
            call = await records.aload_call(self.call_id, self._settings)
            await over.show_over(self._socket, self.call_id, call.end_reason if call else "")
            return False
        return True

    async def _owner_silent(self) -> None:
        port = await self._take_over()
        while port is not None and self._early:  # what the visitor said meanwhile
            early = self._early.popleft()
            if isinstance(early, messages.Frame):
                await port.take(early.frame)
            else:
                await port.refuse(early.error, early.reason)
