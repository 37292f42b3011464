"""Where a call's socket is and what its opening carries, from the profile.

``webCallSocketPath`` (create-web-call's answer) is read as the profile says: a Socket.IO
path on the VoiceHub host, a Socket.IO namespace served on ``SOCKETIO_PATH``, or a full
URL (``auto``: a path, then a namespace). The connection templates (CONNECT ``auth``,
query, headers) are filled in with the call's id, the agent's VoiceHub id and, only where
a template asks for ``{apiKey}``, the key. Each :class:`SocketAddress` also has a
``shown`` form, with the templates' placeholders instead of their values, for messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from webcall_widget.voicehub import socketio
from webcall_widget.voicehub.errors import UpstreamConnectFailed
from webcall_widget.voicehub.events import Transport
from webcall_widget.voicehub.profile import SocketPathAs, UpstreamProfile, render
from webcall_widget.voicehub.secret import Secret

_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


@dataclass(frozen=True, slots=True)
class ConnectContext:
    """What the connection templates may use, for one call."""

    call_id: str
    agent_id: str = ""
    api_key: Secret = field(default_factory=Secret)

    def values(self, *, with_key: bool) -> dict[str, str]:
        values = {"callId": self.call_id, "agentId": self.agent_id}
        if with_key:
            values["apiKey"] = self.api_key.reveal()
        return values

    def redact(self, text: str) -> str:
        return self.api_key.redact(text)


@dataclass(frozen=True, slots=True)
class SocketAddress:
    url: str  # to connect to; its query may hold a filled-in template
    shown: str  # the same, with the templates' placeholders: safe to show
    read_as: SocketPathAs  # PATH, NAMESPACE or URL
    namespace: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: Any = None  # the Socket.IO CONNECT payload


def socket_url(base_url: str, socket_path: str, transport: Transport) -> str:
    """The ws(s):// URL of a call's socket when ``webCallSocketPath`` is a path (absolute
    on the host of ``base_url``) or a full URL (used as it is)."""
    return _path_address(base_url, socket_path, transport, {}, {})[0]


def addresses(
    base_url: str,
    socket_path: str,
    profile: UpstreamProfile,
    context: ConnectContext | None = None,
) -> list[SocketAddress]:
    """The address(es) to try, in order: one, or two for ``SOCKET_PATH_AS = "auto"``.

    Raises:
        UpstreamConnectFailed: ``webCallSocketPath`` cannot be read the way the profile
            says (not a full URL for ``url``).
    """
    context = context or ConnectContext(call_id="")
    template = profile.connect
    values = context.values(with_key=template.uses_api_key)
    query = {str(k): str(v) for k, v in render(dict(template.query), values).items()}
    shown_query = {str(k): str(v) for k, v in template.query.items()}
    headers = {str(k): str(v) for k, v in render(dict(template.headers), values).items()}
    auth = render(template.auth, values) if template.auth is not None else None
    kinds = {
        SocketPathAs.AUTO: [SocketPathAs.PATH, SocketPathAs.NAMESPACE],
    }.get(profile.socket_path_as, [profile.socket_path_as])
    found = []
    for kind in kinds:
        if kind is SocketPathAs.NAMESPACE:
            url, shown, namespace = _namespace_address(
                base_url, socket_path, profile.socketio_path, query, shown_query
            )
        else:
            if kind is SocketPathAs.URL and urlsplit(socket_path).scheme not in _SCHEMES:
                raise UpstreamConnectFailed(
                    f"webCallSocketPath {socket_path!r} is not a full URL, but "
                    "UPSTREAM.SOCKET_PATH_AS is 'url'. Set it to 'path' (a path on the "
                    "VoiceHub host) or 'namespace'."
                )
            url, shown = _path_address(
                base_url, socket_path, profile.transport, query, shown_query
            )
            namespace = "/"
        found.append(SocketAddress(url, shown, kind, namespace, headers, auth))
    return found


def _path_address(
    base_url: str,
    socket_path: str,
    transport: Transport,
    query: Mapping[str, str],
    shown_query: Mapping[str, str],
) -> tuple[str, str]:
    base = urlsplit(base_url)
    parts = urlsplit(socket_path)
    if parts.scheme in _SCHEMES:
        scheme, netloc = _SCHEMES[parts.scheme], parts.netloc
    else:
        scheme, netloc = ("wss" if base.scheme == "https" else "ws"), base.netloc
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    extra = socketio.ENGINEIO_QUERY if transport is Transport.SOCKETIO else ""
    if transport is Transport.SOCKETIO:
        path = path.rstrip("/") + "/"
    return (
        urlunsplit((scheme, netloc, path, _query(parts.query, urlencode(query), extra), "")),
        urlunsplit((scheme, netloc, path, _query(parts.query, _plain(shown_query), extra), "")),
    )


def _namespace_address(
    base_url: str,
    socket_path: str,
    socketio_path: str,
    query: Mapping[str, str],
    shown_query: Mapping[str, str],
) -> tuple[str, str, str]:
    base = urlsplit(base_url)
    parts = urlsplit(socket_path)
    if parts.scheme in _SCHEMES:
        # As socket.io-client reads io(url): the URL's host, its path the namespace.
        scheme, netloc, prefix = _SCHEMES[parts.scheme], parts.netloc, ""
    else:
        scheme = "wss" if base.scheme == "https" else "ws"
        netloc, prefix = base.netloc, base.path.rstrip("/")
    namespace = "/" + parts.path.strip("/") if parts.path.strip("/") else "/"
    path = prefix + "/" + socketio_path.strip("/") + "/"
    extra = socketio.ENGINEIO_QUERY
    return (
        urlunsplit((scheme, netloc, path, _query(parts.query, urlencode(query), extra), "")),
        urlunsplit((scheme, netloc, path, _query(parts.query, _plain(shown_query), extra), "")),
        namespace,
    )


def _query(*parts: str) -> str:
    return "&".join(part for part in parts if part)


def _plain(query: Mapping[str, str]) -> str:
    return "&".join(f"{key}={value}" for key, value in query.items())
