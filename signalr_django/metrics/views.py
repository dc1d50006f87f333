"""`metrics`: the Prometheus scrape endpoint of one worker, as an ASGI application.

Map it on each Daphne worker, in the HTTP `URLRouter` of `asgi.py`, before the catch-all
Django route; each worker answers for itself, so Prometheus scrapes every worker:

    from signalr_django.metrics.views import metrics

    "http": URLRouter([path("metrics", metrics), *hubs, re_path(r"", django_asgi_app)])

It is a plain ASGI application, not a Django view: a scrape then goes through no
middleware, opens no database connection, and runs on the worker's event loop, where the
connections it counts live. The exposition is prometheus_client's own (text 0.0.4, or
OpenMetrics when the scraper asks for it), from its default registry, so the process
metrics (`process_*`, `python_gc_*`) and the project's own metrics come along.
"""

from __future__ import annotations

from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.exposition import choose_encoder
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "signalr_django.metrics.views needs prometheus-client: "
        'pip install "signalr-django[metrics]".'
    ) from exc

from ..transports.http import drain_body, respond
from .collector import SignalRCollector

_registered: CollectorRegistry | None = None


def registry() -> CollectorRegistry:
    """prometheus_client's default registry, with the `signalr_*` collector added once."""
    global _registered
    if _registered is None:
        REGISTRY.register(SignalRCollector())
        _registered = REGISTRY
    return _registered


async def metrics(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`GET /metrics`: this worker's metrics in Prometheus' exposition format."""
    if scope["type"] != "http":
        return
    await drain_body(receive)
    if scope.get("method", "GET") not in ("GET", "HEAD"):
        await respond(send, 405, b"Method Not Allowed", headers=[(b"allow", b"GET")])
        return
    accept = ""
    for key, value in scope.get("headers", ()):
        if key == b"accept":
            accept = bytes(value).decode("latin-1")
    encoder, content_type = choose_encoder(accept)
    body = encoder(registry())
    await respond(send, 200, body if scope.get("method") != "HEAD" else b"", content_type)
