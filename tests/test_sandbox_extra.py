"""The sandbox's packages (python-socketio, Daphne) are the ``sandbox`` extra: a site runs
without them while its sandbox is disabled, and is told what to install when it is enabled.

Each site here is a new Python process whose import system refuses socketio, engineio and
daphne, as on a machine where the extra was never installed; its ``asgi.py`` is the
quickstart's (docs/quickstart/steps.sh).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Tags, run_checks
from django.test import override_settings

from tests import quickstart
from webcall_widget.sandbox import extra

ROOT = Path(__file__).resolve().parent.parent

WITHOUT_THE_EXTRA = """
import sys

class WithoutTheSandboxExtra:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"socketio", "engineio", "daphne"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, WithoutTheSandboxExtra())
"""

SETTINGS = """
SECRET_KEY = "sandbox-extra-tests"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "corsheaders",
    "channels",
    "webcall_widget",
]
MIDDLEWARE = ["corsheaders.middleware.CorsMiddleware"]
ASGI_APPLICATION = "mysite.asgi.application"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
WEBCALL_WIDGET = {{
    "UPSTREAM": {{"URL": "https://voicehub.example"}},
    "SANDBOX": {{"ENABLED": {enabled}}},
}}
"""


def site(base: Path, *, sandbox_enabled: bool) -> Path:
    """A project ``mysite`` with the quickstart's asgi.py."""
    package = base / "mysite"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(SETTINGS.format(enabled=sandbox_enabled))
    (package / "asgi.py").write_text(quickstart.written("mysite/asgi.py"))
    return base


def run_without_the_extra(base: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join([str(base), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_EXTRA + code],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


SANDBOX_MODULES = 'print(sorted({"socketio", "engineio", "daphne"} & set(sys.modules)))'


def test_a_site_whose_sandbox_is_disabled_starts_without_the_extra(tmp_path):
    base = site(tmp_path, sandbox_enabled=False)
    started = run_without_the_extra(base, f"import mysite.asgi\n{SANDBOX_MODULES}")
    assert (started.returncode, started.stdout.strip()) == (0, "[]"), started.stderr


def test_a_site_whose_sandbox_is_enabled_is_told_to_install_the_extra(tmp_path):
    base = site(tmp_path, sandbox_enabled=True)
    started = run_without_the_extra(base, "import mysite.asgi")
    assert started.returncode != 0
    last_line = started.stderr.strip().splitlines()[-1]
    assert last_line.startswith("webcall_widget.sandbox.extra.SandboxNotInstalled: ")
    assert 'pip install "django-webcall-widget[sandbox]"' in last_line


CHECK_IDS = """
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
import django
django.setup()
from django.core.checks import Tags, run_checks
print(sorted(m.id for m in run_checks(tags=[Tags.compatibility])))
"""


def test_the_system_check_tells_a_site_with_the_sandbox_enabled_to_install_the_extra(tmp_path):
    base = site(tmp_path, sandbox_enabled=True)
    checked = run_without_the_extra(base, CHECK_IDS)
    assert checked.stdout.strip() == "['webcall_widget.E009']", checked.stderr


def test_the_system_check_is_quiet_when_the_sandbox_is_disabled(tmp_path):
    base = site(tmp_path, sandbox_enabled=False)
    checked = run_without_the_extra(base, CHECK_IDS)
    assert checked.stdout.strip() == "[]", checked.stderr


def test_the_standalone_sandbox_is_told_to_install_the_extra(tmp_path):
    ran = run_without_the_extra(
        tmp_path, "import runpy\nrunpy.run_module('webcall_widget.sandbox', run_name='__main__')"
    )
    assert ran.returncode == 1
    assert ran.stderr.startswith("The VoiceHub sandbox needs python-socketio and daphne, ")
    assert 'pip install "django-webcall-widget[sandbox]"' in ran.stderr


@override_settings(
    WEBCALL_WIDGET={"UPSTREAM": {"URL": "https://voicehub.example"}, "SANDBOX": {"ENABLED": True}}
)
def test_the_system_check_passes_where_the_extra_is_installed():
    assert extra.missing(extra.STANDALONE) == []
    ids = [m.id for m in run_checks(tags=[Tags.compatibility])]
    assert "webcall_widget.E009" not in ids


def test_the_error_names_what_is_missing_and_how_to_install_it():
    error = extra.SandboxNotInstalled(["python-socketio"])
    assert isinstance(error, ImportError)
    assert str(error).startswith(
        "The VoiceHub sandbox needs python-socketio, which is not installed: "
        'pip install "django-webcall-widget[sandbox]". '
    )


@pytest.mark.parametrize("module", ["socketio", "daphne"])
def test_the_extra_is_installed_for_the_demo_and_the_tests(module):
    assert module in extra.STANDALONE and extra.missing({module: module}) == []
