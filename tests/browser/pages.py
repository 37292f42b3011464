"""Pages of a site that is not Django, for embedding the widget by a plain <script> tag."""

from __future__ import annotations

from typing import Any


def static_page(html: str, headers: dict[str, str] | None = None) -> Any:
    """An ASGI app that serves one HTML page (with ``headers``): a site that is not Django."""
    body = html.encode()
    extra = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200 if scope["path"] == "/" else 404,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body if scope["path"] == "/" else b""})

    return app


def page_with(snippet: str, lang: str = "en") -> str:
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>Shop</title>'
        f"</head><body><h1>Another site</h1>{snippet}</body></html>"
    )
