"""The inbound side of one raw connection, whatever carries its bytes.

The transports drive a `RawSession` exactly as they drive a hub session (`open`, `feed`,
`finish`), but there is no handshake, no record separator and no keep-alive: each
WebSocket frame, and each POST body of Server-Sent Events and long polling, is one message
for the application's `on_message`, as the client sent it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..dispatch.dispatcher import ClientClosed
from ..dispatch.handler import ServerShutdown
from ..exceptions import MessageTooLargeError
from ..protocol import TransferFormat
from ..server.outbound import Outbound
from .connection import CLOSE_ERROR, CLOSE_NORMAL, CLOSE_TOO_BIG, Connection, log_failure

if TYPE_CHECKING:
    from .handler import RawConnectionHandler


def message_size(data: str | bytes, limit: int) -> int:
    """The message's size in bytes (a str is only encoded when it might be over `limit`)."""
    if isinstance(data, bytes):
        return len(data)
    if len(data) * 4 <= limit:
        return len(data)  # at most 4 bytes a character: certainly within the limit
    return len(data.encode("utf-8", "surrogatepass"))


class RawSession:
    """Messages straight to the application, for one connection."""

    # Each POST of the HTTP transports is one message (the transport reads it whole).
    message_per_request = True

    __slots__ = (
        "_connection",
        "_failure",
        "_finished",
        "connection",
        "connection_id",
        "handler",
        "limit",
        "parked",
    )

    def __init__(
        self,
        handler: RawConnectionHandler,
        *,
        connection_id: str,
        scope: dict[str, Any],
        user: Any,
        transport: str,
        formats: tuple[TransferFormat, ...],
        outbound: Outbound,
        on_abort: Callable[[], None] | None = None,
        stateful: bool = False,
    ) -> None:
        options = handler.options
        self.handler = handler
        self.connection_id = connection_id
        self.limit = options.MAXIMUM_RECEIVE_MESSAGE_SIZE
        self._connection = Connection(connection_id, options, scope, transport, outbound, user)
        if on_abort is not None:
            self._connection.on_abort(on_abort)
        # Set by `open`: until then the connection is not the application's.
        self.connection: Connection | None = None
        self._failure: BaseException | None = None
        self._finished = False
        # Set by the WebSocket read loop; raw connections are never taken over by a
        # resumed socket (no stateful reconnect), so nothing reads it.
        self.parked = False

    @property
    def close_code(self) -> int:
        """The WebSocket close code for the client."""
        return self._connection.close_code

    async def open(self) -> None:
        """Register the connection and run `on_connected`; raises ConnectionRefused."""
        connection = self._connection
        self.connection = connection
        await self.handler.connected(connection)

    async def feed(self, data: str | bytes) -> None:
        """One message from the client for `on_message`.

        Raises MessageTooLargeError past MAXIMUM_RECEIVE_MESSAGE_SIZE (the transport ends
        the connection). An exception of `on_message` is logged and closes the connection;
        it reaches `on_disconnected`.
        """
        connection = self.connection
        if connection is None or connection.aborted or connection.closed:
            return
        size = message_size(data, self.limit)
        if size > self.limit:
            raise MessageTooLargeError(
                f"The message ({size} bytes) exceeds MAXIMUM_RECEIVE_MESSAGE_SIZE "
                f"({self.limit} bytes)."
            )
        try:
            await self.handler.app.on_message(connection, data)
        except Exception as exc:
            log_failure("on_message", self.handler.app, connection)
            self._failure = exc
            connection.abort(CLOSE_ERROR)

    async def handshake_timed_out(self) -> None:
        """No handshake to time out."""

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Point aborts at the transport's reader."""
        self._connection.on_abort(callback)

    def set_outbound(self, outbound: Outbound) -> None:
        """Not used: raw connections do not resume on a new transport."""
        self._connection.outbound = outbound

    async def finish(self, failure: BaseException | None, client_gone: bool) -> None:
        """Run the disconnect path once: `on_disconnected`, then forget the connection."""
        connection = self.connection
        if connection is None or self._finished:
            return
        self._finished = True
        if failure is None:
            failure = self._failure if self._failure is not None else connection.failure
        if isinstance(failure, MessageTooLargeError):
            connection.close_code = CLOSE_TOO_BIG
        elif (
            failure is not None
            and not isinstance(failure, ClientClosed | ServerShutdown)
            and connection.close_code == CLOSE_NORMAL
        ):
            connection.close_code = CLOSE_ERROR
        connection.mark_closed()
        await self.handler.disconnected(connection, failure)
