"""ASGI entry point for Daphne: the package's hub at ``hubs/echo``, the consumer at ``ws/consumer``.

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

from .consumers import EchoConsumer  # noqa: E402


def hub_patterns() -> list[Any]:
    """The hub's URL pattern (negotiate + WebSocket), or none while the package lacks it."""
    if "signalr_django" not in settings.INSTALLED_APPS:
        print("bench: hub not served (signalr_django.routing not available)", file=sys.stderr)
        return []
    try:
        from signalr_django.routing import map_hub

        from .hubs import EchoHub
    except ImportError as exc:
        print(f"bench: hub not served (signalr_django not ready: {exc})", file=sys.stderr)
        return []
    return [map_hub("hubs/echo", EchoHub)]


HUB_PATTERNS = hub_patterns()
"""Empty when the package is not ready; ``run.py`` checks this before measuring the hub."""

application = ProtocolTypeRouter(
    {
        "http": URLRouter(HUB_PATTERNS),
        "websocket": URLRouter([*HUB_PATTERNS, path("ws/consumer", EchoConsumer.as_asgi())]),
    }
)
