"""A local VoiceHub emulator: the default upstream for the demo, the tests and development.

It answers ``POST /calls/public/create-web-call`` with its own keys and agents and the
documented status codes and CORS, and serves the WebCall socket (Socket.IO, or a plain
WebSocket) with an echo agent. Mount it on a Django site with :func:`mount_sandbox`, or
run it alone with ``python -m webcall_widget.sandbox``.

It needs the ``sandbox`` extra (:mod:`webcall_widget.sandbox.extra`). Importing this
package does not import it: :class:`Sandbox` is imported when first named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webcall_widget.sandbox.config import SandboxAgent, SandboxConfig
from webcall_widget.sandbox.extra import SandboxNotInstalled, require
from webcall_widget.sandbox.mount import mount_sandbox

if TYPE_CHECKING:
    from webcall_widget.sandbox.app import Sandbox

__all__ = ["Sandbox", "SandboxAgent", "SandboxConfig", "SandboxNotInstalled", "mount_sandbox"]


def __getattr__(name: str) -> Any:
    if name == "Sandbox":
        require()
        from webcall_widget.sandbox.app import Sandbox

        return Sandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
