"""A canary for the API key, running under every test in the suite.

Every API key and webhook secret any test saves on an ``Agent`` is registered as a
secret. The suite then scans everything a person could read for those secrets: every HTTP
response of the site (HTML, JSON, admin pages, errors; through
:class:`SecretCanaryMiddleware`, listed in the test settings), every frame the relay sends
to a browser, every log record, and, in the browser tests, every response and socket frame
the page saw. A test during which a secret shows up anywhere fails (see the autouse
fixture in conftest.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase

SECRETS: set[str] = set()
LEAKS: list[str] = []
MIN_LENGTH = 6  # shorter strings would match by accident


def register(secret: str) -> None:
    if secret and len(secret) >= MIN_LENGTH:
        SECRETS.add(secret)


def scan(where: str, text: str | bytes) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for secret in SECRETS:
        if secret in text:
            LEAKS.append(f"{where}: {secret[:3]}… in {text[:120]!r}")


def remember_agent_key(sender: Any, instance: Any, **kwargs: Any) -> None:
    register(instance.api_key)
    register(getattr(instance, "webhook_secret", ""))


class SecretCanaryMiddleware:
    """Scans every response body the site sends."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if isinstance(response, HttpResponse):
            scan(f"response to {request.method} {request.path}", response.content)
        for header, value in response.items():
            scan(f"header {header} of {request.path}", value)
        return response


class LogCanary(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot be formatted shows nothing
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + str(record.exc_info[1])
        scan(f"log {record.name}", text)


def scan_relay_frames() -> None:
    """Wrap the relay consumer's one way out to the browser."""
    from webcall_widget.relay.consumer import RelayConsumer

    original = RelayConsumer._send

    async def scanned(self: RelayConsumer, message: dict[str, Any]) -> None:
        if message.get("text") is not None:
            scan("relay frame", message["text"])
        await original(self, message)

    RelayConsumer._send = scanned  # type: ignore[method-assign]
