"""The browser wire protocol, version 1, without any I/O.

Text frames are JSON objects with a ``type``; binary frames are audio. :func:`parse`
turns what the browser sent into a typed frame or raises :class:`ProtocolError` with
the close code to use; the ``*_frame`` builders make what the server sends.

visitor to server::

    {"type": "start", "mode": m}        on a start socket (``<SOCKET_PATH>start/<slug>/``),
                                        its first frame: create the call, and ``ready``
                                        comes back on this socket
    {"type": "text", "text": "...", "id": "..."?}
                                        a chat message (modes text, TextAudio); the
                                        optional id names it, so that a message sent
                                        again after a reconnect is taken once
    binary                              microphone audio, PCM16LE mono at inputRate
    {"type": "end"}                     hang up
    {"type": "ping", "t": n}            answered by {"type": "pong", "t": n}

server to visitor::

    {"type": "ready", "call": id, "mode": m, "audio": {...} | null,
     "resume": {"token": .., "seconds": n} | null, "resumed": bool}
    {"type": "transcript", "messages": [{"id", "role", "text", "final"}, ...]}
                                        after a resumed ready: the conversation so far
    {"type": "resume", "token": ..}     a fresh resume token (the last one stops working
                                        when it is used, or soon after it was issued)
    {"type": "message", "id": .., "role": "agent" | "user", "text": .., "final": bool}
    binary                              agent audio, PCM16LE mono at outputRate
    {"type": "interrupt"}               drop queued agent audio now
    {"type": "error", "code": .., "message": .., "retryAfter": s?}
                                        retryAfter: a start refused by a limit
    {"type": "ended", "reason": ..}     the socket closes next
    {"type": "pong", "t": n}

Close codes are :class:`CloseCode`. A refused socket gets an ``error`` frame first, whose
code says more than the close code can: 4406 (``ACCESS_DENIED``, the agent's *who may
call* refuses the socket's user) follows ``login_required`` or ``staff_only``.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from webcall_widget.voicehub.events import AudioFormat, Mode

PROTOCOL_VERSION = 1


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    # The server is stopping or reloading. Autobahn (Daphne) sends only 1000 and 3000-4999,
    # so there the relay closes with RESTARTING_4XXX; the widget reads both the same way.
    RESTARTING = 1012
    RESTARTING_4XXX = 4012
    # This process stops and another one takes the call over, or it cannot reach the
    # process holding the call just now (Redis restarting): resume (a new call: connect
    # again). Not an error: the widget reconnects without a word to the visitor.
    MOVING = 4013
    MALFORMED_FRAME = 4400
    BAD_TOKEN = 4401
    ORIGIN_NOT_ALLOWED = 4403
    UNKNOWN_CALL = 4404
    ACCESS_DENIED = 4406  # not logged in, not staff, or not the user who created the call
    TIMEOUT = 4408
    TOKEN_USED = 4409
    FRAME_TOO_LARGE = 4413
    RATE_LIMITED = 4429
    TAKEN_OVER = 4410
    UPSTREAM_FAILED = 4502
    AGENT_DISABLED = 4503


def _close_code_errors() -> dict[str, str]:
    """What each close code the relay sends means to the widget (its config's
    ``relay.closeCodes``): the error code whose text it shows (``RESTARTING_4XXX`` is
    Daphne's spelling of ``RESTARTING``). A normal close is not an error, nor is ``MOVING``
    (the widget resumes, elsewhere), so neither is listed."""
    return {
        str(code.value): code.name.lower().removesuffix("_4xxx")
        for code in CloseCode
        if code not in (CloseCode.NORMAL, CloseCode.MOVING)
    }


CLOSE_CODE_ERRORS = _close_code_errors()


class ProtocolError(Exception):
    """A frame the relay cannot accept; ``close_code`` says whether the socket must close."""

    def __init__(self, code: str, message: str, close_code: CloseCode | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    id: str | None = None  # the widget's name for the message, echoed back with it


@dataclass(frozen=True, slots=True)
class AudioIn:
    pcm: bytes


@dataclass(frozen=True, slots=True)
class End:
    pass


@dataclass(frozen=True, slots=True)
class Ping:
    t: float | int | None


@dataclass(frozen=True, slots=True)
class Start:
    mode: Mode


ClientFrame = Text | AudioIn | End | Ping


def parse(
    text_data: str | None,
    bytes_data: bytes | None,
    *,
    mode: Mode | None,
    max_text_length: int,
    max_frame_bytes: int,
) -> ClientFrame | Start:
    """Validate one frame from the browser; ``mode`` is the call's (None: a start socket
    before its ``start``, where only ``start`` and ``ping`` are taken).

    Raises:
        ProtocolError: with ``close_code`` set for frames that end the call (malformed,
            too large); without it for frames that are merely refused (text in a voice-only
            call, a message that is too long), which the relay answers with an error frame.
    """
    if bytes_data is not None and mode is None:
        raise ProtocolError("malformed_frame", "No call yet.", CloseCode.MALFORMED_FRAME)
    if bytes_data is not None:
        if len(bytes_data) > max_frame_bytes:
            raise ProtocolError(
                "frame_too_large",
                f"Audio frames may be at most {max_frame_bytes} bytes.",
                CloseCode.FRAME_TOO_LARGE,
            )
        assert mode is not None
        if not mode.has_audio:
            raise ProtocolError("audio_not_allowed", "This call does not take audio.")
        if len(bytes_data) % 2:
            raise ProtocolError(
                "malformed_frame",
                "Audio frames must hold whole 16-bit samples.",
                CloseCode.MALFORMED_FRAME,
            )
        return AudioIn(bytes_data)
    if text_data is None:
        raise ProtocolError("malformed_frame", "Empty frame.", CloseCode.MALFORMED_FRAME)
    if (
        len(text_data) > max_frame_bytes
        or len(text_data.encode("utf-8", "surrogatepass")) > max_frame_bytes
    ):
        raise ProtocolError(
            "frame_too_large",
            f"Frames may be at most {max_frame_bytes} bytes.",
            CloseCode.FRAME_TOO_LARGE,
        )
    try:
        frame = json.loads(text_data)
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than the interpreter's recursion limit, which
        # a frame well under max_frame_bytes can hold ("[" * 5000).
        frame = None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError(
            "malformed_frame",
            'Text frames must be JSON objects with a "type".',
            CloseCode.MALFORMED_FRAME,
        )
    kind = frame["type"]
    if kind == "ping":
        t = frame.get("t")
        if t is not None and not _is_number(t):
            raise ProtocolError(
                "malformed_frame", 'ping "t" must be a number.', CloseCode.MALFORMED_FRAME
            )
        return Ping(t)
    if mode is None:
        return _start(frame)
    if kind == "text":
        return _text(frame, mode, max_text_length)
    if kind == "end":
        return End()
    raise ProtocolError(
        "malformed_frame", f"Unknown frame type {kind[:40]!r}.", CloseCode.MALFORMED_FRAME
    )


def _start(frame: dict[str, Any]) -> Start:
    if frame["type"] != "start":
        raise ProtocolError("malformed_frame", "Start a call first.", CloseCode.MALFORMED_FRAME)
    mode = frame.get("mode")
    if not isinstance(mode, str) or mode not in Mode._value2member_map_:
        raise ProtocolError(
            "malformed_frame",
            'A start frame\'s "mode" must be text, WebAudio or TextAudio.',
            CloseCode.MALFORMED_FRAME,
        )
    return Start(Mode(mode))


MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _text(frame: dict[str, Any], mode: Mode, max_text_length: int) -> Text:
    text = frame.get("text")
    if not isinstance(text, str):
        raise ProtocolError(
            "malformed_frame", 'A text frame needs a string "text".', CloseCode.MALFORMED_FRAME
        )
    message_id = frame.get("id")
    if message_id is not None and not (
        isinstance(message_id, str) and MESSAGE_ID.fullmatch(message_id)
    ):
        raise ProtocolError(
            "malformed_frame",
            'A text frame\'s "id" must be 1 to 64 letters, digits, "-" or "_".',
            CloseCode.MALFORMED_FRAME,
        )
    if not mode.has_text:
        raise ProtocolError("text_not_allowed", "This call is voice only.")
    text = text.strip()
    if not text:
        raise ProtocolError("empty_message", "The message is empty.")
    if len(text) > max_text_length:
        raise ProtocolError(
            "message_too_long", f"Messages may be at most {max_text_length} characters."
        )
    return Text(text, message_id)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _dump(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def ready_frame(
    call_id: str,
    mode: Mode,
    audio: AudioFormat,
    *,
    resume_token: str | None = None,
    resume_seconds: int = 0,
    resumed: bool = False,
) -> str:
    audio_info = (
        {
            "format": audio.encoding,
            "inputRate": audio.input_rate,
            "outputRate": audio.output_rate,
            "frameMs": audio.frame_ms,
        }
        if mode.has_audio
        else None
    )
    return _dump(
        {
            "type": "ready",
            "version": PROTOCOL_VERSION,
            "call": call_id,
            "mode": mode.value,
            "audio": audio_info,
            "resume": (
                {"token": resume_token, "seconds": resume_seconds} if resume_token else None
            ),
            "resumed": resumed,
        }
    )


def transcript_frame(messages: list[dict[str, Any]]) -> str:
    """The conversation so far, each message as a ``message`` frame's fields."""
    return _dump({"type": "transcript", "messages": messages})


def resume_frame(token: str) -> str:
    return _dump({"type": "resume", "token": token})


def message_frame(message_id: str, role: str, text: str, *, final: bool) -> str:
    return _dump({"type": "message", "id": message_id, "role": role, "text": text, "final": final})


def error_frame(code: str, message: str, *, retry_after: int | None = None) -> str:
    fields: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if retry_after is not None:
        fields["retryAfter"] = retry_after
    return _dump(fields)


def ended_frame(reason: str) -> str:
    return _dump({"type": "ended", "reason": reason})


def pong_frame(t: float | int | None) -> str:
    return _dump({"type": "pong", "t": t})


INTERRUPT_FRAME = _dump({"type": "interrupt"})
