"""Connections carried by HTTP requests: Server-Sent Events and long polling.

Neither transport has one socket for the connection's lifetime, so this process keeps an
`HttpConnection` per connection: the hub session fed by POST bodies, and the outbound side,
either an open SSE response or a buffer that polls drain. A sweeper ends connections whose
client went away (no poll within DISCONNECT_TIMEOUT) or never completed the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Any

from ..core.logs import safe_id
from ..dispatch.dispatcher import ClientClosed
from ..dispatch.handler import ConnectionRefused
from ..dispatch.session import HandshakeFailed
from ..exceptions import MessageTooLargeError, ProtocolError
from ..protocol import Payload, TransferFormat
from ..server.outbound import Outbound, QueuedOutbound
from .sessions import EndpointHandler, new_session

logger = logging.getLogger(__name__)

LONG_POLLING = "LongPolling"
SERVER_SENT_EVENTS = "ServerSentEvents"
FORMATS = {
    LONG_POLLING: (TransferFormat.TEXT, TransferFormat.BINARY),
    SERVER_SENT_EVENTS: (TransferFormat.TEXT,),
}

POLL_DATA = "data"
POLL_TIMEOUT = "timeout"
POLL_ENDED = "ended"

# How a POST to a raw connection ends when its body is over MAXIMUM_RECEIVE_MESSAGE_SIZE.
TOO_LARGE = 413


def sse_event(payload: Payload) -> bytes:
    """One SSE event per hub message: each line becomes a `data:` line (CRLF endings)."""
    text = payload if isinstance(payload, str) else payload.decode("utf-8")
    lines = text.split("\n")
    out = "".join(f"data: {line.removesuffix(chr(13))}\r\n" for line in lines)
    return (out + "\r\n").encode("utf-8")


def _expire(waiter: asyncio.Future[str]) -> None:
    if not waiter.done():
        waiter.set_result(POLL_TIMEOUT)


class PollOutbound(Outbound):
    """Long polling's outbound queue: records wait in the connection until a poll takes them.

    It never blocks; the hub connection closes itself when the buffer passes its cap
    (OUTBOUND_BUFFER_LIMIT), which is what happens to a client that stopped polling.
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: HttpConnection) -> None:
        self._connection = connection

    def write(self, payload: Payload) -> int:
        """Buffer the record for the next poll and wake a waiting one."""
        connection = self._connection
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        connection.buffer.append(data)
        connection.buffered += len(data)
        connection._wake(POLL_DATA)
        return connection.buffered

    def pending(self) -> int:
        """Bytes buffered for polls."""
        return self._connection.buffered


class HttpConnection:
    """One SSE or long-polling connection owned by this process."""

    def __init__(
        self,
        manager: HttpConnectionManager,
        handler: EndpointHandler,
        connection_id: str,
        transport: str,
        scope: dict[str, Any],
        user: Any,
    ) -> None:
        self.manager = manager
        self.handler = handler
        self.connection_id = connection_id
        self.transport = transport
        self.created = time.monotonic()
        self.last_seen = self.created
        # long polling
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.poll_waiter: asyncio.Future[str] | None = None
        self.polling = False
        # server-sent events
        self.sse_send: Any = None
        self.sse_backlog: Any = None
        self.sse_closed = asyncio.Event()
        # Set once the event stream is open or the connection ended: a raw connection's
        # `on_connected` runs (and may send) before the stream opens.
        self.sse_ready = asyncio.Event()
        self.outbound: Outbound
        if transport == SERVER_SENT_EVENTS:
            self.outbound = QueuedOutbound(self._emit_sse, self._sse_pending)
        else:
            self.outbound = PollOutbound(self)
        self.session = new_session(
            handler,
            connection_id=connection_id,
            scope=scope,
            user=user,
            transport=transport,
            formats=FORMATS[transport],
            outbound=self.outbound,
            on_abort=self._on_abort,
        )
        self.post_lock = asyncio.Lock()
        self.ended = False
        self._finishing: asyncio.Task[None] | None = None

    # -- outbound --------------------------------------------------------------------------

    async def _emit_sse(self, payload: Payload) -> None:
        """Write one record as an SSE event (the SSE outbound's writer task calls this)."""
        if self.sse_send is None and not self.sse_ready.is_set():
            await self.sse_ready.wait()
        if self.sse_send is not None:  # the stream flushes this queue before it ends
            await self.sse_send(
                {"type": "http.response.body", "body": sse_event(payload), "more_body": True}
            )

    def _sse_pending(self) -> int:
        backlog = self.sse_backlog
        return int(backlog()) if backlog is not None else 0

    def _wake(self, reason: str) -> None:
        waiter = self.poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(reason)

    def take_buffer(self) -> bytes:
        """Everything buffered so far, as one poll body (whole messages only)."""
        data = b"".join(self.buffer)
        self.buffer.clear()
        self.buffered = 0
        return data

    async def poll(self, timeout: float) -> tuple[int, bytes]:
        """A long poll: 200 with data, 200 empty on timeout, 204 when the connection ended."""
        self.last_seen = time.monotonic()
        if self.poll_waiter is not None and not self.poll_waiter.done():
            self.poll_waiter.set_result(POLL_ENDED)  # a newer poll supersedes this one
        if self.buffer:
            return 200, self.take_buffer()
        if self.ended:
            self.manager.remove(self)
            return 204, b""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[str] = loop.create_future()
        self.poll_waiter = waiter
        self.polling = True
        # A timer that resolves the waiter, rather than `wait_for`: no task per poll.
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            reason = await waiter
        finally:
            timer.cancel()
            self.polling = False
            self.last_seen = time.monotonic()
            if self.poll_waiter is waiter:
                self.poll_waiter = None
        if self.buffer and reason != POLL_ENDED:
            return 200, self.take_buffer()
        # Re-read: the connection may have ended while this poll waited.
        ended: bool = getattr(self, "ended")  # noqa: B009
        if reason == POLL_ENDED or ended:
            if ended and not self.buffer:
                self.manager.remove(self)
            return 204, b""
        return 200, b""

    # -- inbound ---------------------------------------------------------------------------

    async def open(self) -> bool:
        """Start the session on the connection's first request; False when refused.

        A no-op for hubs, whose connections start with the handshake; a raw connection's
        `on_connected` runs here, and if it raises the request that started the connection
        fails (the client's start fails) and the connection ends.
        """
        try:
            await self.session.open()
        except ConnectionRefused as exc:
            self.end(exc)
            return False
        return True

    async def receive_post(self, receive: Any, text: bool = False) -> tuple[int, bytes] | None:
        """Feed a POST body to the session, one POST at a time; None, or an error answer.

        A hub session takes the body chunk by chunk. A raw session takes the whole body as
        one message (`str` when `text`, the request said `text/*`), refused with 413 and
        the connection ended when it is over MAXIMUM_RECEIVE_MESSAGE_SIZE.
        """
        async with self.post_lock:
            self.last_seen = time.monotonic()
            if self.session.message_per_request:
                return await self._receive_message(receive, text)
            while True:
                event = await receive()
                if event["type"] == "http.disconnect":
                    return None
                body = event.get("body", b"")
                if body and not self.ended:
                    try:
                        await self.session.feed(body)
                    except (HandshakeFailed, ProtocolError, ClientClosed, ConnectionRefused) as exc:
                        self.end(None if isinstance(exc, HandshakeFailed) else exc)
                    except Exception as exc:
                        logger.exception("Hub connection %s failed", safe_id(self.connection_id))
                        self.end(exc)
                if not event.get("more_body"):
                    return None

    async def _receive_message(self, receive: Any, text: bool) -> tuple[int, bytes] | None:
        limit = self.session.limit
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return None
            body = event.get("body", b"")
            size += len(body)
            if size <= limit:
                chunks.append(body)
            if not event.get("more_body"):
                break
        if self.ended or size == 0:
            return None  # an empty POST carries no message
        if size > limit:
            error = MessageTooLargeError(
                f"The message ({size} bytes) exceeds MAXIMUM_RECEIVE_MESSAGE_SIZE ({limit} bytes)."
            )
            self.end(error)
            return TOO_LARGE, str(error).encode()
        body = b"".join(chunks)
        data: str | bytes = body
        if text:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:
                return 400, b"A text/* request body must be UTF-8."
        try:
            await self.session.feed(data)
        except ProtocolError as exc:
            self.end(exc)
        except Exception as exc:
            logger.exception("Connection %s failed", safe_id(self.connection_id))
            self.end(exc)
        return None

    # -- ending ----------------------------------------------------------------------------

    def _on_abort(self) -> None:
        self.end(None)

    def end(self, failure: BaseException | None, client_gone: bool = False) -> None:
        """End the connection once: Close written, hub told, pending poll released."""
        if self._finishing is None:
            self._finishing = asyncio.get_running_loop().create_task(
                self._finish(failure, client_gone)
            )

    async def _finish(self, failure: BaseException | None, client_gone: bool) -> None:
        try:
            await self.session.finish(failure, client_gone)
        finally:
            self.ended = True
            self._wake(POLL_DATA if self.buffer else POLL_ENDED)
            self.sse_closed.set()
            self.sse_ready.set()
            drained = client_gone or self.transport == SERVER_SENT_EVENTS or not self.buffer
            if drained and not self.polling:
                self.manager.remove(self)

    async def wait_ended(self) -> None:
        """Wait until `end` has run (tests and DELETE)."""
        if self._finishing is not None:
            await asyncio.shield(self._finishing)


class HttpConnectionManager:
    """The HTTP-transport connections of one hub in this process, and their sweeper."""

    def __init__(self, handler: EndpointHandler) -> None:
        self.handler = handler
        self.connections: dict[str, HttpConnection] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def get(self, connection_id: str) -> HttpConnection | None:
        """A connection owned by this process."""
        return self.connections.get(connection_id)

    def create(
        self, connection_id: str, transport: str, scope: dict[str, Any], user: Any
    ) -> HttpConnection:
        """Register a new connection on its first request."""
        connection = HttpConnection(self, self.handler, connection_id, transport, scope, user)
        self.connections[connection_id] = connection
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return connection

    def remove(self, connection: HttpConnection) -> None:
        """Forget a connection that ended."""
        if self.connections.get(connection.connection_id) is connection:
            del self.connections[connection.connection_id]

    async def _sweep(self) -> None:
        while self.connections:
            await asyncio.sleep(1.0)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        """End connections whose client left or never completed the handshake."""
        options = self.handler.options
        for connection in list(self.connections.values()):
            if connection.ended:
                if (
                    not connection.polling
                    and now - connection.last_seen > options.DISCONNECT_TIMEOUT
                ):
                    self.remove(connection)
                continue
            if (
                connection.session.connection is None
                and now - connection.created > options.HANDSHAKE_TIMEOUT
            ):
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().create_task(connection.session.handshake_timed_out())
                connection.end(None, client_gone=True)
                continue
            if (
                connection.transport == LONG_POLLING
                and not connection.polling
                and now - connection.last_seen > options.DISCONNECT_TIMEOUT
            ):
                connection.end(None, client_gone=True)


_managers: weakref.WeakKeyDictionary[EndpointHandler, HttpConnectionManager] = (
    weakref.WeakKeyDictionary()
)


def get_http_manager(handler: EndpointHandler) -> HttpConnectionManager:
    """The HTTP connection manager of a hub's or a connection handler's endpoint."""
    manager = _managers.get(handler)
    if manager is None:
        manager = _managers[handler] = HttpConnectionManager(handler)
    return manager
