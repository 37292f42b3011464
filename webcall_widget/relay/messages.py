"""What relay processes say to each other about a call, through the channel layer.

A call belongs to the process that holds its upstream session (its bridge). That process
reads a channel of the call's own (its mailbox, :mod:`.mailbox`), in the call's group
(:func:`call_group`), so that anything can reach the call without knowing where it runs:

* staff ending it (the admin's "End selected calls"): :data:`END`;
* a browser socket on another process that resumes the call (:mod:`.remote`):
  :data:`ATTACH`, then its frames (:class:`Frame`, parsed once, where they arrived),
  refusals (:class:`Refused`), the agent audio its socket dropped (:class:`Dropped`), and
  its end (:data:`DETACH`);
* a process that took the call over (:mod:`.adoption`): :data:`RELEASE`, answered by the
  process that held it with :data:`RELEASED` once it let go.

The mailbox answers such a socket on the socket's own channel: :data:`ATTACHED` (with the
mailbox's channel), then what to send to the browser (:data:`TEXT`, :data:`BYTES`,
:data:`CLOSE`), or :data:`OVER` when the call ended before the socket could take it up.

Each message is a dict with a ``type`` (Channels' convention); this module is the one
place that builds and reads them. A message that does not read as one is dropped with
a log line: it can only come from a process running another version of the app.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from webcall_widget.relay import protocol
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.strings import ERRORS

logger = logging.getLogger("webcall_widget.relay")

# What a refusal whose code this version does not know is told as (from a process of
# another version, during a rolling deploy).
UNKNOWN_REFUSAL = "malformed_frame"

# to a call's mailbox
END = "webcall.end"
ATTACH = "webcall.attach"  # {"reply": channel, "origin": str, "resumes": int}
FRAME = "webcall.frame"  # {"browser": channel, ...}: see VisitorMessage
DETACH = "webcall.detach"  # {"browser": channel}
# Another process took the call over: the one that held it lets go, and says so.
RELEASE = "webcall.release"  # {"owner": the new owner, "reply": its mailbox channel}
RELEASED = "webcall.released"
# to a browser socket on another process
ATTACHED = "webcall.attached"  # {"owner": channel}
OVER = "webcall.over"
TEXT = "webcall.text"  # {"text": str}
BYTES = "webcall.bytes"  # {"bytes": bytes}
CLOSE = "webcall.close"  # {"code": int}


def call_group(call_id: uuid.UUID | str) -> str:
    """The channel-layer group of one call: the mailbox of the process that holds it."""
    hex_id = call_id.hex if isinstance(call_id, uuid.UUID) else uuid.UUID(str(call_id)).hex
    return f"webcall-call-{hex_id}"


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame the visitor sent, as the socket's process parsed it."""

    frame: protocol.ClientFrame


@dataclass(frozen=True, slots=True)
class Refused:
    """A frame the socket's process refused (malformed, too fast): the call decides what
    follows, as for a socket of its own."""

    error: protocol.ProtocolError
    reason: str | None


@dataclass(frozen=True, slots=True)
class Dropped:
    """Agent audio the socket had to drop, its visitor's connection being too slow."""

    size: int


VisitorMessage = Frame | Refused | Dropped


def attach(reply: str, origin: str, resumes: int) -> dict[str, Any]:
    return {"type": ATTACH, "reply": reply, "origin": origin, "resumes": resumes}


def visitor_message(browser: str, message: VisitorMessage) -> dict[str, Any]:
    """The channel-layer message that carries ``message`` from the socket ``browser``."""
    fields: dict[str, Any] = {"type": FRAME, "browser": browser}
    if isinstance(message, Dropped):
        fields["dropped"] = message.size
    elif isinstance(message, Refused):
        error = message.error
        close = None if error.close_code is None else int(error.close_code)
        fields["refused"] = {"code": error.code, "close": close, "reason": message.reason}
    else:
        frame = message.frame
        if isinstance(frame, protocol.AudioIn):
            fields["audio"] = frame.pcm
        elif isinstance(frame, protocol.Text):
            fields["text"] = {"text": frame.text, "id": frame.id}
        elif isinstance(frame, protocol.End):
            fields["end"] = True
        else:
            raise TypeError(f"{type(frame).__name__} frames are answered where they arrive")
    return fields


def read_visitor_message(fields: dict[str, Any]) -> VisitorMessage | None:
    """What :func:`visitor_message` sent; None (and a log line) for anything else."""
    try:
        if "audio" in fields:
            return Frame(protocol.AudioIn(bytes(fields["audio"])))
        if "text" in fields:
            text = fields["text"]
            message_id = text["id"]
            return Frame(
                protocol.Text(str(text["text"]), None if message_id is None else str(message_id))
            )
        if fields.get("end") is True:
            return Frame(protocol.End())
        if "dropped" in fields:
            size = fields["dropped"]
            if isinstance(size, int) and size > 0:
                return Dropped(size)
        elif "refused" in fields:
            refused = fields["refused"]
            close = refused["close"]
            code = str(refused["code"])
            if code not in ERRORS:  # a process of another version names it
                logger.warning("A refusal from another process has an unknown code: %r.", code)
                code = UNKNOWN_REFUSAL
            error = protocol.ProtocolError(code, "", None if close is None else CloseCode(close))
            reason = refused["reason"]
            return Refused(error, None if reason is None else str(reason))
    except (KeyError, TypeError, ValueError):
        pass
    logger.warning("A visitor frame from another process could not be read: %r.", sorted(fields))
    return None
