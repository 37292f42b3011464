"""A value that must not be shown: the agent's API key on its way to VoiceHub."""

from __future__ import annotations

REDACTED = "[redacted]"


class Secret:
    """Holds a string that ``repr``, ``str`` and f-strings never show; :meth:`reveal` does.

    The relay carries the agent's key in one of these, so that a log line, an error
    message or a debugger's view of a call shows ``Secret(…)`` instead.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced by ``[redacted]``."""
        if self._value and self._value in text:
            return text.replace(self._value, REDACTED)
        return text

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret(…)" if self._value else "Secret()"

    __str__ = __repr__
