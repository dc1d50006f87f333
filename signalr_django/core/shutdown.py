"""Graceful shutdown: on SIGTERM, every connection gets a Close that allows reconnecting.

Daphne runs on Twisted, which closes the sockets on shutdown before the applications can
say goodbye; clients would then see an abrupt disconnect, or (when the application is
cancelled first) a plain Close that the official clients treat as final. A "before
shutdown" trigger runs first: it closes every hub connection with
`{"type":7,"allowReconnect":true}` and waits for them (at most SHUTDOWN_DRAIN_TIMEOUT), so
clients with automatic reconnect move to another worker.
"""

from __future__ import annotations

import asyncio
import logging

from ..protocol import Close

logger = logging.getLogger(__name__)

_installed = False


def install() -> None:
    """Register the drain to run before the server shuts down (Daphne; idempotent)."""
    global _installed
    if _installed:
        return
    from ..server.daphne import before_shutdown

    _installed = before_shutdown(drain)


async def drain(timeout: float | None = None) -> int:
    """Close every hub connection of this process, allowing reconnects; returns how many."""
    from ..conf import global_options
    from ..lifetime.manager import _managers
    from .load import withdraw

    if timeout is None:
        timeout = global_options().SHUTDOWN_DRAIN_TIMEOUT
    await withdraw()
    connections = [c for m in _managers.values() for c in list(m.connections.values())]
    for connection in connections:
        connection.abort(Close(allow_reconnect=True))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and any(m.connections for m in _managers.values()):
        await asyncio.sleep(0.02)
    if connections:
        logger.info("Closed %d hub connection(s) for shutdown", len(connections))
    return len(connections)
