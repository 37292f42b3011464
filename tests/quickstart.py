"""The quickstart's steps, read from the one file its page shows (docs/quickstart/steps.sh).

The file is a shell script in steps, each starting with a ``# step: NAME`` line; the page
includes each step, and the tests run them as they are.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ROOT / "docs" / "quickstart" / "steps.sh"
PROJECT = "mysite"  # the name the steps use (django-admin startproject mysite .)


def steps() -> dict[str, str]:
    """Each step's shell text, by name, in the file's order."""
    parts = re.split(r"^# step: (\w+)\n", STEPS.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def written(path: str) -> str:
    """What the steps write into ``path`` (the text of its ``cat > path <<'EOF'``)."""
    match = re.search(
        rf"^cat >>? {re.escape(path)} <<'EOF'\n(.*?)^EOF$", STEPS.read_text(), re.M | re.S
    )
    assert match, path
    return match[1]


def run(names: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    """Run the named steps, in order, as one ``sh -eu`` script in ``cwd``."""
    every = steps()
    script = "set -eu\n" + "".join(every[name] for name in names)
    result = subprocess.run(
        ["sh", "-c", script], cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
