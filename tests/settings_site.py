"""Settings for a whole site in its own process (tests/test_graceful_stop.py): the tests'
settings with the database the test process names in SITE_DATABASE, the upstream in
SITE_SANDBOX, and whether VoiceHub lets calls be joined again (SITE_REJOIN) and how long
a stopping process drains (SITE_DRAIN_SECONDS)."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, MIDDLEWARE

_default = {**DATABASES["default"], "NAME": os.environ["SITE_DATABASE"]}
if _default["ENGINE"].endswith("sqlite3"):
    _default["OPTIONS"] = {
        **_default.get("OPTIONS", {}),
        "init_command": "PRAGMA journal_mode=WAL;",
    }
DATABASES = {"default": _default}
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("tests.canary")]
WEBCALL_WIDGET = {
    "UPSTREAM": {
        "URL": os.environ["SITE_SANDBOX"],
        "REJOIN": os.environ.get("SITE_REJOIN", "auto"),
    },
    "DRAIN_SECONDS": float(os.environ.get("SITE_DRAIN_SECONDS", "25")),
}
