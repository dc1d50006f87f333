"""Test settings with a Redis channel layer (REDIS_URL); SIGNALR_TEST_LAYER picks which."""

from __future__ import annotations

import os

from .settings import *  # noqa: F403

_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_layer = os.environ.get("SIGNALR_TEST_LAYER", "pubsub")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": (
            "channels_redis.pubsub.RedisPubSubChannelLayer"
            if _layer == "pubsub"
            else "channels_redis.core.RedisChannelLayer"
        ),
        "CONFIG": {
            "hosts": [_url if _layer == "pubsub" else {"address": _url, "socket_timeout": 10}]
        },
    }
}

# The cache (load reports, connection claims) may be reached by another route than the
# layer (SIGNALR_TEST_CACHE_URL), so a test can make only the cache unreachable.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("SIGNALR_TEST_CACHE_URL") or _url.rsplit("/", 1)[0] + "/1",
        "OPTIONS": {"socket_timeout": 5, "socket_connect_timeout": 5},
    }
}

SIGNALR = {
    **SIGNALR,  # noqa: F405
    "BACKPLANE_TIMEOUT": 2.0,
    "WORKERS": [w for w in os.environ.get("SIGNALR_TEST_WORKERS", "").split(",") if w],
    "MAX_CONNECTIONS": int(os.environ.get("SIGNALR_TEST_MAX_CONNECTIONS", "0")) or None,
    "LOAD_REPORT_INTERVAL": 0.5,
    # Generous on a busy test machine: a worker only counts as missing when it is stopped.
    "QUERY_TIMEOUT": float(os.environ.get("SIGNALR_TEST_QUERY_TIMEOUT", "5")),
    "SHUTDOWN_DRAIN_TIMEOUT": float(os.environ.get("SIGNALR_TEST_DRAIN_TIMEOUT", "5")),
    "CORS_ALLOWED_ORIGINS": ["http://cors.example"],
}
