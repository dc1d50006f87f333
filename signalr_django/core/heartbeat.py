"""One timer per process, not one per connection, drives keep-alive and client timeouts.

Every second the heartbeat walks the live connections: it queues a Ping on each connection
whose last Ping is older than the keep-alive interval, and aborts connections that have
been silent for longer than the client timeout (counted only after the client's first
Ping, as ASP.NET Core does). A per-connection timer would cost a handle and a wake-up per
connection; this costs one task per event loop, and it exits when no connection is left.

A tick never awaits: it only queues records on each connection's own outbound queue
(`HubConnection.write`), so no connection, however slow its client, can delay another's
Ping. A client that stopped reading is closed by its outbound cap, not waited for.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

from ..protocol import Ack, Close, Ping
from .logs import safe_id

if TYPE_CHECKING:
    from .connection import HubConnection

logger = logging.getLogger(__name__)

TICK = 1.0
PING = Ping()
AUTH_EXPIRED = Close(allow_reconnect=True)
CLIENT_TIMEOUT_DETAIL = (
    "Client hasn't sent a message/ping within the configured ClientTimeoutInterval."
)


class Heartbeat:
    """The keep-alive and timeout clock of one event loop."""

    def __init__(self) -> None:
        self.connections: dict[int, HubConnection] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, connection: HubConnection) -> None:
        """Start watching a connection; starts the clock if it was idle."""
        self.connections[id(connection)] = connection
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, connection: HubConnection) -> None:
        """Stop watching a connection."""
        self.connections.pop(id(connection), None)

    async def _run(self) -> None:
        while self.connections:
            await asyncio.sleep(TICK)
            self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        """One pass over the connections (public so tests can drive the clock)."""
        pings: dict[str, Any] = {}
        wall = time.time()
        for connection in list(self.connections.values()):
            if connection.closed:
                continue
            reconnect = connection.reconnect
            if reconnect is not None:
                if connection.detached:
                    continue  # the transport is away; the reaper decides its fate
                ack = reconnect.ack_due()
                if ack is not None:
                    try:
                        connection.send_nowait(Ack(ack))
                    except Exception:
                        logger.debug(
                            "Ack to %s failed", safe_id(connection.connection_id), exc_info=True
                        )
            expires = connection.auth_expires
            if expires is not None and wall >= expires:
                # ASP.NET Core (CloseOnAuthenticationExpiration) ends such a connection with
                # a Close without an error that lets the client reconnect (and sign in again).
                connection.abort(AUTH_EXPIRED, "auth_expired")
                continue
            options = connection.options
            if (
                connection.client_pinged
                and connection.active_invocations == 0
                and now - connection.last_received > options.CLIENT_TIMEOUT_INTERVAL
            ):
                detail = ""
                if options.ENABLE_DETAILED_ERRORS:
                    detail = f" TimeoutException: {CLIENT_TIMEOUT_DETAIL}"
                connection.abort(
                    Close(f"Connection closed with an error.{detail}", allow_reconnect=True),
                    "timeout",
                )
                continue
            if (
                connection.transport != "LongPolling"
                and now - connection.last_ping_sent >= options.KEEP_ALIVE_INTERVAL
            ):
                connection.last_ping_sent = now
                protocol = connection.protocol
                ping = pings.get(protocol.name)
                if ping is None:
                    ping = pings[protocol.name] = protocol.encode(PING)
                try:
                    connection.write(ping, False)
                except Exception:
                    logger.debug(
                        "Ping to %s failed", safe_id(connection.connection_id), exc_info=True
                    )


_heartbeats: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Heartbeat] = (
    weakref.WeakKeyDictionary()
)


def get_heartbeat() -> Heartbeat:
    """The heartbeat of the running event loop."""
    loop = asyncio.get_running_loop()
    heartbeat = _heartbeats.get(loop)
    if heartbeat is None:
        heartbeat = Heartbeat()
        _heartbeats[loop] = heartbeat
    return heartbeat


def slow_consumer_close(options: Any, limit: int) -> Close:
    """The Close for a client that stopped reading (reconnecting is allowed)."""
    detail = ""
    if options.ENABLE_DETAILED_ERRORS:
        detail = (
            f" SlowConsumerError: More than {limit} bytes are waiting for the client to read them."
        )
    return Close(f"Connection closed with an error.{detail}", allow_reconnect=True)
