"""Websocket routes for a site's ASGI application.

::

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": URLRouter(webcall_widget.routing.websocket_urlpatterns),
    })

The relay is served under ``WEBCALL_WIDGET["SOCKET_PATH"]`` (default ``/ws/webcall/``),
the path the create-call endpoint hands to browsers.
"""

from __future__ import annotations

from django.urls import path

from webcall_widget.conf import get_settings
from webcall_widget.relay.consumer import RelayConsumer

websocket_urlpatterns = [
    path(
        get_settings().socket_path.lstrip("/") + "<str:token>/",
        RelayConsumer.as_asgi(),
        name="webcall-relay",
    ),
]
