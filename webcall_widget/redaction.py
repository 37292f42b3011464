"""Error pages and reports that never show an agent's API key, even with ``DEBUG`` on.

Django hides what ``sensitive_variables`` and ``sensitive_post_parameters`` mark only
while ``DEBUG`` is off: its technical 500 page shows every local variable of every frame.
The views that hold a key (create-call, the agent's admin pages) set
:class:`KeySafeReporterFilter` on their request, so that marked values are hidden on
that page too; other pages keep Django's behaviour.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

R = TypeVar("R")


class KeySafeReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, active whatever ``DEBUG`` says."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True


FILTER = KeySafeReporterFilter()


def hide_marked_values_in_debug(view: Callable[..., R]) -> Callable[..., R]:
    """A function view decorator: :class:`KeySafeReporterFilter` for its requests."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> R:
        use_key_safe_filter(request)
        return view(request, *args, **kwargs)

    return wrapper


def use_key_safe_filter(request: HttpRequest) -> None:
    request.exception_reporter_filter = FILTER
