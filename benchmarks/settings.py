"""Settings for the relay benchmark: the test site, a file database, a separate sandbox."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

DEBUG = False
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BENCH_DATABASE"],
        # Two site processes write to it: wait for the lock rather than fail.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
WEBCALL_WIDGET = {"UPSTREAM": {"URL": os.environ["BENCH_UPSTREAM"]}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
