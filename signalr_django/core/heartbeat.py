"""One timer per process, not one per connection, drives keep-alive and client timeouts.

Every second the heartbeat visits the connections that are due: it queues a Ping on each
connection whose last Ping is older than the keep-alive interval, and aborts connections that
have been silent for longer than the client timeout (counted only after the client's first
Ping, as ASP.NET Core does). A per-connection timer would cost a handle and a wake-up per
connection; this costs one task per event loop, and it exits when no connection is left.

A tick visits only the connections due in that second, not all of them: each connection
sits in a slot of a timing wheel (one slot per second) for the earliest moment anything can
be due for it (its next Ping, its client timeout, its authentication expiry) and is filed
again after each visit. An idle connection is visited once per keep-alive interval, so with
50,000 connections and the default 15 s a tick touches ~3,300 of them instead of all
50,000. Messages received do not refile a connection (that would cost every message a
dictionary update); a visit finds the real state and refiles, so a timeout is still found
within a second of its due time. Stateful-reconnect connections are visited every tick,
because their Acks are due as soon as messages arrive.

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
        # The timing wheel: second -> connections due then, and where each connection is.
        self._wheel: dict[int, dict[int, HubConnection]] = {}
        self._slot: dict[int, int] = {}
        self._cursor: int | None = None  # the last second a tick has visited
        self._task: asyncio.Task[None] | None = None

    def add(self, connection: HubConnection) -> None:
        """Start watching a connection; starts the clock if it was idle."""
        self.watch(connection, time.monotonic() + TICK)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def watch(self, connection: HubConnection, first_visit: float) -> None:
        """Start watching a connection, first looking at it at `first_visit` (monotonic).

        Does not start the clock: `add` does; tests call this and drive `tick` themselves.
        """
        self.connections[id(connection)] = connection
        self._file(connection, first_visit)

    def remove(self, connection: HubConnection) -> None:
        """Stop watching a connection."""
        key = id(connection)
        self.connections.pop(key, None)
        second = self._slot.pop(key, None)
        if second is not None:
            bucket = self._wheel.get(second)
            if bucket is not None:
                bucket.pop(key, None)

    def _file(self, connection: HubConnection, due: float) -> None:
        second = int(due)
        if self._cursor is not None and second <= self._cursor:
            second = self._cursor + 1
        key = id(connection)
        self._slot[key] = second
        bucket = self._wheel.get(second)
        if bucket is None:
            bucket = self._wheel[second] = {}
        bucket[key] = connection

    async def _run(self) -> None:
        while self.connections:
            await asyncio.sleep(TICK)
            self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        """Visit every connection due by `now` (public so tests can drive the clock)."""
        second = int(now)
        first = min(self._wheel, default=second) if self._cursor is None else self._cursor + 1
        self._cursor = second
        pings: dict[str, Any] = {}
        wall = time.time()
        for due in range(first, second + 1):
            bucket = self._wheel.pop(due, None)
            if not bucket:
                continue
            for key, connection in bucket.items():
                del self._slot[key]
                next_due = self._visit(connection, now, wall, pings)
                if next_due is not None:
                    self._file(connection, next_due)

    def _visit(
        self, connection: HubConnection, now: float, wall: float, pings: dict[str, Any]
    ) -> float | None:
        """Do what is due for one connection; when to look again (None: stop watching)."""
        if connection.closed:
            self.connections.pop(id(connection), None)
            return None
        soon = now + TICK
        reconnect = connection.reconnect
        if reconnect is not None:
            if connection.detached:
                return soon  # the transport is away; the reaper decides its fate
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
            return None
        options = connection.options
        timeout = options.CLIENT_TIMEOUT_INTERVAL
        if (
            connection.client_pinged
            and connection.active_invocations == 0
            and now - connection.last_received > timeout
        ):
            detail = ""
            if options.ENABLE_DETAILED_ERRORS:
                detail = f" TimeoutException: {CLIENT_TIMEOUT_DETAIL}"
            connection.abort(
                Close(f"Connection closed with an error.{detail}", allow_reconnect=True),
                "timeout",
            )
            return None
        keep_alive = options.KEEP_ALIVE_INTERVAL
        due = now + max(keep_alive, TICK)
        if connection.transport != "LongPolling":
            if now - connection.last_ping_sent >= keep_alive:
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
            due = connection.last_ping_sent + keep_alive
        if connection.client_pinged:
            # Busy with an invocation, a silent client is not timed out: look each second.
            due = min(
                due, soon if connection.active_invocations else connection.last_received + timeout
            )
        if expires is not None:
            due = min(due, now + (expires - wall))
        if reconnect is not None:
            due = soon
        return due


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
