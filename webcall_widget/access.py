"""Who may talk to an agent: the agent's *who may call*, one rule for every entrance.

The create-call view asks it for the request's user, the relay for the socket's (and the
relay also asks that the socket's user be the one who created the call). The answer is
an error code of :data:`webcall_widget.strings.ERRORS`, or None when the user may talk.
"""

from __future__ import annotations

from typing import Any, Literal

from webcall_widget.models import Access

Refusal = Literal["login_required", "staff_only"]


def refusal(access: str, user: Any | None) -> Refusal | None:
    """Why ``user`` may not talk to an agent whose *who may call* is ``access``.

    ``user`` is ``request.user`` or ``scope["user"]``: None when no authentication
    middleware put one there, which only an agent open to anyone accepts.
    """
    if access == Access.ANYONE:
        return None
    if user is None or not user.is_authenticated:
        return "login_required"
    if access == Access.STAFF and not user.is_staff:
        return "staff_only"
    return None


def call_refusal(access: str, user: Any | None, call_user_id: int | None) -> Refusal | None:
    """:func:`refusal`, and for an agent that is not open to anyone, the call must be
    ``user``'s own: a socket of someone else (or of nobody) is asked to log in."""
    refused = refusal(access, user)
    if refused is not None or access == Access.ANYONE:
        return refused
    return None if getattr(user, "pk", None) == call_user_id else "login_required"
