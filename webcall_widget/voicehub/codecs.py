"""Payload shapes, without I/O: audio in each of the profile's shapes, dotted fields, and
safe descriptions of payloads for logs and the probe.

Audio is PCM16 little-endian mono in every shape (:class:`~.profile.AudioShape`):

* ``binary``: the event's payload is the bytes;
* ``object``: ``{"callId": ..., <field>: <bytes>}`` (a Socket.IO binary attachment);
* ``base64``: ``{"callId": ..., <field>: "<base64>"}`` in JSON.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from webcall_widget.voicehub.profile import AudioDirection, AudioShape
from webcall_widget.voicehub.secret import REDACTED

# Keys whose values are never shown, whatever they hold.
_SECRET_KEY = re.compile(r"key|token|secret|passw|auth|signature|credential", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# A base64 string shorter than this is not worth calling audio (10 ms at 8 kHz).
MIN_BASE64_AUDIO = 200


class BadAudio(ValueError):
    """An audio event whose payload is not in the profile's shape; the message says what
    it looked like."""


def encode_audio(direction: AudioDirection, call_id: str, pcm: bytes) -> Any:
    """The payload of one audio event in ``direction``'s shape."""
    if direction.shape is AudioShape.BINARY:
        return pcm
    if direction.shape is AudioShape.OBJECT:
        return {"callId": call_id, direction.field: pcm}
    return {"callId": call_id, direction.field: base64.b64encode(pcm).decode("ascii")}


def decode_audio(direction: AudioDirection, data: Any) -> bytes:
    """The PCM in one audio event's payload.

    Where the profile expects an object field, its value may be binary or base64 either
    way, and a base64 payload may also be the bare string.

    Raises:
        BadAudio: the payload has no audio where ``direction`` says.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        if direction.shape is AudioShape.BINARY:
            return bytes(data)
        raise BadAudio(f"expected {direction.describe()}; got bare binary")
    if direction.shape is AudioShape.BINARY:
        raise BadAudio(f"expected binary audio; got {describe(data)}")
    value = pick(data, direction.field) if isinstance(data, Mapping) else data
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadAudio(f"field {direction.field!r} is a string but not base64") from None
    raise BadAudio(f"expected {direction.describe()}; got {describe(data)}")


def pick(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; None where a step is missing. A name that is a
    key as it is (dots and all) wins."""
    if not isinstance(data, Mapping):
        return None
    if dotted in data:
        return data[dotted]
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def put(target: dict[str, Any], dotted: str, value: Any) -> None:
    """``target["a"]["b"] = value`` for ``"a.b"``, making the objects on the way."""
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def looks_like_base64_audio(value: Any) -> bytes | None:
    """The bytes of a long base64 string of whole PCM16 samples, or None."""
    if not isinstance(value, str) or len(value) < MIN_BASE64_AUDIO or len(value) % 4:
        return None
    if not _BASE64.fullmatch(value):
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    # The length and the pattern above admit only valid base64.
    except (binascii.Error, ValueError):  # pragma: no cover
        return None
    return decoded if len(decoded) % 2 == 0 else None


def describe(data: Any, *, secrets: Iterable[str] = (), max_string: int = 24) -> str:
    """A short, safe description of a payload's shape for a log line:
    ``{callId: str(36), audio: binary(640)}``. Strings are cut, binary is a length, values
    under secret-looking keys and any of ``secrets`` are hidden."""
    return _describe(summarise(data, secrets=secrets, max_string=max_string, depth=3))


def summarise(
    data: Any,
    *,
    secrets: Iterable[str] = (),
    max_string: int = 120,
    max_items: int = 20,
    depth: int = 6,
) -> Any:
    """``data`` made safe to write down: JSON-able, binary as ``"<binary N bytes>"``,
    base64 audio as ``"<base64 N bytes>"``, long strings cut, secret-looking keys and
    ``secrets`` hidden, big or deep structures trimmed."""
    hidden = tuple(s for s in secrets if s)
    return _summarise(data, hidden, max_string, max_items, depth)


def _summarise(
    data: Any, secrets: tuple[str, ...], max_string: int, items: int, depth: int
) -> Any:
    if isinstance(data, bytes | bytearray | memoryview):
        return f"<binary {len(data)} bytes>"
    if isinstance(data, str):
        decoded = looks_like_base64_audio(data)
        if decoded is not None:
            return f"<base64 {len(decoded)} bytes>"
        for secret in secrets:
            data = data.replace(secret, REDACTED)
        return data if len(data) <= max_string else data[:max_string] + f"…({len(data)} chars)"
    if data is None or isinstance(data, bool | int | float):
        return data
    if depth <= 0:
        return "<…>"
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for index, (key, value) in enumerate(data.items()):
            if index >= items:
                out["…"] = f"{len(data) - items} more"
                break
            key = str(key)
            if _SECRET_KEY.search(key) and not isinstance(value, Mapping | list):
                out[key] = REDACTED
            else:
                out[key] = _summarise(value, secrets, max_string, items, depth - 1)
        return out
    if isinstance(data, list | tuple):
        trimmed = [_summarise(v, secrets, max_string, items, depth - 1) for v in data[:items]]
        if len(data) > items:
            trimmed.append(f"… {len(data) - items} more")
        return trimmed
    return f"<{type(data).__name__}>"


def _describe(summary: Any) -> str:
    if isinstance(summary, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in summary.items()) + "}"
    if isinstance(summary, list):
        return "[" + ", ".join(_describe(v) for v in summary) + "]"
    if isinstance(summary, str):
        if summary == "<…>":
            return "…"
        if summary.startswith("<") and summary.endswith(">"):
            return summary[1:-1].replace(" bytes", "").replace(" ", "(") + ")"
        if summary == REDACTED:
            return summary
        return repr(summary)
    return type(summary).__name__ if summary is not None else "null"
