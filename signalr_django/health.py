"""Liveness and readiness of a worker, as ASGI applications for its HTTP `URLRouter`.

- `live`: 200 while the process serves requests at all (its event loop answers). A
  failing liveness probe means "restart me"; nothing a dependency does makes it fail.
- `ready`: 200 when this worker should be given new connections, else 503 with a JSON
  body listing why: `draining` (it is shutting down), `connection_limit` (at
  MAX_CONNECTIONS), `backplane` (the channel layer does not answer: connections made here
  would miss every message sent from other workers).

Both are plain ASGI applications: no middleware, no database, no session; they run on the
worker's event loop and read the state the worker keeps anyway. Map them on each Daphne
worker (see docs/health.md):

    from signalr_django import health

    "http": URLRouter([path("health/live", health.live), path("health/ready", health.ready),
                       *hubs, re_path(r"", django_asgi_app)])
"""

from __future__ import annotations

import json
from typing import Any

from .transports.http import drain_body, respond

JSON = "application/json"

# How long the readiness probe waits for the channel layer, at most (seconds): a probe
# timeout of 3 s or more (Kubernetes' `timeoutSeconds`) leaves room for the answer.
BACKPLANE_PROBE_TIMEOUT = 2.0


async def live(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`GET /health/live`: 200 `{"status": "live"}` while the process serves."""
    if scope["type"] != "http":
        return
    await drain_body(receive)
    await respond(send, 200, b'{"status":"live"}', JSON)


async def readiness_problems() -> list[str]:
    """Why this worker should not get new connections now (empty when it should)."""
    from .core.load import over_limit
    from .core.shutdown import is_draining
    from .lifetime.default import default_backplane

    problems: list[str] = []
    if is_draining():
        problems.append("draining")
    if over_limit():
        problems.append("connection_limit")
    backplane = default_backplane()
    if backplane is not None:
        timeout = min(backplane.request_timeout, BACKPLANE_PROBE_TIMEOUT)
        if not await backplane.probe(timeout):
            problems.append("backplane")
    return problems


async def ready(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`GET /health/ready`: 200 `{"status": "ready"}`, or 503 with `reasons`."""
    if scope["type"] != "http":
        return
    await drain_body(receive)
    problems = await readiness_problems()
    if problems:
        body = json.dumps({"status": "unavailable", "reasons": problems}).encode()
        await respond(send, 503, body, JSON, headers=[(b"retry-after", b"5")])
        return
    await respond(send, 200, b'{"status":"ready"}', JSON)
