"""Opening a call's socket to VoiceHub: :func:`open_session`.

It reaches the call's socket as the profile says (see
:mod:`~webcall_widget.voicehub.address`: a path or a Socket.IO namespace, with the
credentials the profile names), finishes the transport's handshake and returns an
:class:`~webcall_widget.voicehub.session.UpstreamSession`. A socket that cannot be opened
raises :class:`~webcall_widget.voicehub.errors.UpstreamConnectFailed` with what was tried
and what to set next.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from webcall_widget.voicehub import socketio
from webcall_widget.voicehub.address import ConnectContext, SocketAddress, addresses
from webcall_widget.voicehub.connection import UpstreamConnection
from webcall_widget.voicehub.errors import UpstreamConnectFailed
from webcall_widget.voicehub.events import EventNames, Transport
from webcall_widget.voicehub.monitor import UpstreamReport
from webcall_widget.voicehub.profile import SocketPathAs, UpstreamProfile, with_overrides
from webcall_widget.voicehub.protocol import load_protocol
from webcall_widget.voicehub.session import WRITE_BUFFER_LIMIT, Tap, UpstreamSession
from webcall_widget.voicehub.transports import ConnectRefused, SocketIOSession, WebSocketSession

__all__ = ["open_session"]

logger = logging.getLogger(__name__)

# Agent audio is 20 ms frames of a few hundred bytes; text events are small. Anything
# near this size is not something we can use.
MAX_UPSTREAM_FRAME = 1 << 20


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
    except ConnectRefused as exc:
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
