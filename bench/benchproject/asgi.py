"""ASGI entry point for Daphne: the package's hubs and the plain Channels consumers.

``hubs/echo`` and ``ws/consumer`` serve the echo and idle scenarios; ``hubs/broadcast`` and
``ws/broadcast/<group>`` the broadcast scenario (which runs two of these processes on Redis).

Until ``signalr_django.routing.map_hub`` exists this still imports (serving only the consumer)
so the harness can be checked against the references on its own.
"""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchproject.settings")

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import BroadcastConsumer, EchoConsumer  # noqa: E402


def hub_patterns() -> list[Any]:
    """The hubs' URL patterns (negotiate + WebSocket), or none while the package lacks them."""
    if "signalr_django" not in settings.INSTALLED_APPS:
        print("bench: hub not served (signalr_django.routing not available)", file=sys.stderr)
        return []
    try:
        from signalr_django.routing import map_hub

        from .hubs import BroadcastHub, EchoHub
    except ImportError as exc:
        print(f"bench: hub not served (signalr_django not ready: {exc})", file=sys.stderr)
        return []
    return [map_hub("hubs/echo", EchoHub), map_hub("hubs/broadcast", BroadcastHub)]


HUB_PATTERNS = hub_patterns()
"""Empty when the package is not ready; ``run.py`` checks this before measuring the hub."""

application = ProtocolTypeRouter(
    {
        "http": URLRouter(HUB_PATTERNS),
        "websocket": URLRouter(
            [
                *HUB_PATTERNS,
                path("ws/consumer", EchoConsumer.as_asgi()),
                path("ws/broadcast", BroadcastConsumer.as_asgi()),  # a sender: in no group
                path("ws/broadcast/<str:group>", BroadcastConsumer.as_asgi()),
            ]
        ),
    }
)
