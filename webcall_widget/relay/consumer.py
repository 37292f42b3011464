"""The Channels consumer at ``<SOCKET_PATH><token>/``: a thin adapter around the bridge.

It accepts first and checks afterwards, so that the browser receives our 44xx close
codes (a close before accept reaches the browser as 1006): token (4401 invalid or
expired, 4409 already used), call (4404), agent (4503 disabled), origin (4403), the
agent's *who may call* (4406, see :mod:`webcall_widget.access`). Then it feeds parsed
frames, within the frame budget (4429 beyond), to the call.

The token is either a connect token (a new call: the consumer starts its
:class:`~webcall_widget.relay.bridge.Bridge`, with a mailbox on the channel layer so that
"end this call" and resumes reach it from any process) or a resume token (a visitor coming
back to a live call). A resumed call is attached to this socket when this process holds
it; when another process does, this consumer forwards frames both ways through the
channel layer (:mod:`~webcall_widget.relay.control`). A call that is over is shown as it
ended: its transcript, then ``ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections import deque
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull, StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.sessions import InstanceSessionWrapper

from webcall_widget import access, origins
from webcall_widget.conf import get_settings
from webcall_widget.models import Access, CallStatus
from webcall_widget.relay import control, lifecycle, protocol, records, tokens
from webcall_widget.relay.bridge import MAX_EARLY_FRAMES, Bridge, transcript_entries
from webcall_widget.relay.outbox import Outbox
from webcall_widget.relay.protocol import CloseCode, ProtocolError
from webcall_widget.relay.throttle import FrameBudget
from webcall_widget.strings import visitor_message
from webcall_widget.voicehub.events import Mode

logger = logging.getLogger("webcall_widget.relay")

MESSAGE_TOO_BIG = 1009  # RFC 6455: a frame over the ASGI server's own limit
# Agent audio waiting for a slow browser beyond this is dropped, oldest first.
MAX_QUEUED_AUDIO_SECONDS = 1.0
# How long a close waits for the frames queued before it (the end, its last words).
CLOSE_FLUSH_SECONDS = 2.0

aclaim = database_sync_to_async(tokens.claim)
aclaim_resume = database_sync_to_async(tokens.claim_resume)

# How long a socket that resumes a call held by another process waits for that process.
ATTACH_TIMEOUT_SECONDS = 5.0
# Frames sent on the channel layer without a thread hop first (they never use the ORM).
_NO_ORM = frozenset({"websocket.receive", control.TEXT, control.BYTES})

Refusal = tuple[CloseCode, str]  # the close code, and the error code told first

_BUSY = records.Outcome(
    CallStatus.ENDED,
    "relay-busy",
    "agent_busy",
    "this process relayed as many voice calls as LIMITS.VOICE_CALLS_PER_PROCESS allows",
)


def _past_session_saving(send: Any) -> Any:
    """The ``send`` that Channels' ``SessionMiddleware`` wraps, when it wraps it only to
    save the session on an HTTP response start: a websocket never sends one, and the
    wrapper's checks on every frame (a lazy session's attributes) cost a busy relay about
    3 % of its time. Any other wrapper is kept."""
    while True:
        wrapper = getattr(send, "__self__", None)
        if not (
            isinstance(wrapper, InstanceSessionWrapper)
            and type(wrapper).send is InstanceSessionWrapper.send
            and set(wrapper.save_message_types) <= {"http.response.start"}
            and callable(getattr(wrapper, "real_send", None))
        ):
            return send
        send = wrapper.real_send


class _Elsewhere:
    """A resumed call whose bridge runs on another process."""

    def __init__(self, call_id: uuid.UUID, mode: Mode) -> None:
        self.call_id = call_id
        self.mode = mode
        self.owner: str | None = None  # the owner's mailbox channel, once it answered
        self.early: deque[dict[str, Any]] = deque(maxlen=MAX_EARLY_FRAMES)
        self.waiter: asyncio.Task[None] | None = None
        self.dropping = False
        self.dropped = 0  # bytes of agent audio this socket dropped, not yet told to the owner


class RelayConsumer(AsyncWebsocketConsumer):
    bridge: Bridge | None = None  # the call, when this process holds it
    elsewhere: _Elsewhere | None = None  # the call, when another process holds it
    budget: FrameBudget | None = None
    _closed = False
    _gone = False
    _reader_failed: Exception | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        audio = get_settings().upstream.audio
        self._outbox = Outbox(
            self._send,
            max_audio_bytes=int(MAX_QUEUED_AUDIO_SECONDS * audio.output_rate * 2),
            on_drop=self._audio_dropped,
            on_failed=self._write_failed,
        )
        try:
            await self._serve(scope, receive, send)
        finally:
            if not self._gone:
                # Cancelled while the socket was open (Daphne stopping): a call this socket
                # holds ends as a server stop; its bridge's task and upstream socket must
                # not outlive the server.
                await self._socket_gone(None)

    async def _serve(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__``, with the browser's messages awaited
        directly. Channels' generic loop waits on both sources with ``asyncio.wait`` and a
        new task per message, a tenth of a busy relay's time; here the channel layer (which
        carries control messages, and the frames of a call held by another process) has a
        reader task of its own. A lock keeps Channels' rule: one message handled at a time.
        """
        self.scope = scope
        self.base_send = _past_session_saving(send)
        self._dispatching = asyncio.Lock()
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        reader: asyncio.Task[None] | None = None
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            reader = asyncio.create_task(self._read_channel_layer(asyncio.current_task()))
        try:
            while True:
                message = await receive()
                async with self._dispatching:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            if self._reader_failed is not None:
                raise self._reader_failed

    async def _read_channel_layer(self, consumer: asyncio.Task[Any] | None) -> None:
        try:
            while True:
                message = await self.channel_receive()
                async with self._dispatching:
                    await self.dispatch(message)
        except Exception as exc:
            # As under Channels' own loop, a failing handler ends the consumer.
            self._reader_failed = exc
            if consumer is not None:
                consumer.cancel()

    # connecting

    async def connect(self) -> None:
        await self.accept()
        self.settings = get_settings()
        token = self.scope["url_route"]["kwargs"].get("token", "")
        if tokens.is_resume_token(token):
            refusal = await self._resume(token)
        else:
            refusal = await self._start(token)
        if refusal is not None:
            code, error = refusal
            await self.send_text(protocol.error_frame(error, visitor_message(error)))
            await self.close(code)
            return
        rate = self.settings.limits.frames_per_second
        self.budget = FrameBudget(rate=rate, burst=2 * rate)

    def _origin(self) -> str:
        headers = dict(self.scope.get("headers", []))
        return headers.get(b"origin", b"").decode("latin-1")

    async def _load(self, call_id: uuid.UUID) -> records.CallInfo | Refusal:
        """The call, if this socket may hold it."""
        call = await records.aload_call(call_id, self.settings)
        if call is None:
            return CloseCode.UNKNOWN_CALL, "unknown_call"
        if not call.agent_active:
            return CloseCode.AGENT_DISABLED, "agent_disabled"
        headers = dict(self.scope.get("headers", []))
        origin = self._origin() or None
        host = headers.get(b"host", b"").decode("latin-1")
        if not origins.is_allowed(origin, host, list(call.agent_origins)):
            logger.warning("Call %s: socket from origin %s refused.", call.call_id, origin)
            return CloseCode.ORIGIN_NOT_ALLOWED, "origin_not_allowed"
        refused = self._access_refused(call)
        return call if refused is None else refused

    async def _start(self, token: str) -> Refusal | None:
        """A new call: start its bridge."""
        try:
            call_id = tokens.read(token, max_age=self.settings.connect_token_max_age)
        except tokens.TokenError as exc:
            logger.debug("A socket with a bad connect token was refused: %s.", exc)
            return CloseCode.BAD_TOKEN, "bad_token"
        call = await self._load(call_id)
        if not isinstance(call, records.CallInfo):
            return call
        if not await aclaim(call_id):
            return CloseCode.TOKEN_USED, "token_used"
        if Mode(call.mode).has_audio and self._at_capacity():
            await database_sync_to_async(records.finish)(call.call_id, _BUSY, records.Counters())
            return CloseCode.RATE_LIMITED, "agent_busy"
        layer = self.channel_layer
        self.bridge = Bridge(
            call,
            self,
            self.settings,
            grant=tokens.Grant(call.call_id, self._origin(), call.resumes),
            mailbox=control.CallMailbox(layer, self.settings) if layer is not None else None,
        )
        self.bridge.start()
        return None

    def _at_capacity(self) -> bool:
        """Whether this process relays as many voice calls as it can without delaying
        their audio (``LIMITS.VOICE_CALLS_PER_PROCESS``)."""
        capacity = self.settings.limits.voice_calls_per_process
        if lifecycle.voice_calls() < capacity:
            return False
        logger.warning(
            "A voice call was refused: this process relays %d already "
            "(LIMITS.VOICE_CALLS_PER_PROCESS); add processes or raise it.",
            capacity,
        )
        return True

    async def _resume(self, token: str) -> Refusal | None:
        """A visitor coming back to a call with its resume token."""
        try:
            grant = tokens.read_resume(token)
        except tokens.TokenError as exc:
            logger.debug("A socket with a bad resume token was refused: %s.", exc)
            return CloseCode.BAD_TOKEN, "bad_token"
        call = await self._load(grant.call_id)
        if not isinstance(call, records.CallInfo):
            return call
        if self._origin() != grant.origin:
            logger.warning(
                "Call %s: a resume from origin %s refused (the call is %s's).",
                call.call_id,
                self._origin() or "(none)",
                grant.origin or "(none)",
            )
            return CloseCode.ORIGIN_NOT_ALLOWED, "origin_not_allowed"
        if call.status in (CallStatus.ENDED, CallStatus.FAILED):
            await self._show_over(call.call_id, call.end_reason)
            return None
        claimed = await aclaim_resume(grant)
        if claimed is None:
            again = await records.aload_call(grant.call_id, self.settings)
            if again is not None and again.status in (CallStatus.ENDED, CallStatus.FAILED):
                await self._show_over(again.call_id, again.end_reason)
                return None
            return CloseCode.TOKEN_USED, "token_used"
        bridge = lifecycle.find(call.call_id)
        if bridge is not None:
            self.bridge = bridge
            if not await bridge.attach(self, claimed):
                outcome = bridge.outcome
                await self._show_over(call.call_id, outcome.reason if outcome else "relay-lost")
            return None
        if self.channel_layer is None:
            await self._show_lost(call.call_id)
            return None
        await self._resume_elsewhere(call, claimed)
        return None

    async def _resume_elsewhere(self, call: records.CallInfo, grant: tokens.Grant) -> None:
        """Ask the process that holds the call (if any) to attach this socket."""
        assert self.channel_layer is not None
        elsewhere = self.elsewhere = _Elsewhere(call.call_id, Mode(call.mode))
        await self.channel_layer.group_send(
            control.call_group(call.call_id),
            {
                "type": control.ATTACH,
                "reply": self.channel_name,
                "origin": grant.origin,
                "resumes": grant.resumes,
            },
        )
        elsewhere.waiter = asyncio.create_task(self._wait_for_owner())

    async def _wait_for_owner(self) -> None:
        await asyncio.sleep(ATTACH_TIMEOUT_SECONDS)
        assert self.channel_layer is not None
        await self.channel_layer.send(self.channel_name, {"type": "webcall.owner_silent"})

    async def _show_over(self, call_id: uuid.UUID, reason: str) -> None:
        """The call is over: what was said, then how it ended."""
        await self._send_transcript(call_id)
        await self.send_text(protocol.error_frame("call_over", visitor_message("call_over")))
        await self.send_text(protocol.ended_frame(reason or "ended"))
        await self.close(CloseCode.NORMAL)

    async def _show_lost(self, call_id: uuid.UUID) -> None:
        """No process holds the call any more (one was killed): it cannot go on."""
        logger.warning("Call %s: no process answered for it; it cannot be resumed.", call_id)
        await self._send_transcript(call_id)
        await self.send_text(
            protocol.error_frame("resume_failed", visitor_message("resume_failed"))
        )
        await self.send_text(protocol.ended_frame("relay-lost"))
        await self.close(CloseCode.NORMAL)

    async def _send_transcript(self, call_id: uuid.UUID) -> None:
        try:
            stored = await records.aload_transcript(call_id)
        except Exception:
            logger.exception("Call %s: could not read its transcript.", call_id)
            stored = []
        await self.send_text(protocol.transcript_frame(transcript_entries(stored)))

    def _access_refused(self, call: records.CallInfo) -> Refusal | None:
        """The create-call view's rule, for the user holding the socket."""
        user = self.scope.get("user")
        if user is None and call.access != Access.ANYONE:
            logger.error(
                "Call %s: the agent needs logged-in users, but the socket has no user; "
                "wrap the websocket routes in channels.auth.AuthMiddlewareStack.",
                call.call_id,
            )
        refused = access.call_refusal(call.access, user, call.user_id)
        return None if refused is None else (CloseCode.ACCESS_DENIED, refused)

    # frames

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections (a thread hop) before every handler
        # (channels 4.2.0 release notes). Frames never touch the ORM here: the bridge's
        # writes go through database_sync_to_async, which does that itself. So audio
        # frames, and those of a call held by another process, skip the hop; every other
        # event keeps it.
        kind = message["type"]
        if kind == "websocket.receive":  # Channels' websocket_receive, a call shorter
            data = message.get("bytes")
            if data is not None:
                await self.receive(bytes_data=data)
            else:
                await self.receive(text_data=message.get("text"))
        elif kind == control.BYTES:
            await self.send_bytes(message["bytes"])
            elsewhere = self.elsewhere
            if elsewhere is not None and elsewhere.dropped and elsewhere.owner is not None:
                dropped, elsewhere.dropped = elsewhere.dropped, 0
                if not await self._to_owner({"dropped": dropped}):
                    elsewhere.dropped += dropped  # told with the next frame
        elif kind == control.TEXT:
            await self.send_text(message["text"])
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closed:
            return
        bridge, elsewhere = self.bridge, self.elsewhere
        if bridge is not None:
            mode = bridge.mode
        elif elsewhere is not None:
            mode = elsewhere.mode
        else:
            return
        if self.budget is not None and not self.budget.take():
            rate_limited = ProtocolError(
                "rate_limited", visitor_message("rate_limited"), CloseCode.RATE_LIMITED
            )
            await self._refuse(rate_limited, reason="frame-rate-limit")
            return
        try:
            frame = protocol.parse(
                text_data,
                bytes_data,
                mode=mode,
                max_text_length=self.settings.max_text_length,
                max_frame_bytes=self.settings.max_frame_bytes,
            )
        except ProtocolError as exc:
            await self._refuse(exc)
            return
        if isinstance(frame, protocol.Ping):
            await self.send_text(protocol.pong_frame(frame.t))
        elif bridge is not None:
            await bridge.take(self, frame)
        else:
            await self._to_owner({"text": text_data, "bytes": bytes_data})

    async def _refuse(self, exc: ProtocolError, *, reason: str | None = None) -> None:
        if self.bridge is not None:
            if self.bridge.holds(self):
                await self.bridge.refuse(self, exc, reason=reason)
            return
        error: dict[str, Any] = {"code": exc.code, "message": exc.message, "reason": reason}
        error["close"] = None if exc.close_code is None else int(exc.close_code)
        await self._to_owner({"error": error})

    async def _to_owner(self, fields: dict[str, Any]) -> bool:
        """A frame of this socket to the process that holds its call; False when it was
        dropped (that process does not keep up)."""
        elsewhere = self.elsewhere
        assert elsewhere is not None and self.channel_layer is not None
        if elsewhere.owner is None:
            elsewhere.early.append(fields)  # until the owner answers
            return True
        message = {"type": control.FRAME, "browser": self.channel_name, **fields}
        try:
            await self.channel_layer.send(elsewhere.owner, message)
        except ChannelFull:
            if not elsewhere.dropping:
                elsewhere.dropping = True
                logger.warning(
                    "Call %s: the process holding it is not reading; frames are dropped.",
                    elsewhere.call_id,
                )
            return False
        elsewhere.dropping = False
        return True

    # messages from the process that holds a resumed call

    async def webcall_attached(self, event: dict[str, Any]) -> None:
        elsewhere = self.elsewhere
        if elsewhere is None or self._closed:
            return
        self._stop_waiting()
        elsewhere.owner = str(event["owner"])
        while elsewhere.early:
            await self._to_owner(elsewhere.early.popleft())

    async def webcall_close(self, event: dict[str, Any]) -> None:
        await self.close(int(event["code"]))

    async def webcall_over(self, event: dict[str, Any]) -> None:
        """The call ended before it could be attached to this socket."""
        if self.elsewhere is None or self._closed:
            return
        call = await records.aload_call(self.elsewhere.call_id, self.settings)
        await self._show_over(self.elsewhere.call_id, call.end_reason if call else "")

    async def webcall_owner_silent(self, event: dict[str, Any]) -> None:
        elsewhere = self.elsewhere
        if elsewhere is None or elsewhere.owner is not None or self._closed:
            return
        call = await records.aload_call(elsewhere.call_id, self.settings)
        if call is not None and call.status in (CallStatus.ENDED, CallStatus.FAILED):
            await self._show_over(call.call_id, call.end_reason)
        else:
            await self._show_lost(elsewhere.call_id)

    def _stop_waiting(self) -> None:
        if self.elsewhere is not None and self.elsewhere.waiter is not None:
            self.elsewhere.waiter.cancel()

    # the socket closes

    async def disconnect(self, code: int) -> None:
        self._closed = True
        await self._socket_gone(code)

    async def _socket_gone(self, code: int | None) -> None:
        """The socket closed (``code``), or this consumer was cancelled (None)."""
        self._gone = True
        await self._outbox.close()
        bridge, elsewhere = self.bridge, self.elsewhere
        if elsewhere is not None:
            self._stop_waiting()
            if elsewhere.waiter is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await elsewhere.waiter
            await self._tell_owner_gone(elsewhere)
        if bridge is None or not bridge.holds(self):
            return
        if code is None:
            await bridge.server_stopping()
        elif code == CloseCode.RESTARTING:
            # Uvicorn stopping: it has closed the browser's socket itself with 1012.
            await bridge.server_stopping(gone=self)
        elif code == MESSAGE_TOO_BIG:
            # The ASGI server closed the socket for a frame over its own size limit
            # (Uvicorn's --ws-max-size): the relay never saw the frame. Not resumable.
            await bridge.end("frame-too-large", close_code=CloseCode.FRAME_TOO_LARGE)
        else:
            await bridge.visitor_gone(self)

    async def _tell_owner_gone(self, elsewhere: _Elsewhere) -> None:
        """The call lives on where it is held: it waits for the visitor from there."""
        layer = self.channel_layer
        assert layer is not None
        message = {"type": control.DETACH, "browser": self.channel_name}
        try:
            if elsewhere.owner is not None:
                await layer.send(elsewhere.owner, message)
            else:
                await layer.group_send(control.call_group(elsewhere.call_id), message)
        except Exception:
            logger.exception(
                "Call %s: could not tell its process the socket closed.", elsewhere.call_id
            )

    # the bridge's view of the browser

    # Frames go through the outbox, which writes them in order from a task of its own: a
    # browser slower than the agent's audio never stalls the call (relay/outbox.py).

    async def send_text(self, frame: str) -> None:
        if not self._closed:
            if frame == protocol.INTERRUPT_FRAME:
                self._outbox.clear_audio()  # the agent was cut off: its queued audio too
            self._outbox.put_text(frame)

    async def send_bytes(self, data: bytes) -> None:
        if not self._closed:
            self._outbox.put_bytes(data)

    def _audio_dropped(self, size: int) -> None:
        bridge, elsewhere = self.bridge, self.elsewhere
        if bridge is not None and bridge.holds(self):
            notice = bridge.browser_dropped_audio(size)
            if notice is not None:
                self._outbox.put_text(notice)
        elif elsewhere is not None:
            # The outbox drops from inside ``put_bytes``; once the frame is queued, dispatch
            # sends the count to the process holding the call, which tells the visitor.
            elsewhere.dropped += size

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
