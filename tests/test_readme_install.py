"""The README's "Add it to your site" steps, followed on a brand-new Django project.

``django-admin startproject``, then the settings, URLs and ASGI module the README gives
(the ASGI module is the README's own code block), an agent on the sandbox, and a text call
over real sockets to the site served by Daphne in its own process. In the PostgreSQL run
the site also takes the README's ``DATABASES`` block, pointed at a database of its own on
the tests' server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests import postgres
from tests.servers import post_create_call, say_and_hang_up, start_daphne

pytestmark = [pytest.mark.xdist_group("test_readme_install"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_python_block(containing: str) -> str:
    blocks = re.findall(r"^ *```python\n(.*?)^ *```", README, flags=re.MULTILINE | re.DOTALL)
    (block,) = [b for b in blocks if containing in b]
    return textwrap.dedent(block)


# The new project's own settings, not the tests' (which pytest-django exported).
ENV = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}


def run(*args: str, cwd: Path, env: dict[str, str] = ENV) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def extend_list(
    source: str,
    name: str,
    *,
    first: Sequence[str] = (),
    last: Sequence[str] = (),
) -> str:
    """Add strings at the start or end of the list assigned to ``name`` in settings.py."""
    match = re.search(rf"^{name} = \[\n(.*?)^\]", source, flags=re.MULTILINE | re.DOTALL)
    assert match, name
    body = "".join(f'    "{item}",\n' for item in first) + match[1]
    body += "".join(f'    "{item}",\n' for item in last)
    return source[: match.start(1)] + body + source[match.end(1) :]


def follow_the_readme(base: Path, database: dict[str, str] | None = None) -> None:
    """``database``: where the README's PostgreSQL ``DATABASES`` should point instead (its
    password comes from the environment, as the README has it); None: startproject's SQLite."""
    run("-m", "django", "startproject", "mysite", str(base), cwd=base)
    settings = base / "mysite" / "settings.py"
    text = settings.read_text()
    text = extend_list(text, "INSTALLED_APPS", first=["daphne"])
    text = extend_list(text, "INSTALLED_APPS", last=["corsheaders", "channels", "webcall_widget"])
    text = extend_list(text, "MIDDLEWARE", first=["corsheaders.middleware.CorsMiddleware"])
    text += '\nASGI_APPLICATION = "mysite.asgi.application"\n'
    if database is not None:
        text += "\nimport os  # noqa: E402\n\n"
        text += readme_python_block('"django.db.backends.postgresql"')
        text += f'\nDATABASES["default"].update({database!r})\n'
    settings.write_text(text)
    urls = base / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        + "\nfrom django.urls import include  # noqa: E402\n\n"
        + 'urlpatterns += [path("webcall/", include("webcall_widget.urls"))]\n'
    )
    asgi = readme_python_block("mount_sandbox(").replace("yourproject", "mysite")
    (base / "mysite" / "asgi.py").write_text(asgi)


@pytest.fixture(scope="module")
def new_site(
    tmp_path_factory: pytest.TempPathFactory, django_db_modify_db_settings: None
) -> Iterator[str]:
    from django.conf import settings

    base = tmp_path_factory.mktemp("newsite")
    tests_db = settings.DATABASES["default"]
    database, env = None, ENV
    if tests_db["ENGINE"] == "django.db.backends.postgresql":
        database = {key: str(tests_db[key]) for key in ("HOST", "PORT", "USER")}
        database["NAME"] = f"readme_site_{os.getpid()}"
        env = {**ENV, "DATABASE_PASSWORD": str(tests_db["PASSWORD"])}
        postgres.admin(tests_db, "DROP DATABASE IF EXISTS {}", database["NAME"])  # a killed run's
        postgres.admin(tests_db, "CREATE DATABASE {}", database["NAME"])
    try:
        follow_the_readme(base, database)
        run("manage.py", "check", "--fail-level", "WARNING", cwd=base, env=env)
        run("manage.py", "migrate", "--noinput", "-v0", cwd=base, env=env)
        run(
            "manage.py",
            "shell",
            "-c",
            "from webcall_widget.models import Agent; Agent.objects.create(name='Help', "
            "slug='help', voicehub_agent_id='echo-agent', api_key='sandbox-key')",
            cwd=base,
            env=env,
        )
        server, url = start_daphne("mysite.asgi:application", cwd=base, env=env)
        yield url
        server.terminate()
        server.wait(10)
    finally:
        if database is not None:
            postgres.admin(tests_db, "DROP DATABASE IF EXISTS {}", database["NAME"])


def test_a_new_project_set_up_as_the_readme_says_talks_to_the_sandbox_agent(new_site):
    response = post_create_call(new_site, "help")
    assert response.status_code == 201, response.text
    frames = say_and_hang_up(response.json()["socket"], new_site, "set up from the README")
    assert frames[0]["type"] == "ready"
    assert frames[-2]["text"] == "You said: set up from the README"
    assert frames[-1] == {"type": "ended", "reason": "visitor-ended"}
