"""The newcomer's path: the package built as a user gets it, installed the way the
quickstart says into a fresh virtualenv that has no checkout on its path, on a project made
with ``django-admin startproject``, served by ``runserver``, and a chat in Chromium.

``python -m build`` makes the sdist and, from it, the wheel; ``twine check --strict`` reads
them as PyPI would. The quickstart's steps (docs/quickstart/steps.sh, the file its page
shows) run as they are written: its ``pip install`` finds this wheel (``PIP_FIND_LINKS``,
pinned to this version) and its dependencies on the package index.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import webcall_widget
from tests import quickstart
from tests.browser.widget import WidgetOnPage
from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
VERSION = webcall_widget.__version__
PYTHON = next(
    iter(sorted(Path.home().glob(".pyenv/versions/3.12.*/bin/python3.12"))),
    Path(os.path.realpath(sys.executable)),
)

pytestmark = pytest.mark.timeout(300)


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 240) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], ROOT)
    return out


def test_the_sdist_and_the_wheel_pass_twines_strict_check(dist):
    built = sorted(p.name for p in dist.iterdir())
    assert built == [
        f"django_webcall_widget-{VERSION}-py3-none-any.whl",
        f"django_webcall_widget-{VERSION}.tar.gz",
    ]
    printed = run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())], dist
    )
    assert printed.count("PASSED") == 2


def test_the_sdist_holds_the_app_and_its_papers_only(dist):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {
        "webcall_widget",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "pyproject.toml",
        "PKG-INFO",
        ".gitignore",  # hatchling keeps it, so that a build from the sdist ignores the same
    }
    assert "webcall_widget/locale/fr/LC_MESSAGES/django.mo" in names
    assert "webcall_widget/py.typed" in names


@pytest.fixture(scope="module")
def new_site(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A virtualenv with the quickstart followed in a new project beside it, served by
    runserver: the virtualenv and the site's URL."""
    base = tmp_path_factory.mktemp("newcomer")
    venv = base / "venv"
    # uv makes the virtualenv (with pip in it) in a second; the steps then use pip. Python
    # 3.12, which the version matrix leaves out, so that every version the classifiers name
    # runs somewhere: 3.11 the suite, 3.13 the fast suite on Django 6.1, 3.12 this path.
    run(
        [
            sys.executable,
            "-m",
            "uv",
            "venv",
            "-q",
            "--seed",
            "-p",
            str(PYTHON),
            str(venv),
        ],
        base,
    )
    constraints = base / "constraints.txt"
    constraints.write_text(f"django-webcall-widget=={VERSION}\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(
        PATH=os.pathsep.join([str(venv / "bin"), env.get("PATH", "")]),
        VIRTUAL_ENV=str(venv),
        PIP_FIND_LINKS=str(dist),
        PIP_CONSTRAINT=str(constraints),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    project = base / "project"
    project.mkdir()
    quickstart.run(["install"], project, env)
    run(
        [str(venv / "bin" / "django-admin"), "startproject", quickstart.PROJECT, "."], project, env
    )
    quickstart.run(["settings", "urls", "asgi", "template", "agent"], project, env)
    run(
        [str(venv / "bin" / "python"), "manage.py", "check", "--fail-level", "WARNING"],
        project,
        env,
    )
    port = free_port()
    serve = quickstart.steps()["serve"].strip()
    assert serve == "python manage.py runserver"
    server = subprocess.Popen(
        ["sh", "-c", f"exec {serve} 127.0.0.1:{port}"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # runserver's autoreloader runs the server in a child
    )
    try:
        wait_for_port(port, server, "runserver")
        yield venv, f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def printed_in(venv: Path, code: str) -> list[str]:
    """What ``code`` prints, run by the new virtualenv's Python, split in words."""
    return run([str(venv / "bin" / "python"), "-c", code], venv).split()


def test_the_app_comes_from_the_wheel_not_the_checkout(new_site):
    venv, _ = new_site
    location, version = printed_in(
        venv, "import webcall_widget as w; print(w.__file__, w.__version__)"
    )
    assert Path(location).is_relative_to(venv) and "site-packages" in location
    assert version == VERSION


def test_the_new_site_runs_on_python_3_12_and_the_newest_django_the_ranges_allow(new_site):
    venv, _ = new_site
    versions = printed_in(
        venv, "import sys, django; print(*sys.version_info[:2], *django.VERSION[:2])"
    )
    assert versions == ["3", "12", "6", "1"], PYTHON


def test_a_visitor_chats_with_the_sandbox_agent_on_the_new_site(new_site, page):
    _, url = new_site
    page.goto(url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("hello from a new project")
    widget.expect_agent_reply("You said: hello from a new project")
