"""Mount the sandbox on a site's ASGI application, importing it only where it is enabled.

Every site's ``asgi.py`` imports :func:`mount_sandbox`, so this module imports neither the
sandbox nor what it needs (the ``sandbox`` extra, see :mod:`webcall_widget.sandbox.extra`):
a site whose sandbox is disabled runs without them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from webcall_widget.conf import get_settings
from webcall_widget.sandbox import extra
from webcall_widget.sandbox.http import Receive, Scope, Send


def mount_sandbox(application: Any) -> Any:
    """Wrap a site's ASGI application so that the sandbox answers under its path.

    The sandbox answers only while ``WEBCALL_WIDGET["SANDBOX"]["ENABLED"]`` is true (by
    default: while ``DEBUG`` is on); otherwise every request goes to ``application``.

    Raises:
        SandboxNotInstalled: the sandbox is enabled but the ``sandbox`` extra is not
            installed (said here, when the site starts, rather than at its first request).
    """
    if _enabled():
        extra.require()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            settings = get_settings()
            if settings.sandbox.enabled and scope["path"].startswith(settings.sandbox.path):
                extra.require()
                from webcall_widget.sandbox.app import mounted_sandbox

                await mounted_sandbox()(scope, receive, send)
                return
        await application(scope, receive, send)

    return app


def _enabled() -> bool:
    try:
        return get_settings().sandbox.enabled
    except ImproperlyConfigured:
        return False  # the system checks say what is wrong; requests will tell again
