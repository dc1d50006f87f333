"""One hub connection: identity, user, protocol, the single write path and its caps.

The transport hands the connection an `Outbound` (signalr_django.server): a per-connection
queue that a sender fills and never waits on. Everything that reaches the client goes
through `write`, so the close state, the stateful-reconnect numbering and the outbound cap
are enforced in one place: a connection whose client does not take its messages is closed
once OUTBOUND_BUFFER_LIMIT bytes wait for it (the unacknowledged replay buffer of a
stateful connection counts too). No sender, keep-alive tick or backplane delivery ever
awaits another client; a hub method waits only for its own caller to catch up, and a
server-to-client stream only for its own client.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..metrics.counters import METRICS
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
from ..server.outbound import Outbound, QueuedOutbound
from .logs import safe_id, warn_limited

if TYPE_CHECKING:
    from ..conf import HubOptions
    from ..lifetime.serialized import SerializedMessage
    from .reconnect import MessageBuffer
    from .results import PendingResults
    from .streams import UploadStream

Writer = Callable[[Payload], Awaitable[None]]

# Past this many bytes waiting for the client, a sender yields once to the event loop so
# the transport can flush (ASP.NET Core's 64 KiB pipe threshold), and a server-to-client
# stream waits for its client before producing more.
DRAIN_THRESHOLD = 64 * 1024

# Invocations queued behind MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT before the read loop
# itself waits (see `queue_invocation`).
MAX_QUEUED_INVOCATIONS = 32

NO_GROUPS: frozenset[str] = frozenset()

TRACKABLE = frozenset({Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation})


class HubConnection:
    """State of one connection that completed (or is completing) its handshake."""

    __slots__ = (
        "__weakref__",
        "_abort_callback",
        "_closed",
        "_queue_space",
        "aborted",
        "active_invocations",
        "auth_expires",
        "bytes_received",
        "bytes_sent",
        "caller_context",
        "client_pinged",
        "close_message",
        "close_reason",
        "connection_id",
        "detached",
        "group_names",
        "hub_cls",
        "items",
        "last_ping_sent",
        "last_received",
        "messages_received",
        "messages_sent",
        "options",
        "outbound",
        "pending_results",
        "protocol",
        "queued_invocations",
        "reading_paused",
        "reconnect",
        "scope",
        "streams_in",
        "streams_out",
        "transport",
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
        outbound: Outbound | Writer,
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
        # Most connections join no group: they share one empty frozenset (an empty set is
        # 216 bytes); the lifetime manager gives a connection its own set on its first join.
        self.group_names: set[str] | frozenset[str] = NO_GROUPS
        if not isinstance(outbound, Outbound):
            outbound = QueuedOutbound(outbound)
        self.outbound: Outbound = outbound
        self._closed = False
        self.aborted = False
        self._abort_callback: Callable[[], None] | None = None
        self.close_message: Close | None = None
        # Why the server ended it (see `abort`); the disconnect reason in logs and metrics.
        self.close_reason: str | None = None
        # Traffic read and written one record at a time, counted only with
        # SIGNALR["METRICS"] (plain slot increments); the collector sums them at scrape
        # time, and the totals of ended connections (and fan-outs) are in
        # `metrics.counters`.
        self.messages_received = 0
        self.bytes_received = 0
        self.messages_sent = 0
        self.bytes_sent = 0
        now = time.monotonic()
        self.last_received = now
        self.last_ping_sent = now
        self.client_pinged = False
        self.active_invocations = 0
        self.queued_invocations: deque[Callable[[], None]] | None = None
        self._queue_space: asyncio.Future[None] | None = None
        self.reading_paused = False
        self.streams_out: dict[str, asyncio.Task[None]] | None = None
        self.streams_in: dict[str, UploadStream] | None = None
        self.pending_results: PendingResults | None = None
        self.reconnect: MessageBuffer | None = None
        self.detached = False
        # When the authentication this connection was admitted with expires (Unix time),
        # with CLOSE_ON_AUTHENTICATION_EXPIRATION; the heartbeat closes it then.
        self.auth_expires: float | None = None

    @property
    def closed(self) -> bool:
        """True once the connection stopped accepting writes."""
        return self._closed

    # -- the write path --------------------------------------------------------------------

    def write(self, payload: Payload, trackable: bool = True) -> int:
        """Queue one framed record; dropped once the connection is closed. Never waits.

        With stateful reconnect, trackable records are numbered and kept until the client
        acknowledges them; while the transport is away they are only kept. Returns what
        the transport holds for the client after the write (0 when nothing was written).
        """
        if self._closed or (trackable and self.aborted):
            return 0  # after an abort only the Close (not trackable) still goes out
        if METRICS.enabled:
            self.messages_sent += 1
            self.bytes_sent += len(payload)
        reconnect = self.reconnect
        if reconnect is not None:
            if trackable:
                reconnect.track(payload)
            pending = 0 if self.detached else self.outbound.write(payload)
            self._over_cap(pending)
            return pending
        pending = self.outbound.write(payload)
        if pending > DRAIN_THRESHOLD:
            self._over_cap(pending)
        return pending

    def deliver(self, message: SerializedMessage) -> bool:
        """Queue a message shared by many recipients; True when this client is behind.

        Not counted here for the metrics: the fan-out counts its deliveries once (see
        `HubLifetimeManager._fan_out`), which costs less than an update per recipient.
        """
        if self._closed or self.aborted:
            return False
        if self.reconnect is not None:
            self.write(message.payload(self.protocol))
            return False
        pending = self.outbound.write_serialized(message, self.protocol)
        return pending > DRAIN_THRESHOLD and self._over_cap(pending)

    def _over_cap(self, pending: int) -> bool:
        """Close the connection past OUTBOUND_BUFFER_LIMIT; True when the client is behind.

        What counts is what this connection holds for its client: the bytes its transport
        has not sent, plus (stateful reconnect) the messages not acknowledged yet.
        """
        reconnect = self.reconnect
        queued = pending + reconnect.buffered_bytes if reconnect is not None else pending
        limit = self.options.OUTBOUND_BUFFER_LIMIT
        if limit and queued > limit and not self.aborted:
            from .heartbeat import slow_consumer_close

            warn_limited(
                "slow-reader",
                "Closed connection %s: its client did not keep up, %d bytes waited for it "
                "(limit %d, OUTBOUND_BUFFER_LIMIT).",
                safe_id(self.connection_id),
                queued,
                limit,
            )
            METRICS.count_slow_client(self.hub_cls)
            METRICS.count_limit("OUTBOUND_BUFFER_LIMIT")
            self.abort(slow_consumer_close(self.options, limit), "slow_client")
        return pending > DRAIN_THRESHOLD

    def send_nowait(self, message: HubMessage) -> None:
        """Encode and queue one message."""
        if not self._closed:
            self.write(self.protocol.encode(message), type(message) in TRACKABLE)

    async def send(self, message: HubMessage) -> None:
        """Encode and queue one message; yields once to the loop when the client is behind.

        The yield lets the transport flush before the sender goes on; it never waits for
        the client itself (a client that falls too far behind is closed instead).
        """
        if self._closed:
            return
        if self.write(self.protocol.encode(message), type(message) in TRACKABLE) > DRAIN_THRESHOLD:
            await asyncio.sleep(0)

    async def send_stream_item(self, message: HubMessage) -> None:
        """Queue a server-to-client stream item, then wait while this client is behind.

        A stream's producer waits for its own client only: this is the backpressure of
        ASP.NET Core's channel-backed streams. Unacknowledged
        stateful-reconnect messages past STATEFUL_RECONNECT_BUFFER_SIZE count as behind.
        """
        self.send_nowait(message)
        await self.caught_up(self.options.STATEFUL_RECONNECT_BUFFER_SIZE)

    async def caught_up(self, unacknowledged: int | None = None) -> None:
        """Wait while more than DRAIN_THRESHOLD bytes wait for this client (or it is away).

        Only code acting for this connection waits here (its stream's producer, a hub
        method it invoked); it returns as soon as the connection ends. With
        `unacknowledged`, a stateful connection also counts as behind while more than that
        many bytes are unacknowledged.
        """
        reconnect = self.reconnect if unacknowledged is not None else None
        while not self._closed and not self.aborted:
            if (
                self.outbound.pending() > DRAIN_THRESHOLD
                or self.detached
                or (
                    reconnect is not None
                    and unacknowledged is not None
                    and reconnect.buffered_bytes > unacknowledged
                )
            ):
                await asyncio.sleep(0.005)
            else:
                return

    def attach(self, outbound: Outbound) -> None:
        """A new transport carries the connection from now on (stateful reconnect)."""
        self.outbound = outbound
        self.detached = False
        self.reading_paused = False

    def mark_closed(self) -> None:
        """Refuse further writes (the transport is gone or the Close was written)."""
        self._closed = True

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Set what `abort` does for this transport (interrupt its read loop)."""
        self._abort_callback = callback

    def abort(self, close: Close | None = None, reason: str = "server_aborted") -> None:
        """End the connection from the server side; `close` is the Close message to send.

        `reason` says why, for the lifecycle log and `signalr_disconnects_total` (one of
        `metrics.counters.DISCONNECT_REASONS`).
        """
        if self.aborted:
            return
        self.aborted = True
        self.close_reason = reason
        self.close_message = close if close is not None else Close()
        if self.reconnect is not None and self.detached:
            self.reconnect.clear()  # nobody will resume it: free the replay buffer now
        if self._abort_callback is not None:
            self._abort_callback()

    # -- invocation slots (MaximumParallelInvocationsPerClient) ---------------------------

    def try_take_slot(self) -> bool:
        """Take an invocation slot if one is free."""
        if self.active_invocations < self.options.MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT:
            self.active_invocations += 1
            return True
        return False

    async def queue_invocation(self, start: Callable[[], None]) -> None:
        """Run `start` when a slot frees up, without holding up the read loop.

        ASP.NET Core stalls the read loop until a slot is free; here the invocation waits
        in a short per-connection queue instead, so the read loop keeps seeing Pings,
        client results, stream items and, above all, the transport closing (a stateful
        client whose socket dropped can then resume at once). While invocations wait the
        transport stops reading the socket, so a flooding client is held back by TCP;
        past MAX_QUEUED_INVOCATIONS the read loop itself waits, as in ASP.NET Core.
        """
        queued = self.queued_invocations
        if queued is None:
            queued = self.queued_invocations = deque()
        queued.append(start)
        if not self.reading_paused:
            self.reading_paused = self.outbound.pause_reading()
        while len(queued) > MAX_QUEUED_INVOCATIONS and not self._closed:
            space = self._queue_space
            if space is None or space.done():
                space = self._queue_space = asyncio.get_running_loop().create_future()
            await space

    def release_slot(self) -> None:
        """Give a slot back and start the next queued invocation, if any."""
        self.active_invocations -= 1
        queued = self.queued_invocations
        if queued and not self._closed:
            self.active_invocations += 1
            start = queued.popleft()
            if len(queued) <= MAX_QUEUED_INVOCATIONS:
                space = self._queue_space
                if space is not None and not space.done():
                    space.set_result(None)
            if not queued and self.reading_paused:
                self.reading_paused = False
                self.outbound.resume_reading()
            start()

    def drop_queued_invocations(self) -> None:
        """The connection ended: queued invocations never run."""
        if self.queued_invocations:
            self.queued_invocations.clear()
        space = self._queue_space
        if space is not None and not space.done():
            space.set_result(None)

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
            raise ConnectionGoneError(f"Connection '{safe_id(self.connection_id)}' disconnected.")
        if self.pending_results is None:
            self.pending_results = PendingResults()
        invocation_id = next_invocation_id()
        future = self.pending_results.add(invocation_id)
        try:
            self.send_nowait(Invocation(method, arguments, invocation_id))
            return await asyncio.wait_for(future, timeout)
        finally:
            self.pending_results.discard(invocation_id)
