"""The wheel holds the app with its static files, templates and migrations, and nothing else."""

from __future__ import annotations

import email.message
import email.parser
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Its tests share servers started once for the module: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("test_packaging")

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def metadata(wheel) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_the_wheel_has_the_version_the_package_reports(metadata):
    import webcall_widget

    assert metadata["Version"] == webcall_widget.__version__


@pytest.fixture(scope="module")
def requirements(metadata) -> dict[str, set[str]]:
    """Each distribution the wheel's metadata requires, and the extras that require it
    ("" for a plain dependency)."""
    headers = metadata
    found: dict[str, set[str]] = {}
    for requirement in headers.get_all("Requires-Dist", []):
        spec, _, marker = requirement.partition(";")
        name = re.split(r"[\s<>=!~\[]", spec.strip(), maxsplit=1)[0].lower()
        extra = re.fullmatch(r"""\s*extra == ["']([a-z]+)["']\s*""", marker)
        found.setdefault(name, set()).add(extra[1] if extra else marker.strip())
    return found


@pytest.mark.parametrize(
    "path",
    [
        "webcall_widget/static/webcall_widget/widget.js",
        "webcall_widget/static/webcall_widget/widget.css",
        "webcall_widget/static/webcall_widget/audio-worklet.js",
        "webcall_widget/migrations/0001_initial.py",
        "webcall_widget/py.typed",
        "webcall_widget/templates/admin/webcall_widget/agent/change_form.html",
        "webcall_widget/locale/fr/LC_MESSAGES/django.mo",
        "webcall_widget/locale/ar/LC_MESSAGES/django.mo",
        "webcall_widget/sandbox/app.py",
        "webcall_widget/voicehub/events.py",
        "webcall_widget/management/commands/expire_webcalls.py",
    ],
)
def test_wheel_contains(wheel_names, path):
    assert path in wheel_names


def test_wheel_contains_only_the_app(wheel_names):
    tops = {name.split("/", 1)[0] for name in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"webcall_widget"}


@pytest.mark.parametrize("name", ["django", "channels", "django-cors-headers", "websockets"])
def test_what_every_site_needs_is_a_plain_dependency(requirements, name):
    assert "" in requirements[name]


@pytest.mark.parametrize("name", ["daphne", "python-socketio"])
def test_what_only_the_sandbox_needs_is_the_sandbox_extra_which_the_tests_install(
    requirements, name
):
    assert requirements[name] == {"sandbox", "test", "dev"}
