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
    """Close every connection of this process (hubs allowing reconnects); returns how many."""
    from ..conf import global_options
    from ..lifetime.manager import _managers
    from ..raw.handler import close_raw_connections
    from ..raw.handler import connection_count as raw_count
    from .load import withdraw

    if timeout is None:
        timeout = global_options().SHUTDOWN_DRAIN_TIMEOUT
    await withdraw()
    connections = [c for m in _managers.values() for c in list(m.connections.values())]
    for connection in connections:
        connection.abort(Close(allow_reconnect=True))
    raw = close_raw_connections()  # connection handlers: a normal close, nothing to say
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and (
        any(m.connections for m in _managers.values()) or raw_count()
    ):
        await asyncio.sleep(0.02)
    closed = len(connections) + len(raw)
    if closed:
        logger.info("Closed %d connection(s) for shutdown", closed)
    return closed
