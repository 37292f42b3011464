"""VoiceHub's HTTP API: create a web call with the secret API key, server-side."""

from __future__ import annotations

import json
import logging
import threading
import unicodedata
from dataclasses import dataclass

import requests
from django.views.decorators.debug import sensitive_variables

from webcall_widget.voicehub.errors import (
    ERROR_FOR_STATUS,
    UnsendableCredentials,
    UpstreamBadResponse,
    UpstreamUnavailable,
    VoiceHubError,
)
from webcall_widget.voicehub.events import (
    CREATE_WEB_CALL_PATH,
    HEADER_AGENT_ID,
    HEADER_API_KEY,
    SOCKET_PATH_FIELDS,
    Mode,
)

logger = logging.getLogger(__name__)

# A create-web-call answer is a few hundred bytes; anything far larger is not one.
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class CreatedCall:
    call_id: str
    socket_path: str


def unsendable_character(value: str) -> tuple[int, str] | None:
    """The first character (1-based position, character) that keeps ``value`` from being
    a VoiceHub credential header, or None.

    VoiceHub's API keys and agent ids are printable ASCII without spaces. Anything else
    cannot be encoded in an HTTP header (a typographic quote or dash, a non-breaking space:
    what a word processor makes of a pasted key) or is not what was meant (a space, a tab).
    """
    for position, char in enumerate(value, start=1):
        if not "!" <= char <= "~":
            return position, char
    return None


def describe_character(char: str) -> str:
    """``“’” (U+2019 RIGHT SINGLE QUOTATION MARK)``, or just the code point for spaces
    and control characters."""
    name = unicodedata.name(char, "")
    code_point = f"U+{ord(char):04X} {name}".strip()
    if char.isprintable() and not char.isspace():
        return f"“{char}” ({code_point})"
    return code_point


@sensitive_variables("value")
def _check_sendable(what: str, value: str) -> None:
    found = unsendable_character(value)
    if found is not None:
        position, char = found
        raise UnsendableCredentials(
            f"create-web-call was not sent: the agent's {what} contains "
            f"{describe_character(char)} at character {position}, where only printable "
            "ASCII without spaces can be sent (it may have been changed when copied from a "
            f"document). Type the {what} again in the agent's admin page."
        )


_sessions = threading.local()


def pooled_session() -> requests.Session:
    """This thread's session: its connections to VoiceHub are kept open between calls, so a
    call does not pay a new TCP and TLS handshake (a requests session is not shared
    between threads)."""
    session: requests.Session | None = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


@sensitive_variables()  # every local here and below holds or may hold the API key
def create_web_call(
    base_url: str,
    *,
    api_key: str,
    agent_id: str,
    mode: Mode,
    timeout: float,
    session: requests.Session | None = None,
) -> CreatedCall:
    """Ask VoiceHub for a new web call.

    Args:
        base_url: VoiceHub's base URL, without a trailing slash.
        timeout: seconds allowed for connecting and, separately, for the answer.

    Raises:
        AgentMisconfigured, InvalidApiKey, InsufficientCredits, OperationNotAllowed:
            VoiceHub answered 400, 401, 403 or 405.
        UpstreamUnavailable: any other 4xx/5xx, a timeout, or no connection.
        UpstreamBadResponse: a 2xx answer without a call id and a socket path.
        UnsendableCredentials: the API key or agent id cannot be sent in a header;
            nothing was sent.
    """
    _check_sendable("API key", api_key)
    _check_sendable("VoiceHub agent id", agent_id)
    url = base_url + CREATE_WEB_CALL_PATH
    headers = {
        HEADER_API_KEY: api_key,
        HEADER_AGENT_ID: agent_id,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    http = session or requests
    try:
        response = http.post(
            url,
            data=json.dumps({"type": mode.value}),
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout as exc:
        raise UpstreamUnavailable(f"create-web-call timed out after {timeout:g}s") from exc
    # This and the UnicodeError below cannot happen after _check_sendable (printable ASCII
    # only); they stay so that no change there ever lets a message quote the key.
    except requests.exceptions.InvalidHeader:  # pragma: no cover
        # Its message quotes the header's value: not chained, not repeated.
        raise UnsendableCredentials(
            "create-web-call was not sent: requests refused a header value "
            "(the API key or the agent id)."
        ) from None
    except requests.RequestException as exc:
        raise UpstreamUnavailable(
            f"create-web-call could not reach {base_url}: {type(exc).__name__}"
        ) from exc
    except (UnicodeError, ValueError) as exc:  # pragma: no cover
        # Raised while the request is encoded (http.client encodes headers as Latin-1).
        # A UnicodeEncodeError holds the whole string it failed on: not chained.
        raise UnsendableCredentials(
            f"create-web-call was not sent: {type(exc).__name__} while encoding the "
            "request; check the agent's API key and agent id for characters that are not "
            "printable ASCII."
        ) from None
    with response:
        try:
            body = _read_limited(response)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(
                f"create-web-call answer was cut off: {type(exc).__name__}"
            ) from exc
    return _parse(response.status_code, body, secret=api_key)


def _read_limited(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(8192):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise UpstreamBadResponse(
                f"create-web-call answer is larger than {MAX_RESPONSE_BYTES} bytes",
                status=response.status_code,
            )
        chunks.append(chunk)
    return b"".join(chunks)


@sensitive_variables("secret")
def _parse(status: int, body: bytes, *, secret: str) -> CreatedCall:
    if status in ERROR_FOR_STATUS:
        error_class = ERROR_FOR_STATUS[status]
        raise error_class(
            f"create-web-call answered {status}{_upstream_message(body, secret)}", status=status
        )
    if not 200 <= status < 300:
        raise UpstreamUnavailable(f"create-web-call answered {status}", status=status)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise UpstreamBadResponse(
            f"create-web-call answered {status} with a body that is not JSON", status=status
        ) from exc
    if not isinstance(data, dict):
        raise UpstreamBadResponse(
            f"create-web-call answered {status} with JSON that is not an object", status=status
        )
    call_id = data.get("callId")
    socket_path = next(
        (data[f] for f in SOCKET_PATH_FIELDS if isinstance(data.get(f), str) and data[f]), None
    )
    if not isinstance(call_id, str | int) or isinstance(call_id, bool) or not str(call_id):
        raise UpstreamBadResponse(f"create-web-call answered {status} without a callId")
    if socket_path is None:
        raise UpstreamBadResponse(
            f"create-web-call answered {status} without " + " or ".join(SOCKET_PATH_FIELDS)
        )
    return CreatedCall(call_id=str(call_id), socket_path=socket_path)


@sensitive_variables("secret")
def _upstream_message(body: bytes, secret: str) -> str:
    """VoiceHub's own words about an error, if it sent any (the shape is undocumented).

    The key is cut out in case the upstream quotes it back.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    if not isinstance(message, str) or not message:
        return ""
    if secret:
        message = message.replace(secret, "[redacted]")
    return f": {message[:200]}"


__all__ = [
    "CreatedCall",
    "VoiceHubError",
    "create_web_call",
    "describe_character",
    "unsendable_character",
]
