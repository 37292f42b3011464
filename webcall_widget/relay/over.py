"""What a socket is shown of a call it cannot take up: the conversation, then how it ended."""

from __future__ import annotations

import logging
import uuid

from webcall_widget.relay import protocol, records, transcript
from webcall_widget.relay.outcomes import Browser
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.strings import visitor_message

logger = logging.getLogger("webcall_widget.relay")


async def show_over(socket: Browser, call_id: uuid.UUID, reason: str) -> None:
    """The call is over: what was said, then how it ended."""
    await _send_transcript(socket, call_id)
    await socket.send_text(protocol.error_frame("call_over", visitor_message("call_over")))
    await socket.send_text(protocol.ended_frame(reason or "ended"))
    await socket.close(CloseCode.NORMAL)


async def show_lost(socket: Browser, call_id: uuid.UUID) -> None:
    """No process holds the call any more (one was killed): it cannot go on."""
    logger.warning("Call %s: no process answered for it; it cannot be resumed.", call_id)
    await _send_transcript(socket, call_id)
    await socket.send_text(protocol.error_frame("resume_failed", visitor_message("resume_failed")))
    await socket.send_text(protocol.ended_frame("relay-lost"))
    await socket.close(CloseCode.NORMAL)


async def _send_transcript(socket: Browser, call_id: uuid.UUID) -> None:
    try:
        stored = await records.aload_transcript(call_id)
    except Exception:
        logger.exception("Call %s: could not read its transcript.", call_id)
        stored = []
    await socket.send_text(protocol.transcript_frame(transcript.entries(stored)))
