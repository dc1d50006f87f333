"""ASGI entry point: Daphne serves the pages and the chat hub from one process.

`python -m daphne demo_project.asgi:application` (or `python manage.py runserver`, which
starts Daphne because "daphne" is the first installed app).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

from django.core.asgi import get_asgi_application

# Set up Django (apps, settings) before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import re_path  # noqa: E402

from signalr_django import map_hub  # noqa: E402

from .chat.hubs import ChatHub  # noqa: E402

# Daphne does not serve static files on its own; in DEBUG let Django's handler do it so
# the page can load signalr.min.js from node_modules without `collectstatic`.
http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app

application = ProtocolTypeRouter(
    {
        # Negotiate is an HTTP POST to hubs/chat/negotiate; everything else is Django's.
        "http": AuthMiddlewareStack(
            URLRouter([map_hub("hubs/chat", ChatHub), re_path(r"", http_app)])
        ),
        # The session cookie rides on the WebSocket upgrade, so the hub sees the logged-in user.
        "websocket": AuthMiddlewareStack(URLRouter([map_hub("hubs/chat", ChatHub)])),
    }
)
