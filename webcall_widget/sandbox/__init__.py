"""A local VoiceHub emulator: the default upstream for the demo, the tests and development.

It answers ``POST /calls/public/create-web-call`` with its own keys and agents and the
documented status codes and CORS, and serves the WebCall socket (Socket.IO, or a plain
WebSocket) with an echo agent. Mount it on a Django site with :func:`mount_sandbox`, or
run it alone with ``python -m webcall_widget.sandbox``.
"""

from __future__ import annotations

from webcall_widget.sandbox.app import Sandbox, mount_sandbox
from webcall_widget.sandbox.config import SandboxAgent, SandboxConfig

__all__ = ["Sandbox", "SandboxAgent", "SandboxConfig", "mount_sandbox"]
