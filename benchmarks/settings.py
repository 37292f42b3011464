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
WEBCALL_WIDGET = {
    "UPSTREAM": {"URL": os.environ["BENCH_UPSTREAM"]},
    # The client floods on purpose, and opens many calls from one address (more than ten
    # with --repeat 6): lift the limits meant for visitors, so the path is what is measured.
    "LIMITS": {"FRAMES_PER_SECOND": 1_000_000, "CALLS_PER_MINUTE_PER_CLIENT": 1000},
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
