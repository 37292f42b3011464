"""The live socket to VoiceHub for one call: what the relay reads and sends.

An :class:`UpstreamSession` is opened by
:func:`~webcall_widget.voicehub.opening.open_session`, as one of the two transports in
:mod:`~webcall_widget.voicehub.transports`. One task reads (:meth:`UpstreamSession.recv`);
any task may send. Sends are serialised, so the frames of a binary Socket.IO event are
never split by another frame.

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
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from webcall_widget.voicehub.address import (
    ConnectContext,
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
    UpstreamProfile,
)
from webcall_widget.voicehub.protocol import UpstreamProtocol, load_protocol

__all__ = ["UpstreamSession"]


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


def _describe(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame"
    return f"code {frame.code}" + (f", {frame.reason}" if frame.reason else "")
