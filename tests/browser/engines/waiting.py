"""Waiting, in a synchronous test, for something that has no event to wait on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float, message: str, every: float = 0.05
) -> T:
    """``condition()``'s first truthy value, asked every ``every`` seconds; past
    ``timeout`` seconds an ``AssertionError`` with ``message`` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (within {timeout:g} s; last: {value!r})")
        time.sleep(every)
