"""Minimal settings for the test suite, independent of the demo site."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from tests.postgres import connection_settings

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "channels",
    "webcall_widget",
]

MIDDLEWARE = [
    "tests.canary.SecretCanaryMiddleware",  # fails any test whose responses show an API key
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

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

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French"), ("ar", "Arabic")]
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Nothing answers here: each test that needs the upstream points this at a running
# sandbox (the ``sandbox`` fixture in conftest.py).
WEBCALL_WIDGET: dict[str, object] = {"UPSTREAM": {"URL": "http://voicehub.invalid"}}
