"""The call as the browser socket holding it sees it, wherever the call runs.

The consumer talks to one :class:`CallPort`: it hands over the frames it parsed, the
frames it refused, the agent audio its socket had to drop, and the socket's end. Two
implementations: :class:`HeldCall`, the call this process holds (its bridge), and
:class:`~.remote.RemoteCall`, a call another process holds, reached through the channel
layer. Each rule about a call lives in the bridge; a port only carries things to it.
"""

from __future__ import annotations

from typing import Protocol

from webcall_widget.relay import protocol
from webcall_widget.relay.bridge import Bridge
from webcall_widget.relay.outcomes import Browser
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.voicehub.events import Mode

MESSAGE_TOO_BIG = 1009  # RFC 6455: a frame over the ASGI server's own limit


class CallPort(Protocol):
    @property
    def mode(self) -> Mode: ...

    async def take(self, frame: protocol.ClientFrame) -> None:
        """A frame the visitor sent (never a ping: the consumer answers those)."""

    async def refuse(self, error: protocol.ProtocolError, reason: str | None = None) -> None:
        """A frame the consumer refused (malformed, too large, too fast)."""

    def audio_dropped(self, size: int) -> str | None:
        """The socket dropped ``size`` bytes of agent audio (its visitor reads slower than
        the agent speaks); a frame to tell the visitor, now and then."""

    async def socket_closed(self, code: int | None) -> None:
        """The socket closed with ``code``, or its consumer was cancelled (None: the
        server is going away)."""


class HeldCall:
    """The call this process holds, for the socket ``socket``."""

    def __init__(self, bridge: Bridge, socket: Browser) -> None:
        self.bridge = bridge
        self.socket = socket

    @property
    def mode(self) -> Mode:
        return self.bridge.mode

    async def take(self, frame: protocol.ClientFrame) -> None:
        await self.bridge.take(self.socket, frame)

    async def refuse(self, error: protocol.ProtocolError, reason: str | None = None) -> None:
        await self.bridge.refuse(self.socket, error, reason=reason)

    def audio_dropped(self, size: int) -> str | None:
        return self.bridge.dropped_audio(self.socket, size)

    async def socket_closed(self, code: int | None) -> None:
        bridge, socket = self.bridge, self.socket
        if not bridge.holds(socket):
            return
        if code is None:
            await bridge.server_stopping()
        elif code == CloseCode.RESTARTING:
            # Uvicorn stopping: it has closed the browser's socket itself with 1012.
            await bridge.server_stopping(gone=socket)
        elif code == MESSAGE_TOO_BIG:
            # The ASGI server closed the socket for a frame over its own size limit
            # (Uvicorn's --ws-max-size): the relay never saw the frame. Not resumable.
            await bridge.end("frame-too-large", close_code=CloseCode.FRAME_TOO_LARGE)
        else:
            await bridge.visitor_gone(socket)
