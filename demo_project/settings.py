"""Settings of the demo chat site.

Everything that differs between a laptop and a deployment comes from the environment:

- `DJANGO_SECRET_KEY`: signs sessions, CSRF tokens and SignalR connection tokens.
- `DJANGO_DEBUG`: on unless set to `0`/`false`; DEBUG also makes Daphne serve static files.
- `DJANGO_ALLOWED_HOSTS`: comma-separated; browsers' WebSocket `Origin` is checked against it.
- `DEMO_DB`: path of the SQLite file (the end-to-end test points it at a temporary one).
- `DJANGO_STATIC_ROOT`: where `collectstatic` puts static files when DEBUG is off.
- `REDIS_URL`: use Redis for the channel layer so several Daphne processes can share it.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
REPO_DIR = BASE_DIR.parent


def _flag(name: str, default: bool) -> bool:
    """Read a boolean from the environment the way people write them in shells."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in {"", "0", "false", "no", "off"}


SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "demo-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"
)
DEBUG = _flag("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    # First, so `manage.py runserver` starts Daphne and serves the ASGI application (hubs).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "signalr_django",
    "demo_project.chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"
WSGI_APPLICATION = "demo_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
        "NAME": os.environ.get("DEMO_DB", str(REPO_DIR / "db.sqlite3")),
    }
}

if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Without Redis one Daphne process (runserver) serves the pages and the hub, so the
    # WSGI application is unused and sends cannot miss anyone; the split deployment, which
    # does use gunicorn, sets REDIS_URL.
    SILENCED_SYSTEM_CHECKS = ["signalr.W007"]

# Split deployment (scripts/split): gunicorn serves the site, Daphne workers serve the hub.
# DEMO_WORKERS lists the workers' public URLs; negotiate on the site redirects clients to the
# least loaded one, which needs a cache all processes share (Redis) for the load reports.
# Workers sharing a Redis layer also claim connection tokens in that cache.
DEMO_WORKERS = [w for w in os.environ.get("DEMO_WORKERS", "").split(",") if w]
DEMO_SITE_URL = os.environ.get("DEMO_SITE_URL", "http://127.0.0.1:8000")
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/1",
        }
    }

SIGNALR = {
    "WORKERS": DEMO_WORKERS,
    # The page on the site calls the workers cross-origin (negotiate, then the transport).
    "CORS_ALLOWED_ORIGINS": [DEMO_SITE_URL, DEMO_SITE_URL.replace("127.0.0.1", "localhost")],
    # Pings every 10 s keep idle WebSockets alive through proxies; a client that stays
    # silent for 30 s is dropped (the JS client pings too, so only dead ones are).
    "KEEP_ALIVE_INTERVAL": 10.0,
    "CLIENT_TIMEOUT_INTERVAL": 30.0,
    # The page shows hub errors; in DEBUG it shows the server's reason, never in production.
    "ENABLE_DETAILED_ERRORS": DEBUG,
    # Chat lines are short; refuse anything bigger than 16 KiB from a client.
    "MAXIMUM_RECEIVE_MESSAGE_SIZE": 16 * 1024,
}

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LOGIN_URL = "chat:index"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` gathers files for a real web server; unset for development.
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None
STATICFILES_DIRS = [
    # The official client exactly as `npm install` put it: /static/signalr/signalr.min.js.
    ("signalr", REPO_DIR / "node_modules" / "@microsoft" / "signalr" / "dist" / "browser"),
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "signalr_django": {"handlers": ["console"], "level": "INFO"},
        "demo_project": {"handlers": ["console"], "level": "INFO"},
    },
}
