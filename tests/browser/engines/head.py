"""Scripts a site puts at the top of every HTML page it serves, for WebKit's pages (see
webkit.py): ``<script src="/__tests__/head.js">`` first in ``<head>``, a classic script
that runs before the page's own, from the page's origin (a strict CSP allows it)."""

from __future__ import annotations

import re
from typing import Any

HEAD_PATH = "/__tests__/head.js"
HEAD_TAG = re.compile(rb"<head(\s[^>]*)?>", re.IGNORECASE)


def inject(html: bytes) -> bytes:
    tag = f'<script src="{HEAD_PATH}"></script>'.encode()
    found = HEAD_TAG.search(html)
    at = found.end() if found else 0
    return html[:at] + tag + html[at:]


def with_head_scripts(app: Any, scripts: list[str]) -> Any:
    """``app`` (ASGI), with ``scripts`` (a list the caller may fill later) in its pages."""

    async def serve_head(send: Any) -> None:
        body = ";\n".join(scripts).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/javascript; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def injecting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scripts:
            await app(scope, receive, send)
            return
        if scope["path"] == HEAD_PATH:
            await serve_head(send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewriting(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = start.get("headers", [])
            body = b"".join(chunks)
            if any(
                k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers
            ):
                body = inject(body)
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, rewriting)

    return injecting
