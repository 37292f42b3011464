"""The Channels consumer at ``<SOCKET_PATH><token>/``: the ASGI adapter of a call.

It accepts first and checks afterwards, so that the browser receives our 44xx close
codes (a close before accept reaches the browser as 1006): token (4401 invalid or
expired, 4409 already used), then :mod:`.admission` (4404 unknown call, 4503 agent
disabled, 4403 origin, 4406 the agent's *who may call*, 4429 a process at capacity).
Then it parses each frame once, within the frame budget (4429 beyond), and hands it to
the call's :class:`~.port.CallPort`, wherever the call runs.

The token is either a connect token (a new call: the consumer starts its
:class:`~.bridge.Bridge`, with a mailbox on the channel layer so that "end this call" and
resumes reach it from any process) or a resume token (a visitor coming back to a live
call): the call held here is attached to this socket (:class:`~.port.HeldCall`), one held
by another process is reached through the channel layer (:class:`~.remote.RemoteCall`),
and a call that is over is shown as it ended (:mod:`.over`).

What the socket is sent goes through an :class:`~.outbox.Outbox`, written by a task of its
own: a browser slower than the agent's audio never stalls the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from webcall_widget import metrics
from webcall_widget.conf import get_settings
from webcall_widget.models import Agent
from webcall_widget.relay import (
    adoption,
    protocol,
    resume,
    starting,
    stopping,
    tokens,
)
from webcall_widget.relay.admission import Refusal
from webcall_widget.relay.call import OpenSession
from webcall_widget.relay.outbox import Outbox
from webcall_widget.relay.port import CallPort
from webcall_widget.relay.process import RelayProcess, current
from webcall_widget.relay.protocol import CloseCode, ProtocolError
from webcall_widget.relay.records import Recorder
from webcall_widget.relay.remote import ATTACH_TIMEOUT_SECONDS
from webcall_widget.relay.throttle import FrameBudget
from webcall_widget.strings import visitor_message
from webcall_widget.voicehub.opening import open_session

logger = logging.getLogger("webcall_widget.relay")

# Agent audio waiting for a slow browser beyond this is dropped, oldest first.
MAX_QUEUED_AUDIO_SECONDS = 1.0
# How long a close waits for the frames queued before it (the end, its last words).
CLOSE_FLUSH_SECONDS = 2.0


class RelayConsumer(AsyncWebsocketConsumer):
    port: CallPort | None = None
    budget: FrameBudget | None = None
    _starting: starting.Waiting | None = None  # a start socket, until its start
    _closed = False
    _gone = False

    def __init__(
        self,
        *,
        process: RelayProcess = current,
        open_upstream: OpenSession = open_session,
        recorder: Recorder | None = None,
        max_queued_audio_seconds: float = MAX_QUEUED_AUDIO_SECONDS,
        attach_timeout: float = ATTACH_TIMEOUT_SECONDS,
        start_wait: float = starting.WAIT_SECONDS,
    ) -> None:
        """``as_asgi()`` passes these on: the relay process (this one; a test plays
        another), how a call opens its upstream session and where it records itself (a
        bridge's own defaults), how much agent audio may wait for a slow browser, how long
        a resume waits for the call's process."""
        super().__init__()
        self.process = process
        self.open_upstream = open_upstream
        self.recorder = recorder
        self.max_queued_audio_seconds = max_queued_audio_seconds
        self.attach_timeout = attach_timeout
        self.start_wait = start_wait

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__``, with the browser's messages awaited
        directly: Channels' generic loop also waits on the consumer's channel, with
        ``asyncio.wait`` and a new task per message, a tenth of a busy relay's time; this
        consumer has no channel of its own (:class:`~.remote.RemoteCall` makes one when a
        call needs it)."""
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        audio = get_settings().upstream.audio
        self._outbox = Outbox(
            self._send,
            max_audio_bytes=int(self.max_queued_audio_seconds * audio.output_rate * 2),
            on_drop=self._audio_dropped,
            on_failed=self._write_failed,
            on_latency=metrics.frame_latency,
        )
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            if not self._gone:
                # Cancelled while the socket was open (Daphne stopping): a call this socket
                # holds ends as a server stop; its task and upstream socket must not
                # outlive the server.
                await self._socket_gone(None)

    # connecting

    async def connect(self) -> None:
        if self.process.draining and await stopping.deny_resume(self.scope, self.base_send):
            return
        await self.accept()
        self.settings = get_settings()
        relaying = adoption.Relaying(
            self.process, self.settings, self.channel_layer, self.open_upstream, self.recorder
        )
        await self._serve_process(relaying)
        if self.process.draining:
            # Stopping: the widget connects again, and a load balancer sends it elsewhere.
            await self.close(CloseCode.MOVING)
            return
        self.relaying = relaying
        route = self.scope["url_route"]["kwargs"]
        token = route.get("token", "")
        refusal: Refusal | CallPort | Agent | None
        if "slug" in route:
            refusal = await starting.admit(self.scope, route["slug"])
        elif tokens.is_resume_token(token):
            refusal = await resume.resume(
                self,
                self.scope,
                token,
                relaying,
                attach_timeout=self.attach_timeout,
                switch=self._switch,
            )
        else:
            refusal = await starting.connect(self, self.scope, token, relaying)
        if isinstance(refusal, tuple):
            code, error = refusal
            await self.send_text(protocol.error_frame(error, visitor_message(error)))
            await self.close(code)
            return
        if isinstance(refusal, Agent):
            self._starting = starting.Waiting(refusal, self, self.start_wait)
        elif refusal is not None:
            self.port = refusal
        rate = self.settings.limits.frames_per_second
        self.budget = FrameBudget(rate=rate, burst=2 * rate)

    async def _serve_process(self, relaying: adoption.Relaying) -> None:
        """The process's lease and sweeper run, and a stop signal drains it first."""
        process = self.process
        process.sweep_with(lambda _: adoption.sweep(relaying))
        await process.start()
        if stopping.can_install() and process is current:
            stopping.install(process)

    def _switch(self, port: CallPort) -> None:
        """The call this socket resumed was taken over here (its process did not answer)."""
        self.port = port

    # frames

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections (a thread hop) before every handler
        # (channels 4.2.0 release notes). Frames never touch the ORM here: the bridge's
        # writes go through database_sync_to_async, which does that itself. So frames skip
        # the hop; connect and disconnect keep it.
        if message["type"] == "websocket.receive":  # Channels' websocket_receive, shorter
            data = message.get("bytes")
            if data is not None:
                await self.receive(bytes_data=data)
            else:
                await self.receive(text_data=message.get("text"))
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        port = self.port
        if self._closed or (port is None and self._starting is None):
            return
        if self.budget is not None and not self.budget.take():
            rate_limited = ProtocolError(
                "rate_limited", visitor_message("rate_limited"), CloseCode.RATE_LIMITED
            )
            await self._refuse(port, rate_limited, "frame-rate-limit")
            return
        try:
            frame = protocol.parse(
                text_data,
                bytes_data,
                mode=port.mode if port is not None else None,
                max_text_length=self.settings.max_text_length,
                max_frame_bytes=self.settings.max_frame_bytes,
            )
        except ProtocolError as exc:
            await self._refuse(port, exc)
            return
        if isinstance(frame, protocol.Ping):
            await self.send_text(protocol.pong_frame(frame.t))
        elif isinstance(frame, protocol.Start):
            waiting, self._starting = self._starting, None
            if waiting is not None:
                self.port = await waiting.begin(frame.mode, self.scope, self.relaying)
        elif port is not None:
            await port.take(frame)

    async def _refuse(
        self, port: CallPort | None, error: ProtocolError, reason: str | None = None
    ) -> None:
        if port is not None:
            await port.refuse(error, reason)
        else:  # a start socket with no call yet
            await starting.refuse(self, error.code, error.close_code)

    # the socket closes

    async def disconnect(self, code: int) -> None:
        self._closed = True
        await self._socket_gone(code)

    async def _socket_gone(self, code: int | None) -> None:
        """The socket closed (``code``), or this consumer was cancelled (None)."""
        self._gone = True
        if self._starting is not None:
            self._starting.cancel()
        await self._outbox.close()
        if self.port is not None:
            await self.port.socket_closed(code)

    # the call's view of the browser (outcomes.Browser)

    async def send_text(self, frame: str) -> None:
        if not self._closed:
            if frame == protocol.INTERRUPT_FRAME:
                self._outbox.clear_audio()  # the agent was cut off: its queued audio too
            self._outbox.put_text(frame)

    async def send_bytes(self, data: bytes) -> None:
        if not self._closed:
            self._outbox.put_bytes(data)

    def _audio_dropped(self, size: int) -> None:
        notice = self.port.audio_dropped(size) if self.port is not None else None
        if notice is not None:
            self._outbox.put_text(notice)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        close_code = int(code or CloseCode.NORMAL)
        # One deadline for what is queued and the close after it: a socket that takes
        # nothing more is left to the server's keepalive rather than hold the call.
        deadline = asyncio.get_running_loop().time() + CLOSE_FLUSH_SECONDS
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._outbox.flush()
        await self._outbox.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._send_close(close_code)

    async def _send_close(self, code: int) -> None:
        try:
            await self._send({"type": "websocket.close", "code": code})
        except Exception:
            if code != CloseCode.RESTARTING:
                raise
            # Daphne (Autobahn) refuses codes outside 1000 and 3000-4999.
            await self._send({"type": "websocket.close", "code": int(CloseCode.RESTARTING_4XXX)})

    def _write_failed(self, exc: BaseException) -> None:
        """A frame could not be written (Uvicorn refuses sends once it closed the socket
        itself, after a keepalive timeout): nothing more is sent; the server's disconnect
        tells the call the visitor is gone."""
        self._closed = True

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.base_send(message)
        except OSError:
            # ASGI servers raise an OSError subclass once the client is gone.
            self._closed = True
