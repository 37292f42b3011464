"""Connect and resume tokens: signed, short-lived, single use, bound to one call.

A *connect* token opens the relay socket of a new call. It is the call id signed with a
timestamp (``django.core.signing``, so it is keyed by ``SECRET_KEY``); its age is checked
against ``CONNECT_TOKEN_MAX_AGE``. Single use is enforced by :func:`claim`, one
conditional UPDATE that only the first connect can win, even when several arrive at once.

A *resume* token lets a browser take up a live call again after its socket dropped (a
reload, another page of the site, a network change). It names the call, the page origin
that held it and the call's resume count, and carries its own expiry: the call's grace
period plus :data:`RESUME_SLACK_SECONDS`, renewed every :data:`RESUME_REFRESH_SECONDS`
while a browser holds the call. :func:`claim_resume` moves the count on by one in one
conditional UPDATE, so a token works once, from any process, and every resume hands out
tokens that the previous ones cannot stand in for.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from django.core import signing
from django.db.models import F
from django.utils import timezone

from webcall_widget.models import Call, CallStatus

SALT = "webcall_widget.relay.connect-token"
RESUME_SALT = "webcall_widget.relay.resume-token"

# While a browser holds the call, it gets a fresh resume token this often...
RESUME_REFRESH_SECONDS = 30
# ...and each one stays usable for the call's grace period plus this long, so the last one
# a browser received before its socket dropped lasts until the grace period is over.
RESUME_SLACK_SECONDS = RESUME_REFRESH_SECONDS + 15


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


def claim(call_id: uuid.UUID, owner: str = "") -> bool:
    """Mark the call's token used, by the relay process ``owner``; True only for the
    first caller."""
    updated = Call.objects.filter(
        pk=call_id, connected_at__isnull=True, status=CallStatus.CREATED
    ).update(connected_at=timezone.now(), status=CallStatus.CONNECTING, owner=owner)
    return updated == 1


@dataclass(frozen=True, slots=True)
class Grant:
    """What a browser socket may resume: one call, from one page origin, at one count of
    resumes (``Call.resumes``)."""

    call_id: uuid.UUID
    origin: str  # the socket's Origin header; "" when it sent none
    resumes: int

    def token(self, grace_seconds: int, *, now: float | None = None) -> str:
        """A resume token for this grant, usable for ``grace_seconds`` plus the slack."""
        expires = int((time.time() if now is None else now) + grace_seconds + RESUME_SLACK_SECONDS)
        payload = {"c": self.call_id.hex, "o": self.origin, "n": self.resumes, "e": expires}
        return signing.dumps(payload, salt=RESUME_SALT, compress=False)


def is_resume_token(token: str) -> bool:
    """Whether ``token`` is signed as a resume token (expired or not)."""
    try:
        signing.loads(token, salt=RESUME_SALT)
    except signing.BadSignature:
        return False
    return True


def read_resume(token: str, *, now: float | None = None) -> Grant:
    """The grant a resume token carries.

    Raises:
        TokenError: forged, malformed, or past its expiry.
    """
    try:
        value = signing.loads(token, salt=RESUME_SALT)
    except signing.BadSignature as exc:
        raise TokenError("the resume token is not valid") from exc
    try:
        grant = Grant(uuid.UUID(hex=str(value["c"])), str(value["o"]), int(value["n"]))
        expires = int(value["e"])
    except (TypeError, KeyError, ValueError) as exc:
        raise TokenError("the resume token is not valid") from exc
    if (time.time() if now is None else now) >= expires:
        raise TokenError("the resume token has expired")
    return grant


def claim_resume(grant: Grant) -> Grant | None:
    """Use up ``grant`` (its token and every other one issued with it): the grant for the
    resumed socket, or None when the token was used already or the call is over."""
    updated = Call.objects.filter(
        pk=grant.call_id, resumes=grant.resumes, ended_at__isnull=True
    ).update(resumes=F("resumes") + 1)
    if updated != 1:
        return None
    return Grant(grant.call_id, grant.origin, grant.resumes + 1)


def give_back(claimed: Grant) -> bool:
    """Undo :func:`claim_resume` for a socket that could not take the call up after all
    (``claimed``: what the claim answered): the token it was claimed with is good again.
    False when anything happened to the call since."""
    updated = Call.objects.filter(
        pk=claimed.call_id, resumes=claimed.resumes, ended_at__isnull=True
    ).update(resumes=F("resumes") - 1)
    return updated == 1
