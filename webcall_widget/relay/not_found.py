"""The websocket answer for a path no route serves: accepted, told, closed with 4404.

Without it, Channels' ``URLRouter`` raises for an unknown path and the ASGI server
answers the handshake with an HTTP 500 (and logs a traceback); a browser sees only 1006.
A plain ASGI application rather than a Channels consumer: it needs no channel layer and
no database, so an unknown path costs nothing but the handshake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from webcall_widget.relay.protocol import CloseCode, error_frame
from webcall_widget.strings import visitor_message


async def not_found(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "websocket":
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client left before the handshake finished
    await send({"type": "websocket.accept"})
    told = error_frame("unknown_call", visitor_message("unknown_call"))
    await send({"type": "websocket.send", "text": told})
    await send({"type": "websocket.close", "code": int(CloseCode.UNKNOWN_CALL)})
