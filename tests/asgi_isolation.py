"""ASGI application for the isolation tests: the hub hostile clients attack.

Kept apart from `tests.asgi` so the isolation tests run on a Daphne of their own (memory
figures and keep-alive timing belong to one scenario) and add no route to the shared one.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

get_asgi_application()

from signalr_django import map_hub  # noqa: E402

from .testapp.hubs import IsolationHub  # noqa: E402

hubs = [map_hub("hubs/isolation", IsolationHub)]

application = ProtocolTypeRouter({"http": URLRouter(hubs), "websocket": URLRouter(hubs)})
