"""Settings for the test project (in-memory channel layer, SQLite)."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "signalr-django-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "signalr_django",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.testapp.urls"
ASGI_APPLICATION = "tests.asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SIGNALR_TEST_DB", str(BASE_DIR / ".test-db.sqlite3")),
        "TEST": {"NAME": os.environ.get("SIGNALR_TEST_DB", str(BASE_DIR / ".test-db.sqlite3"))},
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
# One process with the in-memory layer is what these settings are for.
SILENCED_SYSTEM_CHECKS = ["signalr.W002"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SIGNALR = {
    "CORS_ALLOWED_ORIGINS": ["http://cors.example"],
    # Counters for the Prometheus endpoint (tests/e2e/test_operations.py).
    "METRICS": os.environ.get("SIGNALR_TEST_METRICS") == "1",
    # The REST management API (tests/unit/test_rest_*.py, tests/e2e/test_rest_api.py).
    "REST_API": {
        "ACCESS_KEY": "rest-api-test-key",
        "HUBS": {"caps": "tests.testapp.hubs.CapsHub", "Test": "tests.testapp.hubs.TestHub"},
    },
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "signalr_django": {
            "handlers": ["console"],
            "level": os.environ.get("SIGNALR_TEST_LOG_LEVEL", "WARNING"),
        },
        # The connection lifecycle log, on demand (tests/e2e/test_operations.py).
        "signalr_django.connections": {
            "level": os.environ.get("SIGNALR_TEST_CONNECTION_LOG", "WARNING")
        },
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}
