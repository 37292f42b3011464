"""Settings for the demo site that ``make run`` serves at http://127.0.0.1:8000.

The base every site in this checkout shares (demo/settings_base.py) with development
settings: DEBUG on, SQLite, the in-memory channel layer, and the built-in VoiceHub sandbox
as the upstream (mounted at /voicehub-sandbox/ by demo/asgi.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from demo.settings_base import *  # noqa: F403
from demo.settings_base import INSTALLED_APPS, MIDDLEWARE, TEMPLATES

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # its seed_demo command

# The demo site's pages and stylesheet: the top-level templates/ and static/.
TEMPLATES = [{**TEMPLATES[0], "DIRS": [BASE_DIR / "templates"]}]
STATICFILES_DIRS = [BASE_DIR / "static"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    *MIDDLEWARE,
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
ASGI_APPLICATION = "demo.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE", BASE_DIR / "demo.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
    }
}

STATIC_ROOT = BASE_DIR / "staticfiles"

# No UPSTREAM URL: calls go to the sandbox mounted on this site (see demo/asgi.py). Its
# call webhooks come back to this site, to the echo agent's webhook (seed_demo gives the
# agent the same secret), so statuses, recordings and analyses show in the admin.
DEMO_WEBHOOK_SECRET = "demo-webhook-secret-not-secret"
WEBCALL_WIDGET: dict[str, object] = {
    "SANDBOX": {
        "WEBHOOK_URL": "/webcall/agents/echo/webhook",
        "WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET,
    }
}

# Daphne's runserver drops a websocket message over 1 MiB by default before the relay sees
# it: the browser gets 1006, not the relay's 4413 for a frame over MAX_FRAME_BYTES (16 KiB).
# Above 4 MiB it still does (the server's limit bounds its memory; check W004 keeps
# MAX_FRAME_BYTES below it).
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = 4 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"webcall_widget": {"handlers": ["console"], "level": "INFO"}},
}
