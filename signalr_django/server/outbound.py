"""The outbound side of one connection: a bounded queue that never makes a sender wait.

Every hub connection owns one `Outbound`. Senders (a hub method, a broadcast, the keep-alive
tick, a delivery from another worker) hand it whole framed records with `write`, which
queues them and returns at once with the number of bytes still waiting for the client. The
connection compares that number with its cap (`OUTBOUND_BUFFER_LIMIT`) and closes itself
when the client does not keep up; nobody ever awaits one recipient. This is the pipe per
connection of ASP.NET Core and Centrifugo, without ASP.NET Core's sender-side wait.

Two implementations exist: `QueuedOutbound` here, for any ASGI server (a deque drained by
one writer task that awaits the server's `send`), and the Daphne adapter in
`signalr_django.server.daphne`, whose queue is Twisted's own transport buffer.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..protocol import Payload

if TYPE_CHECKING:
    from ..lifetime.serialized import SerializedMessage
    from ..protocol import HubProtocol

logger = logging.getLogger(__name__)

Emit = Callable[[Payload], Awaitable[None]]

# How often `drained` looks again while a server-to-client stream waits for its client.
DRAIN_POLL = 0.005


class Outbound:
    """What a transport offers a hub connection: queue frames, count what waits, pause reads.

    Subclasses override `write`, `pending` and, where the server allows, the reading
    controls. All methods are synchronous and cheap except `drained`, which only a
    server-to-client stream awaits (its producer waits for its own client, never for others).
    """

    __slots__ = ()

    def write(self, payload: Payload) -> int:
        """Queue one framed record; returns the bytes waiting for the client afterwards."""
        raise NotImplementedError

    def write_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        """Queue a message shared by many recipients (fan-out); see `write`."""
        return self.write(message.payload(protocol))

    def pending(self) -> int:
        """Bytes written by the application that the client has not taken yet."""
        raise NotImplementedError

    def pause_reading(self) -> bool:
        """Stop reading from the client (TCP pushes back); False when the server cannot."""
        return False

    def resume_reading(self) -> None:
        """Read from the client again."""

    def close(self) -> None:
        """Write nothing more; drop what is queued."""

    @property
    def closed(self) -> bool:
        """True once `close` was called or the server refused a write."""
        return False

    async def drained(self, threshold: int) -> None:
        """Return once at most `threshold` bytes wait (or the outbound closed)."""
        while not self.closed and self.pending() > threshold:
            await asyncio.sleep(DRAIN_POLL)


class QueuedOutbound(Outbound):
    """A deque of records and one writer task that awaits `emit` for each (any ASGI server).

    `pending` counts the records not yet handed to the server plus, when the server exposes
    it, what the server itself still buffers (`extra_pending`). The writer task starts on
    the first write and lives as long as the connection.
    """

    __slots__ = (
        "__weakref__",
        "_bytes",
        "_closed",
        "_emit",
        "_extra",
        "_queue",
        "_task",
        "_wakeup",
    )

    def __init__(self, emit: Emit, extra_pending: Callable[[], int] | None = None) -> None:
        self._emit = emit
        self._extra = extra_pending
        self._queue: deque[Payload] = deque()
        self._bytes = 0
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None

    def write(self, payload: Payload) -> int:
        """Queue one record and wake the writer; see `Outbound.write`."""
        if self._closed:
            return 0
        self._queue.append(payload)
        self._bytes += len(payload)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
            _writing.add(self)
        else:
            wakeup = self._wakeup
            if wakeup is not None and not wakeup.done():
                wakeup.set_result(None)
        return self.pending()

    def pending(self) -> int:
        """Queued bytes plus what the server reports buffered."""
        extra = self._extra
        return self._bytes + (extra() if extra is not None else 0)

    @property
    def closed(self) -> bool:
        """True once closed or a write to the server failed."""
        return self._closed

    def close(self) -> None:
        """Drop the queue and stop the writer once it is idle."""
        self._closed = True
        self._queue.clear()
        self._bytes = 0
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def flush(self) -> None:
        """Wait until everything queued so far was handed to the server (or it failed)."""
        while self._queue and not self._closed and self._task is not None:
            await asyncio.sleep(DRAIN_POLL)

    async def _run(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        while not self._closed:
            while queue:
                payload = queue[0]
                try:
                    await self._emit(payload)
                except Exception:
                    # The server refused the write: the client is gone. The transport's
                    # read loop sees the disconnect and ends the connection.
                    logger.debug("Writing to the client failed", exc_info=True)
                    self.close()
                    return
                if self.closed:  # closed while the server took it
                    return
                queue.popleft()
                self._bytes -= len(payload)
            self._wakeup = loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None


# Every QueuedOutbound whose writer started, for the shutdown drain (weak: no leak).
_writing: weakref.WeakSet[QueuedOutbound] = weakref.WeakSet()


async def all_flushed(timeout: float) -> bool:
    """Wait until every QueuedOutbound handed what it holds to the server (or `timeout`).

    The shutdown drain queues a Close on every connection; before the server is let go on
    to close the sockets itself, those Close messages must have reached it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(o._queue and not o._closed for o in list(_writing)):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(DRAIN_POLL)
    return True


class ListOutbound(Outbound):
    """Records collected in a list, delivered at once (tests and in-process tools)."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: list[Payload] = []

    def write(self, payload: Payload) -> int:
        """Append the record; nothing ever waits."""
        self.records.append(payload)
        return 0

    def pending(self) -> int:
        """Nothing waits: the list took everything."""
        return 0
