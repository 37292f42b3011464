"""Settings for site processes started by tests/test_multiprocess.py: Redis for the cache
and the channel layer, one SQLite file shared by the processes."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["MULTI_DATABASE"],
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["MULTI_REDIS"],
        "KEY_PREFIX": os.environ["MULTI_PREFIX"],
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["MULTI_REDIS"]], "prefix": os.environ["MULTI_PREFIX"]},
    }
}
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("tests.canary")]
WEBCALL_WIDGET = {
    "UPSTREAM": {"URL": os.environ["MULTI_SANDBOX"]},
    "LIMITS": {"CALLS_PER_MINUTE_PER_CLIENT": 3},
    "TRUSTED_PROXIES": 1,  # tests name their client in X-Forwarded-For
}
