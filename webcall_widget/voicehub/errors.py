"""Errors raised while talking to VoiceHub.

::

    VoiceHubError
    ├── AgentMisconfigured      create-web-call answered 400
    │   └── UnsendableCredentials   the API key or agent id cannot be sent as a header
    │                               (a character that is not printable ASCII); nothing sent
    ├── InvalidApiKey           create-web-call answered 401
    ├── InsufficientCredits     create-web-call answered 403
    ├── OperationNotAllowed     create-web-call answered 405
    ├── UpstreamUnavailable     5xx, timeout or connection refused
    ├── UpstreamBadResponse     an answer we cannot use (garbage, missing fields)
    └── UpstreamSocketError     the live socket failed
        ├── UpstreamConnectFailed   could not open it, or the handshake failed
        ├── UpstreamJoinTimeout     ``channel.join`` was never confirmed
        ├── UpstreamRejoinRefused   VoiceHub would not let a new socket join a call
        │                           under way (``UPSTREAM.REJOIN``)
        └── UpstreamClosed          it closed or went silent during the call
            └── UpstreamHungUp          VoiceHub closed it itself (a Socket.IO disconnect,
                                        an Engine.IO close, a WebSocket close 1000/1001)

Each error carries ``code``, a stable machine-readable name that the HTTP views and the
relay send to the browser; what a visitor is told for a code is written once, in
:data:`webcall_widget.strings.ERRORS` (this package imports nothing from Django's
translation). ``str(error)`` is for the site owner's logs. None of them ever contains the
API key: messages are built from status codes and our own words, never from request headers.
"""

from __future__ import annotations

__all__ = [
    "AgentMisconfigured",
    "InsufficientCredits",
    "InvalidApiKey",
    "OperationNotAllowed",
    "UpstreamBadResponse",
    "UpstreamClosed",
    "UpstreamConnectFailed",
    "UpstreamHungUp",
    "UpstreamJoinTimeout",
    "UpstreamRejoinRefused",
    "UpstreamSocketError",
    "UnsendableCredentials",
    "UpstreamUnavailable",
    "VoiceHubError",
]


class VoiceHubError(Exception):
    code = "upstream_error"
    http_status = 502

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class AgentMisconfigured(VoiceHubError):
    code = "agent_misconfigured"


class UnsendableCredentials(AgentMisconfigured):
    """The agent's API key or VoiceHub agent id cannot go in an HTTP header, typically
    because a character was changed when it was copied from a document (a typographic
    quote or dash, a non-breaking space). The request was not sent. The message names
    the field and the character, never the value."""


class InvalidApiKey(VoiceHubError):
    code = "invalid_api_key"


class InsufficientCredits(VoiceHubError):
    code = "insufficient_credits"
    http_status = 503


class OperationNotAllowed(VoiceHubError):
    code = "operation_not_allowed"


class UpstreamUnavailable(VoiceHubError):
    code = "upstream_unavailable"
    http_status = 503


class UpstreamBadResponse(VoiceHubError):
    code = "upstream_bad_response"


class UpstreamSocketError(VoiceHubError):
    code = "upstream_failed"


class UpstreamConnectFailed(UpstreamSocketError):
    def __init__(
        self, detail: str, *, status: int | None = None, tried: tuple[str, ...] = ()
    ) -> None:
        super().__init__(detail, status=status)
        self.tried = tried  # each way of opening the socket tried, and how it failed


class UpstreamJoinTimeout(UpstreamSocketError):
    code = "upstream_join_timeout"


class UpstreamRejoinRefused(UpstreamSocketError):
    """A new socket asked to join a call under way (the call moving to another socket or
    process, after a crash or a deploy), and VoiceHub answered the join with an error,
    ended the call, or closed the socket instead of confirming it. The call cannot move:
    end it. Should it happen to every call, set ``UPSTREAM.REJOIN`` to "never".

    For the visitor it is a lost connection, as the socket the call had is gone.
    ``answer``: what VoiceHub did, in its words where it gave some."""

    code = "upstream_lost"

    def __init__(self, detail: str, *, answer: str = "") -> None:
        super().__init__(detail)
        self.answer = answer


class UpstreamClosed(UpstreamSocketError):
    code = "upstream_lost"


class UpstreamHungUp(UpstreamClosed):
    """VoiceHub closed the socket on purpose. With ``UPSTREAM.CALL_END`` "disconnect" or
    "either", the session turns this into the normal end of a joined call."""


ERROR_FOR_STATUS: dict[int, type[VoiceHubError]] = {
    400: AgentMisconfigured,
    401: InvalidApiKey,
    403: InsufficientCredits,
    405: OperationNotAllowed,
}
