"""How a settings key is described and checked: its default, its meaning, its validator.

The pieces of ``WEBCALL_WIDGET`` are described in the package that reads them (the upstream
profile's keys in :mod:`webcall_widget.voicehub.profile_settings`, the rest in
:mod:`webcall_widget.conf`); both use these. A validator returns None for a good value and
otherwise the end of a sentence that starts with the key's name ("must be ...").
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Validator = Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class Key:
    default: Any
    doc: str
    validate: Validator


def positive_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return "must be a positive number"
    return None


def positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return "must be a positive integer"
    return None


def optional_positive_int(value: Any) -> str | None:
    if value is not None and positive_int(value):
        return "must be a positive integer, or None for no limit"
    return None


def boolean(value: Any) -> str | None:
    if not isinstance(value, bool):
        return "must be True or False"
    return None


def optional_boolean(value: Any) -> str | None:
    if value is not None and not isinstance(value, bool):
        return "must be True, False or None"
    return None


def count(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be an integer of 0 or more"
    return None


def string(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    return None


def name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    return None


def path(value: Any) -> str | None:
    if not isinstance(value, str) or not value.startswith("/") or not value.endswith("/"):
        return "must be a path that starts and ends with '/'"
    return None


FRAME_MS_CHOICES = (20, 40, 60)


def frame_ms(value: Any) -> str | None:
    """Milliseconds of audio per frame: the lengths a browser's worklet and VoiceHub take."""
    if isinstance(value, bool) or value not in FRAME_MS_CHOICES:
        return "must be 20, 40 or 60"
    return None


def choice(values: type[enum.StrEnum]) -> Validator:
    allowed = [member.value for member in values]

    def validate(value: Any) -> str | None:
        if value not in allowed:
            return "must be one of " + ", ".join(repr(v) for v in allowed)
        return None

    return validate


def url(schemes: tuple[str, ...]) -> Validator:
    def validate(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            return "must be a URL string or None"
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            return "must be an absolute URL starting with " + " or ".join(
                f"{s}://" for s in schemes
            )
        if parts.query or parts.fragment:
            return "must not have a query string or fragment"
        return None

    return validate


def value_of(section: Mapping[str, Any], keys: Mapping[str, Key], key: str) -> Any:
    """``section[key]``, or the key's default."""
    return section.get(key, keys[key].default)
