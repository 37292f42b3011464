"""Settings for the demo site that ``make run`` serves at http://127.0.0.1:8000.

Development settings: DEBUG on, SQLite, in-memory channel layer, and the built-in VoiceHub
sandbox as the upstream (mounted at /voicehub-sandbox/ by demo/asgi.py).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

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
    "demo",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
ASGI_APPLICATION = "demo.asgi.application"

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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE", BASE_DIR / "demo.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
    }
}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("ar", "العربية")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
