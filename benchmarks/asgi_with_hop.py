"""The site as tests/asgi.py builds it, but with Channels' stock dispatch in the relay.

RelayConsumer skips Channels' per-event ``aclose_old_connections`` thread hop for browser
frames; this variant puts it back, so the benchmark can show what skipping it is worth.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
django_asgi_app = get_asgi_application()

from channels.consumer import AsyncConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from webcall_widget.conf import get_settings  # noqa: E402
from webcall_widget.relay.consumer import RelayConsumer  # noqa: E402


class RelayConsumerWithHop(RelayConsumer):
    dispatch = AsyncConsumer.dispatch


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path(
                    get_settings().socket_path.lstrip("/") + "<str:token>/",
                    RelayConsumerWithHop.as_asgi(),
                )
            ]
        ),
    }
)
