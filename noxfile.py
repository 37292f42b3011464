"""The version matrix: the fast suite on the versions pyproject.toml's ranges allow beside
the ones ``make test`` runs on (Python 3.11 with Django 5.2 LTS, the machine's default).

- ``django61``: Python 3.13 with Django 6.1, the current release (it needs Python 3.12+);
- ``lowest``: Python 3.11 with the lowest version of every direct dependency the ranges
  allow (uv's ``--resolution lowest-direct``), the app's and the test tools' alike.

``make test-versions`` runs both (``make test`` does too). nox makes each virtualenv with uv
and keeps it; a session installs again only when pyproject.toml or what it asks for
changed, so a second run spends its time in the tests. Django's deprecation warnings are
errors, as every warning is (``filterwarnings = ["error"]``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["django61", "lowest"]

ROOT = Path(__file__).resolve().parent
# The suite without the browser and multi-process tests, on SQLite. Its tests mostly wait on
# sockets, servers and the clock, so more workers than cores shorten it.
FAST = ["-m", "not browser and not slow", "-n", os.environ.get("NOX_WORKERS", "6")]
FAST += ["--dist", "loadgroup", "-q"]


def interpreter(version: str) -> str:
    """pyenv's build of ``version`` (this machine kind's 3.12 and 3.13), else the PATH's."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob(f"{version}.*/bin/python{version}"))
    return str(found[-1]) if found else f"python{version}"


def install(session: nox.Session, *args: str) -> None:
    """``uv pip install args``, unless this virtualenv already has exactly that."""
    assert isinstance(session.virtualenv, nox.virtualenv.VirtualEnv)
    stamp = Path(session.virtualenv.location) / ".installed"
    wanted = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + "\0".join(args).encode()
    ).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        session.log("dependencies unchanged: not installing again")
        return
    session.install(*args)
    stamp.write_text(wanted)


def fast_suite(session: nox.Session) -> None:
    session.run(
        "python", "-m", "pytest", *FAST, *session.posargs, env={"WEBCALL_TEST_DB": "sqlite"}
    )


@nox.session(python=interpreter("3.13"))
def django61(session: nox.Session) -> None:
    install(session, "-e", ".[test]", "django>=6.1,<6.2")
    session.run(
        "python", "-c", "import django; assert django.VERSION[:2] == (6, 1), django.VERSION"
    )
    fast_suite(session)


@nox.session(python=interpreter("3.11"))
def lowest(session: nox.Session) -> None:
    install(session, "--resolution", "lowest-direct", "-e", ".[test]")
    fast_suite(session)
