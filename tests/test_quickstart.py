"""The quickstart's steps (docs/quickstart/steps.sh), followed on a brand-new Django project
in this checkout's environment: ``django-admin startproject``, the settings, URLs, ASGI
module, page and agent exactly as the steps write them, Django's checks, and a text call
over real sockets to the site served by Daphne in its own process. (The whole path, from
the built wheel in a fresh virtualenv to a chat in Chromium, is
tests/browser/test_newcomer.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import quickstart
from tests.servers import post_create_call, say_and_hang_up, start_daphne

pytestmark = [pytest.mark.xdist_group("test_quickstart"), pytest.mark.slow]

# The new project's own settings, not the tests' (which pytest-django exported); `python`
# in the steps is this interpreter.
ENV = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
ENV["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), ENV.get("PATH", "")])


def manage(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def new_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("newsite")
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", quickstart.PROJECT, str(base)],
        check=True,
        env=ENV,
        timeout=60,
    )
    # Installing is this checkout's own install; serving is Daphne on a free port below.
    quickstart.run(["settings", "urls", "asgi", "template", "agent"], base, ENV)
    manage("check", "--fail-level", "WARNING", cwd=base)
    server, url = start_daphne("mysite.asgi:application", cwd=base, env=ENV)
    yield url
    server.terminate()
    server.wait(10)


def test_the_steps_name_every_step_the_page_shows():
    assert list(quickstart.steps()) == [
        "install",
        "settings",
        "urls",
        "asgi",
        "template",
        "agent",
        "serve",
    ]


def test_a_new_project_set_up_as_the_quickstart_says_serves_the_widget(new_site):
    import requests

    page = requests.get(new_site + "/", timeout=10)
    assert page.status_code == 200
    assert 'data-agent="help"' in page.text
    assert "/static/webcall_widget/widget.js" in page.text


def test_a_new_project_set_up_as_the_quickstart_says_talks_to_the_sandbox_agent(new_site):
    response = post_create_call(new_site, "help")
    assert response.status_code == 201, response.text
    frames = say_and_hang_up(response.json()["socket"], new_site, "set up from the quickstart")
    assert frames[0]["type"] == "ready"
    assert frames[-2]["text"] == "You said: set up from the quickstart"
    assert frames[-1] == {"type": "ended", "reason": "visitor-ended"}
