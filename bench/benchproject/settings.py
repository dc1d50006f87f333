"""Settings for the benchmark project: production-like (DEBUG off), nothing but Channels.

Both Daphne targets (the hub and the plain consumer) run with exactly these settings, so any
difference between them is the package's.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("BENCH_SECRET_KEY", "bench-only-not-secret-" + "x" * 40)
DEBUG = False
ALLOWED_HOSTS = ["*"]


def _package_ready() -> bool:
    """Whether ``signalr_django`` is complete enough to install (it is developed alongside).

    The routing module is the last piece the hub needs; before it exists the app is left out
    so that the consumer target can still be measured. ``BENCH_WITHOUT_HUB=1`` forces that.
    """
    if os.environ.get("BENCH_WITHOUT_HUB") == "1":
        return False
    try:
        return importlib.util.find_spec("signalr_django.routing") is not None
    except ImportError:
        return False


INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    *(["signalr_django"] if _package_ready() else []),
]

MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.benchproject.urls"
ASGI_APPLICATION = "bench.benchproject.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), "signalr_django_bench.sqlite3"),
    }
}


LAYER_BACKENDS = {
    "memory": "channels.layers.InMemoryChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "redis": "channels_redis.core.RedisChannelLayer",
}


def _channel_layers() -> dict[str, dict[str, object]]:
    """The channel layer picked by ``BENCH_CHANNEL_LAYER`` (``memory`` unless set).

    The echo and idle scenarios run one process and keep the in-memory layer. The broadcast
    scenario runs two processes that must reach each other, so ``bench/broadcast.py`` picks a
    Redis layer with ``BENCH_REDIS_URL``. ``BENCH_REDIS_MAX_CONNECTIONS`` passes a
    ``max_connections`` host option to channels_redis; it is left out by default because the
    defaults are what a Channels project gets unless it knows to raise the pool limit.
    """
    kind = os.environ.get("BENCH_CHANNEL_LAYER", "memory")
    if kind not in LAYER_BACKENDS:
        raise ValueError(f"BENCH_CHANNEL_LAYER={kind!r}; expected one of {sorted(LAYER_BACKENDS)}")
    if kind == "memory":
        return {"default": {"BACKEND": LAYER_BACKENDS[kind]}}
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    host: str | dict[str, object] = url
    max_connections = os.environ.get("BENCH_REDIS_MAX_CONNECTIONS")
    if max_connections:
        host = {"address": url, "max_connections": int(max_connections)}
    return {"default": {"BACKEND": LAYER_BACKENDS[kind], "CONFIG": {"hosts": [host]}}}


CHANNEL_LAYERS = _channel_layers()

# The `*-metrics` targets count for the Prometheus endpoint (BENCH_METRICS=1); the others
# run with the package's default, off.
SIGNALR = {"METRICS": os.environ.get("BENCH_METRICS") == "1"}

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
