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

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
