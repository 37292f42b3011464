"""Text from outside made fit for every database: PostgreSQL refuses NUL characters in
text and JSON columns (SQLite takes them), and VoiceHub or a visitor may send them."""

from __future__ import annotations

from typing import Any


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
