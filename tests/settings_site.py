"""Settings for a whole site in its own process (tests/test_graceful_stop.py): the tests'
settings with the database the test process names in SITE_DATABASE, the upstream in
SITE_SANDBOX, and whether VoiceHub lets calls be joined again (SITE_REJOIN) and how long
a stopping process drains (SITE_DRAIN_SECONDS)."""

from __future__ import annotations

import faulthandler
import os
import signal

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

# What a test shows when a server does not stop: every thread's stack on SIGUSR1, and the
# relay's log, on stderr (the test's log file).
faulthandler.register(signal.SIGUSR1, all_threads=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "webcall_widget": {"handlers": ["stderr"], "level": "INFO"},
        # runserver's autoreloader names the file whose change restarts the server
        "django.utils.autoreload": {"handlers": ["stderr"], "level": "INFO"},
    },
}
