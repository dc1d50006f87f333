"""One hub connection: identity, user, protocol, the single write path and its timers.

The transport (WebSocket, and later SSE or long polling) hands the connection a `writer`
coroutine that carries one framed record to the client. Everything that reaches the client
goes through `write`, so the close state, the keep-alive clock and (later) buffer caps are
enforced in one place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..protocol import (
    CancelInvocation,
    Close,
    Completion,
    HubMessage,
    HubProtocol,
    Invocation,
    Payload,
    StreamInvocation,
    StreamItem,
)
from .flow import backlog, pause_reading, resume_reading

if TYPE_CHECKING:
    from ..conf import HubOptions
    from .reconnect import MessageBuffer
    from .results import PendingResults
    from .streams import UploadStream

Writer = Callable[[Payload], Awaitable[None]]

# A writer waits for the client once this much is queued in the transport (ASP.NET Core's
# 64 KiB pipe threshold); a backlog over OUTBOUND_BUFFER_LIMIT closes the connection.
DRAIN_THRESHOLD = 64 * 1024

TRACKABLE = frozenset({Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation})


class HubConnection:
    """State of one connection that completed (or is completing) its handshake."""

    __slots__ = (
        "__weakref__",
        "_abort_callback",
        "_closed",
        "_writer",
        "aborted",
        "active_invocations",
        "caller_context",
        "client_pinged",
        "close_message",
        "connection_id",
        "detached",
        "direct_write",
        "frame_sink",
        "group_names",
        "hub_cls",
        "items",
        "last_ping_sent",
        "last_received",
        "options",
        "pending_results",
        "protocol",
        "reconnect",
        "scope",
        "slot_waiters",
        "streams_in",
        "streams_out",
        "transport",
        "transport_handle",
        "user",
        "user_identifier",
    )

    def __init__(
        self,
        connection_id: str,
        hub_cls: type,
        options: HubOptions,
        protocol: HubProtocol,
        scope: dict[str, Any],
        transport: str,
        writer: Writer,
        user: Any = None,
        user_identifier: str | None = None,
    ) -> None:
        self.connection_id = connection_id
        self.hub_cls = hub_cls
        self.options = options
        self.protocol = protocol
        self.scope = scope
        self.transport = transport
        self.user = user
        self.user_identifier = user_identifier
        self.items: dict[Any, Any] = {}
        self.caller_context: Any = None
        self.group_names: set[str] = set()
        self._writer = writer
        self._closed = False
        self.aborted = False
        self._abort_callback: Callable[[], None] | None = None
        self.close_message: Close | None = None
        now = time.monotonic()
        self.last_received = now
        self.last_ping_sent = now
        self.client_pinged = False
        self.active_invocations = 0
        self.slot_waiters: list[asyncio.Future[None]] | None = None
        self.streams_out: dict[str, asyncio.Task[None]] | None = None
        self.streams_in: dict[str, UploadStream] | None = None
        self.pending_results: PendingResults | None = None
        self.reconnect: MessageBuffer | None = None
        self.detached = False
        # A server-side WebSocket protocol that takes prepared frames (Daphne's autobahn),
        # used by fan-out to send one prepared frame to many connections; None otherwise.
        self.frame_sink: Any = None
        # Sends a finished frame on the socket (see core.flow.direct_writer); None if absent.
        self.direct_write: Any = None
        # The server transport under this connection (Twisted's, on Daphne): flow control.
        self.transport_handle: Any = None

    @property
    def closed(self) -> bool:
        """True once the connection stopped accepting writes."""
        return self._closed

    async def write(self, payload: Payload, trackable: bool = True) -> None:
        """Send one framed record; silently dropped once the connection is closed.

        With stateful reconnect, trackable records are numbered and kept until the client
        acknowledges them; while the transport is away they are only kept.
        """
        if self._closed or (trackable and self.aborted):
            return  # after an abort only the Close (not trackable) still goes out
        reconnect = self.reconnect
        if reconnect is not None:
            if trackable:
                await reconnect.track(payload)
            if self.detached:
                return
            try:
                await self._writer(payload)
            except Exception:
                if not trackable:
                    raise
            return
        await self._writer(payload)
        if self.transport_handle is not None and self.check_backlog() and not self.aborted:
            await self.drain()

    def check_backlog(self) -> bool:
        """After a write: True when the client is behind (more than DRAIN_THRESHOLD waits).

        Past OUTBOUND_BUFFER_LIMIT the client is not keeping up even though senders yield
        to let transports flush: the connection is closed with an error that allows
        reconnecting, and nothing more is queued for it.
        """
        waiting = backlog(self.transport_handle)
        if waiting <= DRAIN_THRESHOLD:
            return False
        limit = self.options.OUTBOUND_BUFFER_LIMIT
        if limit and waiting > limit and not self.aborted:
            from .heartbeat import slow_consumer_close

            self.abort(slow_consumer_close(self.options, limit))
        return True

    async def drain(self) -> None:
        """Wait until the client took most of what was written (TRANSPORT_SEND_TIMEOUT).

        This is the backpressure ASP.NET Core applies to a sender: the hub method that
        writes to a slow client waits for it, instead of queueing without bound.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.TRANSPORT_SEND_TIMEOUT
        await asyncio.sleep(0)
        while (
            not self._closed
            and not self.aborted
            and backlog(self.transport_handle) > DRAIN_THRESHOLD
        ):
            if loop.time() > deadline:
                from .heartbeat import slow_consumer_close

                self.abort(slow_consumer_close(self.options, self.options.OUTBOUND_BUFFER_LIMIT))
                return
            await asyncio.sleep(0.005)

    async def send(self, message: HubMessage) -> None:
        """Encode and send one message."""
        if not self._closed:
            await self.write(self.protocol.encode(message), type(message) in TRACKABLE)

    def attach(self, writer: Writer) -> None:
        """A new transport carries the connection from now on (stateful reconnect)."""
        self._writer = writer
        self.detached = False

    def mark_closed(self) -> None:
        """Refuse further writes (the transport is gone or the Close was written)."""
        self._closed = True
        self.frame_sink = None
        self.direct_write = None

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Set what `abort` does for this transport (interrupt its read loop)."""
        self._abort_callback = callback

    def abort(self, close: Close | None = None) -> None:
        """End the connection from the server side; `close` is the Close message to send."""
        if self.aborted:
            return
        self.aborted = True
        self.close_message = close if close is not None else Close()
        if self._abort_callback is not None:
            self._abort_callback()

    # -- invocation slots (MaximumParallelInvocationsPerClient) ---------------------------

    def try_take_slot(self) -> bool:
        """Take an invocation slot if one is free."""
        if self.active_invocations < self.options.MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT:
            self.active_invocations += 1
            return True
        return False

    async def take_slot(self) -> None:
        """Wait for a free slot (this stalls the read loop, as ASP.NET Core does).

        Meanwhile the transport stops reading, so a flooding client is held back by TCP
        instead of filling the server's memory.
        """
        paused = False
        try:
            while not self.try_take_slot():
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                if self.slot_waiters is None:
                    self.slot_waiters = []
                self.slot_waiters.append(waiter)
                if not paused:
                    paused = pause_reading(self.transport_handle)
                await waiter
        finally:
            if paused:
                resume_reading(self.transport_handle)

    def release_slot(self) -> None:
        """Give a slot back and wake one waiter."""
        self.active_invocations -= 1
        waiters = self.slot_waiters
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break

    # -- client results ------------------------------------------------------------------

    async def invoke_client(
        self, method: str, arguments: list[Any], timeout: float | None = None
    ) -> Any:
        """Invoke `method` on this client and return its result (see core.results)."""
        from ..protocol import Invocation
        from .results import (
            ConnectionGoneError,
            PendingResults,
            current_scope,
            next_invocation_id,
        )

        scope = current_scope.get()
        if scope is not None:
            if scope.in_on_connected:
                raise RuntimeError(
                    "Client results inside OnConnectedAsync Hub methods are not allowed."
                )
            scope.release_slot()
        if self._closed:
            raise ConnectionGoneError(f"Connection '{self.connection_id}' disconnected.")
        if self.pending_results is None:
            self.pending_results = PendingResults()
        invocation_id = next_invocation_id()
        future = self.pending_results.add(invocation_id)
        try:
            await self.send(Invocation(method, arguments, invocation_id))
            return await asyncio.wait_for(future, timeout)
        finally:
            self.pending_results.discard(invocation_id)
