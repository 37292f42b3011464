"""Production static files: hashed names (ManifestStaticFilesStorage), served from STATIC_ROOT.

A module's relative import would name a file without the hash (Django rewrites imports only
when a site turns on ``support_js_module_import_aggregation``), so the app's modules come
from the agent's versioned URL instead; the launcher, the stylesheets and the worklet keep
their hashed static names.
"""

from __future__ import annotations

import io
import json
import mimetypes
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser.widget import WidgetOnPage


def collected(root: Path) -> Callable[[Any], Any]:
    """A static file server for STATIC_ROOT in front of ``app`` that serves the hashed names
    only, as a site does that keeps only those (WhiteNoise's KEEP_ONLY_HASHED_FILES, a CDN)."""
    manifest = json.loads((root / "staticfiles.json").read_text())
    hashed = set(manifest["paths"].values())

    def in_front_of(app: Any) -> Any:
        async def serve(scope: Any, receive: Any, send: Any) -> None:
            path = scope.get("path", "")
            if scope["type"] != "http" or not path.startswith("/static/"):
                await app(scope, receive, send)
                return
            name = path.removeprefix("/static/")
            file = root / name
            found = name in hashed and file.is_file()
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            await send(
                {
                    "type": "http.response.start",
                    "status": 200 if found else 404,
                    "headers": [(b"content-type", kind.encode())],
                }
            )
            await send({"type": "http.response.body", "body": file.read_bytes() if found else b""})

        return serve

    return in_front_of


@pytest.fixture
def static_files(demo_settings: Any, tmp_path: Path) -> Callable[[Any], Any]:
    demo_settings.STATIC_ROOT = tmp_path
    demo_settings.STORAGES = {
        **demo_settings.STORAGES,
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
        },
    }
    call_command("collectstatic", "--noinput", stdout=io.StringIO())
    return collected(tmp_path.resolve())


def test_the_widget_works_with_hashed_static_names(live_site, page):
    statics: list[str] = []
    page.on("request", lambda request: statics.append(request.url))
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("hashed")
    widget.expect_agent_reply("You said: hashed")
    hashed = re.compile(r"/static/webcall_widget/(widget|launcher)\.[0-9a-f]{12}\.(js|css)$")
    assert len([url for url in statics if hashed.search(url)]) == 3  # the launcher and both CSS
    assert any(
        re.search(r"/webcall/agents/echo/widget/[0-9a-f]{16}/panel\.js$", url) for url in statics
    )
