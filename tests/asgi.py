"""ASGI application of the test project: the test hubs plus the Django views."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import re_path

django_asgi_app = get_asgi_application()

from signalr_django import lifespan, map_connection, map_hub  # noqa: E402

if os.environ.get("SIGNALR_TEST_GENERIC_PATH"):
    # Serve every connection through the generic ASGI path (what servers other than Daphne
    # get): the Daphne adapter reports that it cannot be used.
    from signalr_django.server import daphne as _daphne

    _daphne.websocket_outbound = lambda send: None  # type: ignore[assignment]
    _daphne.http_backlog = lambda send: None  # type: ignore[assignment]

from .testapp import endpoints  # noqa: E402
from .testapp.connections import (  # noqa: E402
    AuthEchoConnection,
    ControlConnection,
    EchoConnection,
    RefusingConnection,
)
from .testapp.hubs import (  # noqa: E402
    AuthHub,
    CapsHub,
    DetailedHub,
    NoWebSocketsHub,
    StatefulHub,
    TestHub,
    WatchHub,
    WebSocketsOffHub,
)

hubs = [
    *endpoints.ROUTES,
    map_hub("hubs/test", TestHub),
    map_hub("hubs/detailed", DetailedHub),
    map_hub("hubs/auth", AuthHub),
    map_hub("hubs/watch", WatchHub),
    map_hub("hubs/stateful", StatefulHub),
    map_hub("hubs/caps", CapsHub),
    # Connection handlers: raw connections, no hub protocol.
    map_connection("connections/echo", EchoConnection),
    map_connection("connections/echo-ws", EchoConnection, TRANSPORTS=("WebSockets",)),
    map_connection("connections/echo-capped", EchoConnection, OUTBOUND_BUFFER_LIMIT=64 * 1024),
    map_connection("connections/control", ControlConnection),
    map_connection("connections/refusing", RefusingConnection),
    map_connection("connections/auth", AuthEchoConnection),
]

# Served over HTTP only: the WebSocket router below does not route them, so upgrades fail
# (as behind a proxy that forbids WebSockets) or are never offered.
http_only = [
    map_hub("hubs/nows", NoWebSocketsHub),
    map_hub("hubs/nows-off", WebSocketsOffHub),
]

# Hub filters (tests/e2e/test_filters.py).
from .testapp.hubs import FilterTestHub  # noqa: E402

hubs.append(map_hub("hubs/filters", FilterTestHub))

# A hub with a typed client interface (tests/e2e/test_typescript.py).
from .testapp.typed_hubs import TypedChatHub  # noqa: E402

hubs.append(map_hub("hubs/typed", TypedChatHub))

# Presence hooks (tests/e2e/test_presence.py).
from .testapp.hubs import PresenceHooksHub  # noqa: E402

hubs.append(map_hub("hubs/presence", PresenceHooksHub))

# Sync hub methods and typed clients (tests/e2e/test_sync_hub.py).
from .testapp.sync_hubs import SyncTestHub, TypedTestHub  # noqa: E402

hubs.append(map_hub("hubs/sync", SyncTestHub))
hubs.append(map_hub("hubs/sync-typed", TypedTestHub))

# Operations endpoints of each worker (tests/e2e/test_operations.py): plain ASGI apps.
from django.urls import path  # noqa: E402

from signalr_django import health  # noqa: E402
from signalr_django.metrics.views import metrics  # noqa: E402

operations = [
    path("metrics", metrics),
    path("health/live", health.live),
    path("health/ready", health.ready),
]

routes = {
    "http": AuthMiddlewareStack(
        URLRouter([*operations, *hubs, *http_only, re_path(r"", django_asgi_app)])
    ),
    "websocket": AuthMiddlewareStack(URLRouter(hubs)),
    # Servers other than Daphne: load reports and the graceful drain (Daphne ignores it).
    "lifespan": lifespan,
}
if os.environ.get("SIGNALR_TEST_NO_LIFESPAN"):
    # What a project that does not route lifespan gets (tests/e2e/test_uvicorn.py).
    del routes["lifespan"]

application = ProtocolTypeRouter(routes)
