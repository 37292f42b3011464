"""Settings for the test suite's site: the base every site in this checkout shares
(demo/settings_base.py), without the demo's pages, on the database WEBCALL_TEST_DB names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from demo.settings_base import *  # noqa: F403
from demo.settings_base import MIDDLEWARE
from tests.postgres import connection_settings

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]

MIDDLEWARE = [
    "tests.canary.SecretCanaryMiddleware",  # fails any test whose responses show an API key
    *MIDDLEWARE,
]

ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"

# The suite runs on SQLite (the default) and on PostgreSQL: WEBCALL_TEST_DB=postgres.
TEST_DB = os.environ.get("WEBCALL_TEST_DB", "sqlite")
DATABASES: dict[str, dict[str, Any]]
if TEST_DB == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / ".artifacts" / "tests.sqlite3",
            # Relay threads and live-server threads share the test database, a file; one per
            # pytest process, so that two runs in one checkout do not flush each other's.
            "TEST": {"NAME": BASE_DIR / ".artifacts" / f"test-db-{os.getpid()}.sqlite3"},
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
elif TEST_DB == "postgres":
    # The server named by PGHOST/PGPORT/PGUSER/PGPASSWORD, 127.0.0.1:5432 as postgres by
    # default; when nothing answers there, the suite starts its own (tests/postgres.py).
    # One test database per pytest process, as with SQLite.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "webcall_widget",
            **connection_settings(),
            "TEST": {"NAME": f"test_webcall_widget_{os.getpid()}"},
        }
    }
else:
    raise ImproperlyConfigured(f"WEBCALL_TEST_DB is {TEST_DB!r}: 'sqlite' or 'postgres'")

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Nothing answers here: each test that needs the upstream points this at a running
# sandbox (the ``sandbox`` fixture in conftest.py).
WEBCALL_WIDGET: dict[str, object] = {"UPSTREAM": {"URL": "http://voicehub.invalid"}}

# Django 6.1 sends mail through MAILERS and warns (an error here) when none is set; Django
# 5.2 ignores the setting. The tests' mail goes to django.core.mail.outbox either way.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
