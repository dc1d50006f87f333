"""The inbound side of one hub connection, whatever carries its bytes.

A transport (a WebSocket, or the POST requests of Server-Sent Events and long polling)
feeds chunks to a `HubSession`. Until the handshake completes the session buffers raw bytes
up to the first 0x1E (the handshake is JSON text for every protocol); what follows belongs
to the chosen protocol and goes through that protocol's framer to the dispatcher.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..core.connection import HubConnection
from ..core.logs import safe_id
from ..core.reconnect import MessageBuffer
from ..exceptions import HandshakeError, ProtocolError
from ..metrics.counters import METRICS
from ..protocol import TransferFormat
from ..protocol.framing import BinaryFramer, TextFramer
from ..protocol.handshake import (
    GENERIC_HANDSHAKE_ERROR,
    HANDSHAKE_CANCELED,
    HANDSHAKE_OK,
    handshake_error,
)
from ..server.outbound import Outbound
from ..users import load_provider
from .handler import HubConnectionHandler

logger = logging.getLogger(__name__)

RS = 0x1E

# A Ping record as the official clients send it: JSON text, and MessagePack (length 2,
# then the array [6]).
PING_TEXT = '{"type":6}\x1e'
PING_BINARY = b"\x02\x91\x06"


class HandshakeFailed(Exception):
    """The handshake was refused; the error response has been written."""


class HubSession:
    """Handshake, then framed hub messages, for one connection."""

    # The WebSocket close code after the Close message (errors travel in the Close), and
    # POST bodies are fed chunk by chunk (records carry their own boundaries).
    close_code = 1000
    message_per_request = False

    __slots__ = (
        "_binary_framer",
        "_buffer",
        "_formats",
        "_on_abort",
        "_outbound",
        "_text_framer",
        "connection",
        "connection_id",
        "handler",
        "parked",
        "scope",
        "stateful",
        "transport",
        "user",
    )

    def __init__(
        self,
        handler: HubConnectionHandler,
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
        self.handler = handler
        self.connection_id = connection_id
        self.scope = scope
        self.user = user
        self.transport = transport
        self._formats = formats
        self._outbound = outbound
        self._on_abort = on_abort
        self.stateful = stateful
        self._buffer: bytearray | None = bytearray()
        self._text_framer: TextFramer | None = None
        self._binary_framer: BinaryFramer | None = None
        self.connection: HubConnection | None = None
        # True while the transport's read loop waits for the next frame (stateful take-over).
        self.parked = False

    @property
    def limit(self) -> int:
        """The maximum inbound message size."""
        return self.handler.options.MAXIMUM_RECEIVE_MESSAGE_SIZE

    async def open(self) -> None:
        """Nothing to do: a hub connection starts with the client's handshake."""

    async def feed(self, data: str | bytes) -> None:
        """Process one chunk from the client.

        Raises HandshakeFailed, ProtocolError, ClientClosed or ConnectionRefused; the
        transport then ends the connection (see `finish`).
        """
        connection = self.connection
        if connection is not None:
            records: list[Any]
            text_framer = self._text_framer
            if text_framer is not None:
                records = (
                    text_framer.feed(data)
                    if isinstance(data, str)
                    else text_framer.feed_bytes(data)
                )
            elif isinstance(data, str):
                raise ProtocolError("Text frames are not valid for a binary protocol.")
            else:
                assert self._binary_framer is not None
                records = self._binary_framer.feed(data)
            if records:
                if METRICS.enabled:
                    connection.messages_received += len(records)
                    connection.bytes_received += len(data)
                await self.handler.receive(connection, records)
            if text_framer is not None:
                text_framer.raise_pending()
            return
        buffer = self._buffer
        assert buffer is not None
        buffer += data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        end = buffer.find(RS)
        if end < 0:
            if len(buffer) >= self.limit:
                await self.refuse(HANDSHAKE_CANCELED)
            return
        if end + 1 > self.limit:
            await self.refuse(HANDSHAKE_CANCELED)
        rest = bytes(buffer[end + 1 :])
        self._buffer = None
        try:
            record = bytes(buffer[:end]).decode("utf-8")
            protocol, version = self.handler.select_protocol(record, self._formats)
        except UnicodeDecodeError:
            await self.refuse(GENERIC_HANDSHAKE_ERROR)
        except HandshakeError as exc:
            await self.refuse(str(exc))
        options = self.handler.options
        provider = load_provider(options.USER_ID_PROVIDER, options.MAXIMUM_USER_ID_LENGTH)
        try:
            user_identifier = provider(self.user, self.scope)
        except HandshakeError as exc:  # the user id is over MAXIMUM_USER_ID_LENGTH
            await self.refuse(str(exc))
        if protocol.transfer_format is TransferFormat.BINARY:
            self._binary_framer = BinaryFramer(self.limit)
            self._outbound.write(HANDSHAKE_OK.encode())
        else:
            self._text_framer = TextFramer(self.limit)
            self._outbound.write(HANDSHAKE_OK)
        connection = HubConnection(
            self.connection_id,
            self.handler.hub_cls,
            options,
            protocol,
            self.scope,
            self.transport,
            self._outbound,
            self.user,
            user_identifier,
        )
        if self._on_abort is not None:
            connection.on_abort(self._on_abort)
        if self.stateful and version >= 2:
            # Stateful reconnect needs version 2 of the hub protocol; else it is disabled.
            connection.reconnect = MessageBuffer()
        self.connection = connection
        await self.handler.connected(connection)
        if rest:
            await self.feed(rest)

    def take_ping(self, data: str | bytes) -> bool:
        """Handle `data` here if it is exactly one Ping record; False to `feed` it instead.

        Pings are most of what an idle connection sends (one per keep-alive interval); the
        official clients send them byte for byte as `PING_TEXT` / `PING_BINARY`. Such a
        frame, arriving with nothing buffered, does what `feed` would do for it (the
        client is alive, it pinged, it is counted) without framing, decoding or a task.
        """
        connection = self.connection
        if connection is None:
            return False
        if data == PING_TEXT:
            framer = self._text_framer
            if framer is None or framer._tail or framer._error is not None:
                return False
        elif data == PING_BINARY:
            binary = self._binary_framer
            if binary is None or binary._buffer:
                return False
        else:
            return False
        connection.last_received = time.monotonic()
        connection.client_pinged = True
        if METRICS.enabled:
            connection.messages_received += 1
            connection.bytes_received += len(data)
        return True

    def adopt(self, connection: HubConnection) -> None:
        """Carry on a connection whose handshake happened on another worker (it moved here)."""
        self._buffer = None
        if connection.protocol.transfer_format is TransferFormat.BINARY:
            self._binary_framer = BinaryFramer(self.limit)
        else:
            self._text_framer = TextFramer(self.limit)
        if self._on_abort is not None:
            connection.on_abort(self._on_abort)
        self.connection = connection

    async def refuse(self, error: str) -> None:
        """Answer the handshake with an error; raises HandshakeFailed."""
        self._buffer = None
        self._outbound.write(handshake_error(error))
        raise HandshakeFailed(error)

    async def handshake_timed_out(self) -> None:
        """The client did not complete the handshake in time."""
        if self.connection is None:
            try:
                await self.refuse(HANDSHAKE_CANCELED)
            except HandshakeFailed:
                pass

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Point aborts at a new transport's reader (stateful reconnect)."""
        self._on_abort = callback
        if self.connection is not None:
            self.connection.on_abort(callback)

    def set_outbound(self, outbound: Outbound) -> None:
        """A new transport writes for this session from now on (stateful reconnect)."""
        self._outbound = outbound
        if self.connection is not None:
            self.connection.attach(outbound)

    async def finish(self, failure: BaseException | None, client_gone: bool) -> None:
        """Write the Close message (unless the client is gone) and run the disconnect path."""
        connection = self.connection
        if connection is None:
            return
        if not client_gone and not connection.closed:
            close = connection.close_message or self.handler.close_for(failure)
            try:
                connection.send_nowait(close)
            except Exception:
                cid = safe_id(self.connection_id)
                logger.debug("Writing Close to %s failed", cid, exc_info=True)
        connection.mark_closed()
        await self.handler.disconnected(connection, failure)
