"""The demo site's ASGI application: Django, the relay's websockets, and the sandbox."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from webcall_widget.routing import websocket_urlpatterns  # noqa: E402
from webcall_widget.sandbox import mount_sandbox  # noqa: E402

application = mount_sandbox(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # The relay checks each socket's Origin against the agent itself.
            "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        }
    )
)
