"""What a production site adds to its settings.py: the real VoiceHub, PostgreSQL, Redis for
the channel layer and the cache, and what tells Django it is behind nginx."""

from __future__ import annotations

import os

from webcall_widget.channel_layers import redis_channel_layer

DEBUG = False  # the sandbox is off with it, unless WEBCALL_WIDGET["SANDBOX"] says otherwise
ALLOWED_HOSTS = ["www.example.com"]

# PostgreSQL: the call caps lock the agent's row, and several processes write at once.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "yourproject",
        "USER": "yourproject",
        "PASSWORD": os.environ["DATABASE_PASSWORD"],
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "CONN_MAX_AGE": 60,
    }
}

# Redis: a call's messages reach whichever process holds it, and every process sees the
# same rate limits and the same relay leases (checks webcall_widget.E007 and E010).
CHANNEL_LAYERS = {"default": redis_channel_layer("redis://127.0.0.1:6379/0")}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/1",
    }
}

# nginx in front: the visitor's address is one hop from the right of X-Forwarded-For, and
# a request that reached nginx over HTTPS says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
STATIC_ROOT = "/srv/yourproject/static"  # manage.py collectstatic; nginx serves it

WEBCALL_WIDGET = {
    "UPSTREAM": {"URL": "https://voicehub.dataqueue.ai"},
    "TRUSTED_PROXIES": 1,
    "METRICS": {"TOKEN": os.environ["WEBCALL_METRICS_TOKEN"]},
}
