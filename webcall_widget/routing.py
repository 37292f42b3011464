"""Websocket routes for a site's ASGI application.

::

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": URLRouter(webcall_widget.routing.websocket_urlpatterns),
    })

The relay is served under ``WEBCALL_WIDGET["SOCKET_PATH"]`` (default ``/ws/webcall/``),
the path the create-call endpoint hands to browsers.

``websocket_urlpatterns`` ends with a catch-all: a socket on any other path is accepted
and closed with 4404 (see :mod:`webcall_widget.relay.not_found`), where Channels would
otherwise fail the handshake with an HTTP 500. A site with websocket routes of its own
lists them first, ``URLRouter([*its_routes, *websocket_urlpatterns])``, or routes
``relay_urlpatterns`` (the relay alone) with a fallback of its own.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path, re_path

from webcall_widget.conf import get_settings
from webcall_widget.relay.consumer import RelayConsumer
from webcall_widget.relay.not_found import not_found


def relay_patterns(relay: Any) -> list[URLPattern]:
    """The relay's routes, served by ``relay`` (``RelayConsumer.as_asgi(...)``): the start
    socket of a call to start, and the socket of a call created over HTTP or resumed."""
    prefix = get_settings().socket_path.lstrip("/")
    return [
        path(prefix + "start/<slug:slug>/", relay, name="webcall-start"),
        path(prefix + "<str:token>/", relay, name="webcall-relay"),
    ]


relay_urlpatterns = relay_patterns(RelayConsumer.as_asgi())

websocket_urlpatterns = [
    *relay_urlpatterns,
    # Any other path; last. (django-stubs types routes as Django views, Channels takes ASGI
    # applications.)
    re_path(r"", not_found, name="webcall-not-found"),  # type: ignore[arg-type]
]
