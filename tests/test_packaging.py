"""The wheel holds the app with its static files, templates and migrations, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Its tests share servers started once for the module: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("test_packaging")

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
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
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


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
