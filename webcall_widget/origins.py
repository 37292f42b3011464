"""Origins: parse an agent's allow-list and decide whether a page may use the agent.

Used alike by the CORS hook, the create-call view and the relay consumer, so that the
HTTP endpoints and the socket can never disagree.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.utils.translation import gettext as _

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalise(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None if invalid."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def parse_origin_list(text: str, *, strict: bool = False) -> list[str]:
    """Origins listed one per line (commas and spaces also separate them).

    ``https://*.example.com`` allows every subdomain of example.com over https.
    With ``strict``, an entry that is not an origin raises ``ValueError``; otherwise it
    is skipped.
    """
    result: list[str] = []
    for entry in text.replace(",", " ").split():
        wildcard = "://*." in entry
        candidate = entry.replace("://*.", "://", 1) if wildcard else entry
        origin = normalise(candidate)
        if origin is None:
            if strict:
                raise ValueError(
                    _("%(entry)s is not an origin such as https://www.example.com.")
                    % {"entry": entry}
                )
            continue
        if wildcard:
            origin = origin.replace("://", "://*.", 1)
        if origin not in result:
            result.append(origin)
    return result


def is_same_host(origin: str, host_header: str) -> bool:
    """Whether the page's origin names the host the request was sent to."""
    normal = normalise(origin)
    if normal is None or not host_header:
        return False
    scheme = normal.split("://", 1)[0]
    request_origin = normalise(f"{scheme}://{host_header}")
    return request_origin == normal


def matches(origin: str, allowed: list[str]) -> bool:
    normal = normalise(origin)
    if normal is None:
        return False
    scheme, host = normal.split("://", 1)
    for entry in allowed:
        if entry == normal:
            return True
        if "://*." in entry:
            entry_scheme, suffix = entry.split("://*.", 1)
            if entry_scheme == scheme and host.endswith("." + suffix):
                return True
    return False


def is_allowed(origin: str | None, host_header: str, allowed: list[str]) -> bool:
    """Same host always; otherwise only origins on the agent's list.

    A request without an ``Origin`` header is not from a page script (a browser always
    sends one on cross-origin fetches and on WebSocket handshakes) and is allowed: it
    cannot borrow a visitor's session, and the limits still apply to it.
    """
    if not origin:
        return True
    return is_same_host(origin, host_header) or matches(origin, allowed)
