"""Connect tokens: signed, short-lived, single use, bound to one call.

The token is the call id signed with a timestamp (``django.core.signing``, so it is
keyed by ``SECRET_KEY``). Its age is checked against ``CONNECT_TOKEN_MAX_AGE``. Single
use is enforced by :func:`claim`, one conditional UPDATE that only the first connect can
win, even when several arrive at once.
"""

from __future__ import annotations

import uuid

from django.core import signing
from django.utils import timezone

from webcall_widget.models import Call, CallStatus

SALT = "webcall_widget.relay.connect-token"


class TokenError(Exception):
    """The token cannot be used; ``str()`` says why (never with the token itself)."""


def issue(call_id: uuid.UUID) -> str:
    return signing.dumps(call_id.hex, salt=SALT)


def read(token: str, *, max_age: int) -> uuid.UUID:
    """The call a token names.

    Raises:
        TokenError: forged, malformed, or older than ``max_age`` seconds.
    """
    try:
        value = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise TokenError("the connect token has expired") from exc
    except signing.BadSignature as exc:
        raise TokenError("the connect token is not valid") from exc
    try:
        return uuid.UUID(hex=str(value))
    except ValueError as exc:
        raise TokenError("the connect token is not valid") from exc


def claim(call_id: uuid.UUID) -> bool:
    """Mark the call's token used; True only for the first caller."""
    updated = Call.objects.filter(
        pk=call_id, connected_at__isnull=True, status=CallStatus.CREATED
    ).update(connected_at=timezone.now(), status=CallStatus.CONNECTING)
    return updated == 1
