"""Settings for site processes started by tests/test_multiprocess.py: Redis for the cache
and the channel layer, one database shared by the processes: a SQLite file, or on
PostgreSQL the test run's own test database."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, MIDDLEWARE, TEST_DB
from webcall_widget.channel_layers import redis_channel_layer

if TEST_DB == "postgres":
    DATABASES = {"default": {**DATABASES["default"], "NAME": os.environ["MULTI_DATABASE"]}}
else:
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
# As docs/deployment.md says: connections that outlast channels_redis's blocking receive, so that
# a quiet call (one waiting for its visitor to come back) keeps its mailbox.
CHANNEL_LAYERS = {
    "default": redis_channel_layer(os.environ["MULTI_REDIS"], prefix=os.environ["MULTI_PREFIX"])
}
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("tests.canary")]
WEBCALL_WIDGET = {
    "UPSTREAM": {"URL": os.environ["MULTI_SANDBOX"]},
    # Three new calls a minute per client; calls the tests create without connecting them
    # are not what is counted here.
    "LIMITS": {"CALLS_PER_MINUTE_PER_CLIENT": 3, "UNCONNECTED_CALLS_PER_CLIENT": 10},
    "TRUSTED_PROXIES": 1,  # tests name their client in X-Forwarded-For
}
