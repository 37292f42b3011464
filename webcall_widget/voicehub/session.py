"""The live socket to VoiceHub for one call.

:func:`open_session` reaches the call's socket as the profile says (see
:mod:`~webcall_widget.voicehub.address`), finishes the transport's handshake and returns
an :class:`UpstreamSession`. One task reads (:meth:`UpstreamSession.recv`); any task may
send. Sends are serialised, so the frames of a binary Socket.IO event are never split by
another frame.

The session hands the relay only events it can act on, normalised by the profile:

* the protocol object (``UPSTREAM.PROTOCOL``) decodes every event;
* unknown events and unreadable payloads are logged (rate-limited, shape only) and
  counted, never passed on; upstream errors are passed on at most once every few
  seconds (:mod:`~webcall_widget.voicehub.monitor`);
* a join confirmed by a Socket.IO acknowledgement, or not at all, still yields
  :class:`~webcall_widget.voicehub.events.Joined`;
* when calls end by disconnecting (``CALL_END``), VoiceHub closing the socket of a joined
  call yields :class:`~webcall_widget.voicehub.events.CallEnded` ("upstream-ended").
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from webcall_widget.voicehub import socketio
from webcall_widget.voicehub.address import (
    ConnectContext,
    SocketAddress,
    addresses,
    socket_url,
)
from webcall_widget.voicehub.connection import UpstreamConnection
from webcall_widget.voicehub.errors import (
    UpstreamClosed,
    UpstreamConnectFailed,
    UpstreamHungUp,
    UpstreamJoinTimeout,
    UpstreamRejoinRefused,
)
from webcall_widget.voicehub.events import (
    Audio,
    BadPayload,
    CallEnded,
    EventNames,
    Joined,
    Transport,
    Unknown,
    UpstreamError,
    UpstreamEvent,
)
from webcall_widget.voicehub.frames import client_frames
from webcall_widget.voicehub.monitor import Monitor, UpstreamReport
from webcall_widget.voicehub.profile import (
    CallEnd,
    JoinConfirmation,
    SocketPathAs,
    UpstreamProfile,
    with_overrides,
)
from webcall_widget.voicehub.protocol import UpstreamProtocol, load_protocol

__all__ = ["UpstreamSession", "open_session", "socket_url"]

logger = logging.getLogger(__name__)

# Agent audio is 20 ms frames of a few hundred bytes; text events are small. Anything
# near this size is not something we can use.
MAX_UPSTREAM_FRAME = 1 << 20
# The visitor's audio waiting to be written to VoiceHub beyond this is dropped.
MAX_AUDIO_BACKLOG_SECONDS = 1.0
# A send waits for the socket's buffer to drain past this (text events only, in practice).
WRITE_BUFFER_LIMIT = 1 << 18
# What a session reports for a call VoiceHub ended by disconnecting (CALL_END).
ENDED_BY_DISCONNECT = "upstream-ended"
# WebSocket close codes that mean the peer closed on purpose.
_NORMAL_CLOSES = (1000, 1001)
# With JOIN_CONFIRMATION "none", how long a join of a call under way waits for VoiceHub
# to refuse it (an error, an end, a close) before it is taken as accepted.
REJOIN_SETTLE_SECONDS = 1.0

# Called with ("in" | "out" | "ack" | "closed", event name, payload) for everything that
# crosses the socket, before any decoding: what the probe records.
Tap = Callable[[str, str, Any], None]


class UpstreamSession(abc.ABC):
    """One open socket to VoiceHub.

    ``recv`` must be called from one task at a time. Cancelling ``recv`` is safe: no
    event is lost halfway. ``close`` may be called at any time, more than once.
    """

    def __init__(
        self,
        ws: UpstreamConnection,
        profile: UpstreamProfile,
        *,
        protocol: UpstreamProtocol | None = None,
        context: ConnectContext | None = None,
        report: UpstreamReport | None = None,
        tap: Tap | None = None,
        log: bool = True,
    ) -> None:
        self._ws = ws
        self.profile = profile
        self.protocol = protocol or load_protocol(profile)
        self.context = context or ConnectContext(call_id="")
        self.report = report if report is not None else UpstreamReport()
        self.tap = tap
        # The probe asks for an acknowledgement of the join to learn whether there is one.
        self.ask_join_ack = profile.join_confirmation is JoinConfirmation.ACK
        self._send_lock = asyncio.Lock()
        self._slow_senders = 0
        self._audio_backlog = int(MAX_AUDIO_BACKLOG_SECONDS * profile.audio_in.rate * 2)
        self._loop = asyncio.get_running_loop()
        secrets = (self.context.api_key.reveal(),) if self.context.api_key else ()
        self._monitor = Monitor(
            self.report,
            label=self.context.call_id or "?",
            output_rate=profile.audio_out.rate,
            clock=self._loop.time,
            redact=self.context.redact,
            secrets=secrets,
            log=log,
        )
        self._pending: list[UpstreamEvent] = []  # rare (a join's, an ack's): no deque
        self._call_id = self.context.call_id
        self._channels: tuple[str, ...] = ()
        self._acks: dict[int, str] = {}
        self._ack_ids = itertools.count()
        self._joined = False
        self._ended = False
        self._gone: UpstreamClosed | None = None  # how it ended, for every later recv()
        self._ends_by_disconnect = profile.call_end is not CallEnd.EVENT

    @property
    def names(self) -> EventNames:
        return self.profile.events

    # receiving

    async def recv(self) -> UpstreamEvent:
        """The next event the relay can act on.

        Raises:
            UpstreamClosed: the socket is gone or silent (``UpstreamHungUp`` when
                VoiceHub closed it, unless that ends the call normally).
        """
        while True:
            if self._pending:
                return self._pending.pop(0)
            if self._gone is not None:
                raise self._gone
            try:
                received = await self._receive()
            except UpstreamHungUp as exc:
                if self.tap is not None:
                    self.tap("closed", str(exc), {"by_upstream": True})
                self._gone = exc
                if self._ends_by_disconnect and self._joined and not self._ended:
                    self._ended = True
                    return CallEnded(ENDED_BY_DISCONNECT)
                raise
            except UpstreamClosed as exc:
                if self.tap is not None:
                    self.tap("closed", str(exc), {"by_upstream": False})
                raise
            if received is None:
                continue  # something for the queue (an acknowledgement)
            event = self._accept(*received)
            if event is not None:
                return event

    def _accept(self, name: str, data: Any) -> UpstreamEvent | None:
        if self.tap is not None:
            self.tap("in", name, data)
        event = self.protocol.decode(name, data)
        if isinstance(event, Audio):
            self._monitor.audio(len(event.pcm))
            return event
        return self._vet(event)

    def _vet(self, event: UpstreamEvent) -> UpstreamEvent | None:
        if isinstance(event, Unknown):
            self._monitor.unknown(event)
            return None
        if isinstance(event, BadPayload):
            self._monitor.bad(event)
            return None
        if isinstance(event, UpstreamError):
            event = UpstreamError(self.context.redact(event.message))
            if self._joined and not self._monitor.error_allowed(event):
                return None
        elif isinstance(event, Joined):
            self._joined = True
        elif isinstance(event, CallEnded):
            self._ended = True
        return event

    def _acknowledged(self, ack_id: int, data: Any) -> UpstreamEvent | None:
        purpose = self._acks.pop(ack_id, None)
        if purpose is None:
            return None
        if self.tap is not None:
            self.tap("ack", purpose, data)
        if purpose != self.names.join:
            return None
        if self.profile.join_confirmation is not JoinConfirmation.ACK:
            return None
        return self._vet(self.protocol.join_acknowledged(data, self._channels))

    @abc.abstractmethod
    async def _receive(self) -> tuple[str, Any] | None:
        """The next event's name and payload, handling the transport's own frames; None
        when what arrived was put on the queue of events instead."""

    # sending

    async def emit(self, name: str, data: Any, *, ack_id: int | None = None) -> None:
        if self.tap is not None:
            self.tap("out", name, data)
        await self._emit(name, data, ack_id)

    @abc.abstractmethod
    async def _emit(self, name: str, data: Any, ack_id: int | None) -> None: ...

    async def join(self, call_id: str, channels: Sequence[str]) -> None:
        self._call_id, self._channels = call_id, tuple(channels)
        outgoing = self.protocol.join(call_id, channels)
        ack_id = None
        if self.ask_join_ack and self.profile.transport is Transport.SOCKETIO:
            ack_id = next(self._ack_ids)
            self._acks[ack_id] = outgoing.name
        await self.emit(outgoing.name, outgoing.data, ack_id=ack_id)
        if self.profile.join_confirmation is JoinConfirmation.NONE:
            self._joined = True
            self._pending.append(Joined(tuple(channels)))

    async def join_confirmed(
        self,
        call_id: str,
        channels: Sequence[str],
        *,
        seconds: float,
        under_way: bool = False,
    ) -> list[UpstreamEvent]:
        """Join and wait until VoiceHub confirms; the events that came before the
        confirmation, in order, for the caller to act on next.

        ``under_way``: the call was joined before from another socket, and moves to this
        one (after a crash or a deploy). Then VoiceHub answering the join with an error,
        ending the call or closing the socket is a refused rejoin, told apart from other
        failures by its type. With JOIN_CONFIRMATION "none", where nothing confirms a
        join, such a join waits up to ``REJOIN_SETTLE_SECONDS`` (within ``seconds``) for
        a refusal before it is taken as accepted.

        ``seconds`` bounds the wait (not a ``timeout`` around the call: running out is
        :class:`UpstreamJoinTimeout`, which the caller tells from the others). The
        events are read here: call it before any task reads (:meth:`recv`).

        Raises:
            UpstreamRejoinRefused: ``under_way``, and VoiceHub refused the join.
            UpstreamConnectFailed: not ``under_way``, and VoiceHub answered the join with
                an error.
            UpstreamJoinTimeout: nothing confirmed the join within ``seconds``.
            UpstreamClosed: the socket failed before the join was confirmed.
        """
        await self.join(call_id, channels)
        held: list[UpstreamEvent] = []
        settling = False
        deadline = self._loop.time() + seconds
        try:
            async with asyncio.timeout_at(deadline) as window:
                while True:
                    try:
                        event = await self.recv()
                    except UpstreamHungUp as exc:
                        if under_way:
                            raise self._rejoin_refused(
                                call_id, f"closed the socket ({exc})"
                            ) from exc
                        raise
                    if isinstance(event, Joined):
                        if not under_way or self.profile.join_confirmation is not (
                            JoinConfirmation.NONE
                        ):
                            return held
                        settling = True
                        window.reschedule(min(deadline, self._loop.time() + REJOIN_SETTLE_SECONDS))
                    elif isinstance(event, UpstreamError):
                        if under_way:
                            raise self._rejoin_refused(call_id, f"answered {event.message!r}")
                        raise UpstreamConnectFailed(
                            f"upstream refused {self.names.join}: {event.message}"
                        )
                    elif isinstance(event, CallEnded) and under_way:
                        raise self._rejoin_refused(call_id, f"ended the call ({event.reason})")
                    else:
                        held.append(event)
        except TimeoutError as exc:
            if settling:
                return held
            raise UpstreamJoinTimeout(
                f"{self.names.join} not confirmed within {seconds:g}s"
                + (" (a call under way, joined from a new socket)" if under_way else "")
            ) from exc

    def _rejoin_refused(self, call_id: str, what: str) -> UpstreamRejoinRefused:
        return UpstreamRejoinRefused(
            f"VoiceHub would not let a new socket join call {call_id}, under way: it "
            f"{what}. The call cannot move to this socket; if no call can, set "
            "UPSTREAM.REJOIN to 'never'.",
            answer=what,
        )

    async def leave(self, call_id: str, channels: Sequence[str]) -> None:
        outgoing = self.protocol.leave(call_id, channels)
        await self.emit(outgoing.name, outgoing.data)

    async def send_text(self, call_id: str, text: str) -> None:
        outgoing = self.protocol.text(call_id, text)
        await self.emit(outgoing.name, outgoing.data)

    async def send_audio(self, pcm: bytes) -> bool:
        """20 ms of the visitor's audio (the hot path: no tap, no logging). False when it
        was dropped: VoiceHub reads slower than the visitor speaks, and more than
        ``MAX_AUDIO_BACKLOG_SECONDS`` of audio waits in the socket's buffer already. Audio
        never waits for the buffer to drain, so the visitor's frames keep being read."""
        if self._ws.transport.get_write_buffer_size() > self._audio_backlog:
            return False
        outgoing = self.protocol.audio(self._call_id, pcm)
        await self._emit(outgoing.name, outgoing.data, None)
        return True

    async def close(self) -> None:
        await self._ws.close()

    async def abort(self) -> None:
        """Drop the connection without a closing handshake, for a peer that stopped
        answering or broke the protocol: a graceful close would wait for it in vain."""
        self._ws.transport.abort()
        await self._ws.wait_closed()

    async def _send(self, *frames: str | bytes) -> None:
        ws = self._ws
        if (
            not self._slow_senders
            and ws.protocol.state is State.OPEN
            and ws.transport.get_write_buffer_size() <= WRITE_BUFFER_LIMIT
            and not ws.transport.is_closing()
        ):
            # The common case, every audio frame: nothing to wait for, one write.
            ws.transport.write(client_frames(frames))
            return
        # Counted from before the lock is asked for until it is released, so that no frame
        # written directly overtakes one waiting for the lock (a released lock reads as
        # free before its next waiter has run).
        self._slow_senders += 1
        try:
            async with self._send_lock:
                for frame in frames:
                    await self._ws.send(frame)
        except ConnectionClosed as exc:
            raise UpstreamClosed(f"upstream socket closed ({_describe(exc)})") from exc
        finally:
            self._slow_senders -= 1

    def _closed(self, exc: ConnectionClosed) -> UpstreamClosed:
        frame = exc.rcvd
        if frame is not None and frame.code in _NORMAL_CLOSES:
            return UpstreamHungUp(f"upstream closed the socket ({_describe(exc)})")
        return UpstreamClosed(f"upstream socket closed ({_describe(exc)})")


class SocketIOSession(UpstreamSession):
    """Socket.IO: the upstream is gone when it has said nothing, heartbeats included, for
    a ping interval plus a ping timeout. That is measured from the last frame received, so
    a reader that is cancelled and calls again (or a visitor who keeps typing) does not
    move the deadline. One timer watches it, woken once per silence window rather than a
    timeout around every read (two per audio chunk)."""

    def __init__(
        self,
        ws: UpstreamConnection,
        profile: UpstreamProfile,
        opened: socketio.Open,
        *,
        namespace: str = "/",
        decoder: socketio.Decoder | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(ws, profile, **kwargs)
        self.namespace = namespace
        self._decoder = decoder or socketio.Decoder(namespace)
        self._silence_limit = opened.ping_interval + opened.ping_timeout
        self._audio_headers: dict[str, str] = {}
        self.last_heard = self._loop.time()
        self._silent = False
        self._watch = self._loop.call_at(self.last_heard + self._silence_limit, self._check)

    def _check(self) -> None:
        """The silence timer: drop a socket that stopped talking, or look again later."""
        deadline = self.last_heard + self._silence_limit
        if self._loop.time() < deadline:
            self._watch = self._loop.call_at(deadline, self._check)
            return
        self._silent = True
        self._ws.transport.abort()  # the pending read ends with ConnectionClosed

    async def _receive(self) -> tuple[str, Any] | None:
        while True:
            packet = await self._next_packet()
            if isinstance(packet, socketio.Event):
                return packet.name, packet.data
            if isinstance(packet, socketio.Ack):
                event = self._acknowledged(packet.id, packet.data)
                if event is not None:
                    self._pending.append(event)
                    return None
            elif isinstance(packet, socketio.Ping):
                await self._send(socketio.PONG + packet.payload)
            elif isinstance(packet, socketio.Closed):
                raise UpstreamHungUp(packet.reason)
            elif isinstance(packet, socketio.ConnectError):
                raise UpstreamClosed(
                    f"upstream refused the socket: {self.context.redact(packet.message)}"
                )

    async def _next_packet(self) -> socketio.Packet | None:
        try:
            frame = await self._ws.next_frame()
            self.last_heard = self._loop.time()
        except ConnectionClosed as exc:
            self._watch.cancel()
            if self._silent:
                raise UpstreamClosed(
                    f"upstream sent nothing for {self._silence_limit:g}s (missed heartbeats)"
                ) from exc
            raise self._closed(exc) from exc
        try:
            if isinstance(frame, str):
                return self._decoder.receive_text(frame)
            return self._decoder.receive_binary(frame)
        except socketio.ProtocolViolation as exc:
            raise UpstreamClosed(f"upstream broke the Socket.IO protocol: {exc}") from exc

    async def _emit(self, name: str, data: Any, ack_id: int | None) -> None:
        if isinstance(data, bytes) and ack_id is None:
            header = self._audio_headers.get(name)
            if header is None:
                header = socketio.binary_event_header(name, namespace=self.namespace)
                self._audio_headers[name] = header
            await self._send(header, data)
            return
        await self._send(*socketio.encode(name, data, namespace=self.namespace, ack_id=ack_id))

    async def close(self) -> None:
        self._watch.cancel()
        with contextlib.suppress(UpstreamClosed):
            await self._send(socketio.disconnect_packet(self.namespace))
        await super().close()

    async def abort(self) -> None:
        self._watch.cancel()
        await super().abort()

    @classmethod
    async def handshake(
        cls,
        ws: UpstreamConnection,
        profile: UpstreamProfile,
        address: SocketAddress,
        **kwargs: Any,
    ) -> SocketIOSession:
        decoder = socketio.Decoder(address.namespace)
        first = await ws.next_frame()
        opened = decoder.receive_text(first) if isinstance(first, str) else None
        if not isinstance(opened, socketio.Open):
            raise UpstreamConnectFailed("upstream did not open an Engine.IO session")
        await ws.send(socketio.connect_packet(address.namespace, address.auth))
        while True:
            frame = await ws.next_frame()
            if not isinstance(frame, str):
                raise UpstreamConnectFailed("upstream did not confirm the Socket.IO connection")
            packet = decoder.receive_text(frame)
            if packet is None:
                continue  # another namespace's packet
            if isinstance(packet, socketio.Ping):
                await ws.send(socketio.PONG + packet.payload)
                continue
            if isinstance(packet, socketio.Connected):
                return cls(
                    ws, profile, opened, namespace=address.namespace, decoder=decoder, **kwargs
                )
            if isinstance(packet, socketio.ConnectError):
                raise _Refused(packet.message)
            raise UpstreamConnectFailed("upstream did not confirm the Socket.IO connection")


class WebSocketSession(UpstreamSession):
    """Plain WebSocket: ``{"event": name, "data": ...}`` text frames; binary frames are
    agent audio (down) and, with ``AUDIO_IN_FORMAT`` "binary", the visitor's (up)."""

    async def _receive(self) -> tuple[str, Any] | None:
        while True:
            try:
                frame = await self._ws.next_frame()
            except ConnectionClosed as exc:
                raise self._closed(exc) from exc
            if isinstance(frame, bytes):
                return self.profile.audio_out.event, frame
            try:
                message = json.loads(frame)
            except ValueError:
                self._monitor.bad(BadPayload("<frame>", "a text frame that is not JSON", frame))
                continue
            if isinstance(message, dict) and isinstance(message.get("event"), str):
                return message["event"], message.get("data")
            self._monitor.bad(BadPayload("<frame>", "a JSON frame without an event", message))

    async def _emit(self, name: str, data: Any, ack_id: int | None) -> None:
        if isinstance(data, bytes):
            await self._send(data)
            return
        await self._send(json.dumps({"event": name, "data": data}, separators=(",", ":")))


class _Refused(Exception):
    """The Socket.IO CONNECT was refused (with the server's message)."""


async def open_session(
    *,
    base_url: str,
    socket_path: str,
    connect_timeout: float,
    profile: UpstreamProfile | None = None,
    context: ConnectContext | None = None,
    report: UpstreamReport | None = None,
    transport: Transport | None = None,
    names: EventNames | None = None,
    tap: Tap | None = None,
    log: bool = True,
) -> UpstreamSession:
    """Connect to a call's socket as ``profile`` says and finish the handshake.

    ``transport`` and ``names`` override the profile's (for callers from before
    profiles). With ``SOCKET_PATH_AS`` "auto", a socket that cannot be opened as a path
    is tried as a namespace, within the same ``connect_timeout``.

    Raises:
        UpstreamConnectFailed: refused, unreachable, not the expected protocol, or
            slower than ``connect_timeout`` seconds in total; the message says what to
            try next.
    """
    profile = with_overrides(profile or UpstreamProfile(), transport, names)
    context = context or ConnectContext(call_id="")
    kwargs: dict[str, Any] = {
        "protocol": load_protocol(profile),
        "context": context,
        "report": report,
        "tap": tap,
        "log": log,
    }
    failures: list[str] = []
    try:
        async with asyncio.timeout(connect_timeout):
            for address in addresses(base_url, socket_path, profile, context):
                try:
                    session = await _open(address, profile, kwargs)
                except UpstreamConnectFailed as exc:
                    failures.append(str(exc))
                    continue
                if profile.socket_path_as is SocketPathAs.AUTO:
                    logger.info(
                        "VoiceHub call %s: webCallSocketPath worked as a Socket.IO %s; set "
                        "UPSTREAM.SOCKET_PATH_AS to %r to skip the other try.",
                        context.call_id,
                        address.read_as.value,
                        address.read_as.value,
                    )
                return session
    except TimeoutError as exc:
        failures.append(f"the upstream socket did not open within {connect_timeout:g}s")
        raise UpstreamConnectFailed(
            _failure_message(failures, profile), tried=tuple(failures)
        ) from exc
    raise UpstreamConnectFailed(_failure_message(failures, profile), tried=tuple(failures))


async def _open(
    address: SocketAddress, profile: UpstreamProfile, kwargs: dict[str, Any]
) -> UpstreamSession:
    context: ConnectContext = kwargs["context"]
    ws: UpstreamConnection | None = None
    try:
        connection = await connect(
            address.url,
            additional_headers=dict(address.headers) or None,
            open_timeout=None,
            close_timeout=2,
            max_size=MAX_UPSTREAM_FRAME,
            compression=None,
            # Audio is dropped past MAX_AUDIO_BACKLOG_SECONDS waiting in the buffer, well
            # before a send would wait for it to drain.
            write_limit=WRITE_BUFFER_LIMIT,
            # Engine.IO has its own heartbeat; a plain socket uses WebSocket pings.
            ping_interval=None if profile.transport is Transport.SOCKETIO else 20,
            user_agent_header="django-webcall-widget",
            create_connection=UpstreamConnection,
        )
        assert isinstance(connection, UpstreamConnection)
        ws = connection
        ws.forget_handshake()
        if profile.transport is Transport.SOCKETIO:
            return await SocketIOSession.handshake(ws, profile, address, **kwargs)
        return WebSocketSession(ws, profile, **kwargs)
    except _Refused as exc:
        await _abandon(ws)
        raise UpstreamConnectFailed(
            f"upstream refused the socket at {address.shown} "
            f"(Socket.IO CONNECT answered: {context.redact(str(exc))})"
            + ("" if profile.connect.auth is not None else "; it may want CONNECT_AUTH")
        ) from None
    except (
        OSError,
        InvalidHandshake,
        InvalidURI,
        ConnectionClosed,
        socketio.ProtocolViolation,
    ) as exc:
        await _abandon(ws)
        raise UpstreamConnectFailed(
            f"could not open the upstream socket at {address.shown} as a Socket.IO "
            f"{address.read_as.value}: {type(exc).__name__}: {context.redact(str(exc))}"
            if profile.transport is Transport.SOCKETIO
            else f"could not open the upstream socket at {address.shown}: "
            f"{type(exc).__name__}: {context.redact(str(exc))}"
        ) from exc
    except BaseException:
        await _abandon(ws)
        raise


def _failure_message(failures: list[str], profile: UpstreamProfile) -> str:
    tried = "; then ".join(failures) if failures else "no address to try"
    hints = []
    if profile.transport is Transport.SOCKETIO:
        if profile.socket_path_as is SocketPathAs.PATH:
            hints.append(
                "if webCallSocketPath is a Socket.IO namespace, set UPSTREAM.SOCKET_PATH_AS "
                "to 'namespace' (or 'auto')"
            )
        if any("refused the socket" in failure for failure in failures):
            hints.append(
                "if VoiceHub wants credentials on the connection, set UPSTREAM.CONNECT_AUTH, "
                "CONNECT_QUERY or CONNECT_HEADERS"
            )
        hints.append("if it is a plain WebSocket, set UPSTREAM.TRANSPORT to 'websocket'")
    hints.append("`manage.py webcall_probe <agent>` tries these for you")
    return f"{tried}. Next: " + "; ".join(hints) + "."


async def _abandon(ws: UpstreamConnection | None) -> None:
    if ws is not None:
        await ws.close()


def _describe(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame"
    return f"code {frame.code}" + (f", {frame.reason}" if frame.reason else "")
