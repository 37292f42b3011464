"""WebSocket frames as a client writes them (RFC 6455, section 5), for the audio hot path.

Every 20 ms of a visitor's audio is a Socket.IO binary event: a text header and a binary
attachment. Through websockets' own ``send`` each frame was a ``Frame`` object, a key from
``secrets`` (a system call) and an async context; here both frames are built in one
``bytes`` for one write, which took about a tenth off the relay's CPU at 100 calls
(``make bench-load``). The session uses this only while the connection is open, nothing
waits to drain and no other send is under way; every other case (closing, draining,
control frames) is left to websockets.
"""

from __future__ import annotations

import os
import struct

from websockets.frames import Opcode

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets ships the C extension on every wheel
    from websockets.utils import apply_mask

_SHORT, _MEDIUM, _LONG = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")
_FIN, _MASKED = 0x80, 0x80
_KEYS_AT_ONCE = 1024


class _MaskKeys:
    """Fresh random masking keys, four bytes each, drawn from the OS a thousand at a time."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> bytes:
        at = self._at
        if at + 4 > len(self._pool):
            self._pool, at = os.urandom(4 * _KEYS_AT_ONCE), 0
        self._at = at + 4
        return self._pool[at : at + 4]


_keys = _MaskKeys()


def frame_header(opcode: int, length: int, *, masked: bool) -> bytes:
    """The header of a final frame of ``length`` bytes (the masking key, if any, follows)."""
    mask_bit = _MASKED if masked else 0
    if length < 126:
        return _SHORT.pack(_FIN | opcode, mask_bit | length)
    if length < 1 << 16:
        return _MEDIUM.pack(_FIN | opcode, mask_bit | 126, length)
    return _LONG.pack(_FIN | opcode, mask_bit | 127, length)


def client_frame(payload: str | bytes) -> bytes:
    """One final, masked frame: text for ``str``, binary for ``bytes``."""
    if isinstance(payload, str):
        data, opcode = payload.encode(), Opcode.TEXT
    else:
        data, opcode = payload, Opcode.BINARY
    key = _keys.next()
    return frame_header(opcode, len(data), masked=True) + key + apply_mask(data, key)


def client_frames(payloads: tuple[str | bytes, ...]) -> bytes:
    """Several frames in one chunk, for one write."""
    if len(payloads) == 1:
        return client_frame(payloads[0])
    return b"".join([client_frame(payload) for payload in payloads])
