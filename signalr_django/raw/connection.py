"""The application's side of a raw connection: `Connection` and `ConnectionHandler`.

A connection handler is written as three callbacks rather than one `run(connection)` loop
with `receive()`: the transports already push each message to a session as it arrives (a
WebSocket frame, a POST body), so a callback costs no queue, no extra task and no
hand-off per message, and a slow `on_message` holds back reading from that client (the
transport reads the next message only when the callback returned), which is the
backpressure a `receive()` loop would give. It is also the shape Channels developers know
from `AsyncWebsocketConsumer` (`connect`, `receive`, `disconnect`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.logs import safe_id, warn_limited

if TYPE_CHECKING:
    from ..conf import HubOptions
    from ..server.outbound import Outbound

logger = logging.getLogger(__name__)

# Past this many bytes waiting for the client, `send` yields once to the event loop so the
# transport can flush (as hub connections do).
DRAIN_THRESHOLD = 64 * 1024

# WebSocket close codes: a normal end, then 4000 + the RFC 6455 code for an inbound message
# over MAXIMUM_RECEIVE_MESSAGE_SIZE (1009), a client that stopped reading its messages
# (OUTBOUND_BUFFER_LIMIT; 1008) and a failing handler (1011). The 4000 range because
# Daphne (autobahn) lets an application close with 1000 or 3000-4999 only.
CLOSE_NORMAL = 1000
CLOSE_POLICY = 4008
CLOSE_TOO_BIG = 4009
CLOSE_ERROR = 4011

SERVER_SENT_EVENTS = "ServerSentEvents"


class SlowConsumerError(Exception):
    """The client did not take its messages: OUTBOUND_BUFFER_LIMIT bytes waited for it."""


class Connection:
    """One raw connection: its identity, and the one write path to its client.

    `send` queues a message on the connection's outbound queue and never waits for the
    client: a client that does not take its messages is closed once OUTBOUND_BUFFER_LIMIT
    bytes wait for it, as for hub connections. A `str` is sent as a text message, `bytes`
    as a binary one (WebSocket frames keep their type; long polling carries bytes, and the
    client reads them in the transfer format it started with; Server-Sent Events carry text
    only, so bytes must be UTF-8 there). Sends after the connection closed are dropped.
    """

    __slots__ = (
        "__weakref__",
        "_abort_callback",
        "_closed",
        "aborted",
        "auth_expires",
        "close_code",
        "connection_id",
        "failure",
        "items",
        "options",
        "outbound",
        "scope",
        "transport",
        "user",
    )

    def __init__(
        self,
        connection_id: str,
        options: HubOptions,
        scope: dict[str, Any],
        transport: str,
        outbound: Outbound,
        user: Any = None,
    ) -> None:
        self.connection_id = connection_id
        self.options = options
        self.scope = scope
        self.transport = transport
        self.outbound = outbound
        self.user = user
        # Whatever the application wants to keep with the connection (ASP.NET's Items).
        self.items: dict[Any, Any] = {}
        self.aborted = False
        self.close_code = CLOSE_NORMAL
        # Why the server ended the connection, for `on_disconnected` (None: a normal close).
        self.failure: Exception | None = None
        self._closed = False
        self._abort_callback: Callable[[], None] | None = None
        # Unused: CLOSE_ON_AUTHENTICATION_EXPIRATION is a hub feature (refused when mapped);
        # kept so transports can renew it on any connection without asking which kind.
        self.auth_expires: float | None = None

    def __repr__(self) -> str:
        return f"<Connection {safe_id(self.connection_id)} over {self.transport}>"

    @property
    def closed(self) -> bool:
        """True once the connection ended or is ending (sends are dropped)."""
        return self._closed or self.aborted

    def send_nowait(self, data: str | bytes | bytearray | memoryview) -> None:
        """Queue one message for the client; never waits (usable from any coroutine).

        Raises TypeError for anything but `str` or bytes-like data, and ValueError for
        bytes that are not UTF-8 on Server-Sent Events (a text-only transport).
        """
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        elif not isinstance(data, str | bytes):
            raise TypeError(f"A connection sends str or bytes, not {type(data).__name__}.")
        if self._closed or self.aborted:
            return
        if self.transport == SERVER_SENT_EVENTS and isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(
                    "Server-Sent Events carry text only: send str, or UTF-8 bytes."
                ) from None
        if not data and self.transport != "WebSockets":
            return  # an empty message has no representation in a poll or an event stream
        pending = self.outbound.write(data)
        limit = self.options.OUTBOUND_BUFFER_LIMIT
        if limit and pending > limit:
            warn_limited(
                "slow-reader",
                "Closed connection %s: its client did not keep up, %d bytes waited for it "
                "(limit %d, OUTBOUND_BUFFER_LIMIT).",
                safe_id(self.connection_id),
                pending,
                limit,
            )
            self.failure = SlowConsumerError(
                f"More than {limit} bytes were waiting for the client (OUTBOUND_BUFFER_LIMIT)."
            )
            self.abort(CLOSE_POLICY)

    async def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """`send_nowait`, then one yield to the event loop when the client is behind.

        The yield lets the transport flush before the sender goes on; it never waits for
        the client itself (a client that falls too far behind is closed instead).
        """
        self.send_nowait(data)
        if self.outbound.pending() > DRAIN_THRESHOLD:
            await asyncio.sleep(0)

    def close(self) -> None:
        """End the connection from the server side (a normal close for the client).

        Returns at once; `on_disconnected` runs once the transport has let go.
        """
        self.abort(CLOSE_NORMAL)

    # -- for the transports ----------------------------------------------------------------

    def abort(self, code: int = CLOSE_NORMAL) -> None:
        """End the connection; `code` is the WebSocket close code the client gets."""
        if self.aborted or self._closed:
            return
        self.aborted = True
        self.close_code = code
        if self._abort_callback is not None:
            self._abort_callback()

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Set what `abort` does for this transport (interrupt its read loop)."""
        self._abort_callback = callback

    def mark_closed(self) -> None:
        """Refuse further writes (the transport is gone)."""
        self._closed = True


class ConnectionHandler:
    """Subclass and map with `map_connection(route, MyHandler)`; one instance per route.

    Override any of the three coroutines. They run in order for each connection:
    `on_connected` once, `on_message` for each message in the order the client sent them
    (the next message is read when the previous call returned), `on_disconnected` once at
    the end, with None for a normal close (by either side) and the exception otherwise.
    If `on_connected` raises, the connection is closed and `on_disconnected` is not called;
    if `on_message` raises, the error is logged and the connection closed with it.

    Options come from an `options` class attribute and `settings.SIGNALR` as for hubs, and
    `@authorize` on the class restricts who may connect. `connections` maps the ids of this
    route's connections held by this worker to their `Connection` (worker-local).
    """

    options: dict[str, Any] | None = None
    connections: Mapping[str, Connection] = {}

    async def on_connected(self, connection: Connection) -> None:
        """A client connected; sending is allowed from here on."""

    async def on_message(self, connection: Connection, data: str | bytes) -> None:
        """One message: `str` for text, `bytes` for binary.

        Over WebSockets a message is one frame, text or binary as sent. Over Server-Sent
        Events and long polling it is one POST body: `str` when the request's Content-Type
        is `text/*` (the JavaScript client's for strings), `bytes` otherwise.
        """

    async def on_disconnected(self, connection: Connection, exc: Exception | None) -> None:
        """The connection ended; `exc` is None for a normal close."""


def log_failure(what: str, handler: ConnectionHandler, connection: Connection) -> None:
    """Log an application callback's exception with its traceback."""
    logger.exception(
        "%s of %s failed (connection %s)",
        what,
        type(handler).__qualname__,
        safe_id(connection.connection_id),
    )
