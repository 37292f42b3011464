"""Settings for the benchmarks and the chaos tests: the test site, a file database
(PostgreSQL, Redis for the cache and the channel layer when several processes run, as
tests/deployment.py starts them), and a separate upstream. The demo's pages are on it too,
for a browser to visit the deployment (tests/browser/test_worker_lost.py): the widget on
``/?agent=<slug>``, its static files collected to ``BENCH_STATIC_ROOT`` for nginx."""

from __future__ import annotations

import os
from pathlib import Path

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE, TEMPLATES
from webcall_widget.channel_layers import redis_channel_layer

DEBUG = False
# The tests' canary is synchronous: it would put every request through a thread hop.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("tests.canary")]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BENCH_DATABASE"],
        # Two site processes write to it: wait for the lock rather than fail.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
if os.environ.get("BENCH_POSTGRES"):
    from urllib.parse import urlsplit

    _pg = urlsplit(os.environ["BENCH_POSTGRES"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _pg.path.lstrip("/"),
            "USER": _pg.username or "postgres",
            "HOST": _pg.hostname or "127.0.0.1",
            "PORT": _pg.port or 5432,
            "CONN_MAX_AGE": 60,
        }
    }
if os.environ.get("BENCH_REDIS"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["BENCH_REDIS"],
        }
    }
    CHANNEL_LAYERS = {"default": redis_channel_layer(os.environ["BENCH_REDIS"])}
WEBCALL_WIDGET = {
    "UPSTREAM": {
        "URL": os.environ["BENCH_UPSTREAM"],
        "FRAME_MS": int(os.environ.get("BENCH_UPSTREAM_FRAME_MS", "20")),
        # The chaos tests and bench-chaos: whether VoiceHub lets a call be joined again.
        "REJOIN": os.environ.get("BENCH_REJOIN", "auto"),
    },
    "AUDIO_FRAME_MS": int(os.environ.get("BENCH_AUDIO_FRAME_MS", "20")),
    "DRAIN_SECONDS": float(os.environ.get("BENCH_DRAIN_SECONDS", "25")),
    # The client floods on purpose, and opens many calls from one address: lift the limits
    # meant for visitors, so that the path is what is measured.
    "LIMITS": {
        "FRAMES_PER_SECOND": 1_000_000,
        "CALLS_PER_MINUTE_PER_CLIENT": 100_000,
        "CALLS_PER_MINUTE_PER_AGENT": 100_000,
        "UNCONNECTED_CALLS_PER_CLIENT": 100_000,
        "CONCURRENT_CALLS_PER_AGENT": 1_000_000,
        "CALLS_PER_DAY_PER_AGENT": 1_000_000,
    },
}
if os.environ.get("BENCH_VOICE_CALLS_PER_PROCESS"):
    WEBCALL_WIDGET["LIMITS"]["VOICE_CALLS_PER_PROCESS"] = int(  # type: ignore[index]
        os.environ["BENCH_VOICE_CALLS_PER_PROCESS"]
    )
ROOT = Path(__file__).resolve().parent.parent
ROOT_URLCONF = "demo.urls"
TEMPLATES = [{**TEMPLATES[0], "DIRS": [ROOT / "templates"]}]
STATICFILES_DIRS = [ROOT / "static"]
if os.environ.get("BENCH_STATIC_ROOT"):
    STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
# Warnings and errors, with the time; BENCH_LOG_LEVEL "INFO" adds each call's steps (the chaos
# tests: a failure's story is in the workers' logs).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"timed": {"format": "%(asctime)s %(process)d %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "timed"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {"webcall_widget": {"level": os.environ.get("BENCH_LOG_LEVEL", "WARNING")}},
}
