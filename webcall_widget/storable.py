"""Text from outside made fit for every database: PostgreSQL refuses NUL characters in
text and JSON columns (SQLite takes them), and VoiceHub or a visitor may send them; no
database's JSON takes NaN or Infinity, which Python's JSON parser accepts."""

from __future__ import annotations

import json
import math
from typing import Any


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def loads(body: bytes | str) -> Any:
    """Parse JSON as the standard has it, and as it can be stored: NaN, Infinity and
    numbers too large for a float (``1e999``) raise ``ValueError``; NUL characters are
    removed (:func:`json_value`)."""
    return json_value(json.loads(body, parse_constant=_no_constant, parse_float=_finite))


def text(value: str) -> str:
    return value.replace("\x00", "") if "\x00" in value else value


def json_value(value: Any) -> Any:
    """``value`` (parsed JSON) with NUL characters removed from every string and key."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {text(str(k)): json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(item) for item in value]
    return value
