"""With production static files (hashed names), the widget still finds its CSS and worklet."""

from __future__ import annotations

import re

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
    tag = Template('{% load webcall_widget %}{% webcall_widget "help" %}').render(Context())
    assert re.search(r'src="/static/webcall_widget/widget\.[0-9a-f]{12}\.js"', tag)
