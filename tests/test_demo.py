"""The demo site stays runnable: its settings pass Django's checks and it seeds its agent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def manage(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DEMO_DATABASE": str(tmp_path / "demo.sqlite3"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_settings_pass_the_checks(tmp_path):
    result = manage("check", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_demo_seeds_its_sandbox_agent_twice_without_harm(tmp_path):
    assert manage("migrate", "--noinput", tmp_path=tmp_path).returncode == 0
    first = manage("seed_demo", tmp_path=tmp_path)
    second = manage("seed_demo", tmp_path=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert "'echo' created" in first.stdout
    assert "'echo' already there" in second.stdout
