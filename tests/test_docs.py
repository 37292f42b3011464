"""The README's reference tables match the code."""

from __future__ import annotations

import re
from pathlib import Path

from webcall_widget.conf import DOCS
from webcall_widget.relay.protocol import CloseCode

README = (Path(__file__).parent.parent / "README.md").read_text()


def settings_table() -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z_.]+)` \| `([^`]*)` \|", README, flags=re.MULTILINE)
    return dict(rows)


def test_every_setting_is_in_the_readme_with_its_default():
    documented = settings_table()
    assert set(documented) == set(DOCS)
    for key, spec in DOCS.items():
        assert documented[key] == repr(spec.default).replace("'", '"'), key


def test_every_close_code_is_in_the_readme():
    for code in CloseCode:
        assert str(int(code)) in README, code
