"""With production static files (hashed names), the widget finds its CSS, worklet and modules."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.management import call_command
from django.template import Context, Template


def test_config_and_tag_use_hashed_static_urls(tmp_path, settings, agent, client):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
        },
    }
    call_command("collectstatic", "--noinput", verbosity=0)
    assets = client.get(f"/webcall/agents/{agent.slug}/config").json()["assets"]
    assert re.fullmatch(
        r"http://testserver/static/webcall_widget/widget\.[0-9a-f]{12}\.css", assets["css"]
    )
    assert re.fullmatch(
        r"http://testserver/static/webcall_widget/audio-worklet\.[0-9a-f]{12}\.js",
        assets["worklet"],
    )
    # The modules import each other by relative URL, so they come from the app's versioned
    # path, never from a hashed static name their imports would not know.
    app = urlsplit(assets["app"]).path
    assert re.fullmatch(rf"/webcall/agents/{agent.slug}/widget/[0-9a-f]{{16}}/widget-app\.js", app)
    folder = assets["app"].rsplit("/", 1)[0]
    assert all(url.rsplit("/", 1)[0] == folder for url in assets["modules"])
    assert client.get(app).status_code == 200
    tag = Template('{% load webcall_widget %}{% webcall_widget "help" %}').render(Context())
    assert re.search(r'src="/static/webcall_widget/widget\.[0-9a-f]{12}\.js"', tag)
