"""Parked WebSocket connections: read by callbacks, with no task while they are idle.

An ASGI application serves a WebSocket from one coroutine that awaits `receive()` for the
connection's whole life. While it waits, the task, every frame of the application's call
chain (Channels' routers, the endpoint, the read loop), and Daphne's per-connection
`asyncio.Queue` with its waiting future all stay in memory: about 4.5 KB per idle
connection, a quarter of what a connection costs, and each frame then travels queue →
future → task wake-up → loop pass before the hub sees it.

Under Daphne, once the hub handshake is done, the read loop hands its connection to a
`ParkedReader` and returns, which ends the application task and frees that chain. Daphne
then delivers each event to the reader's `put_nowait` (it takes the place of the queue;
see `server.daphne.park`), which feeds the hub session in a short-lived task, started per
burst of frames and gone when the burst is handled. Daphne's table keeps a stand-in for the
application instance, so its own machinery (the sweep that reaps finished applications,
the cancellation of every application at shutdown, the cancellation of one that outlives
its socket) reaches a parked connection exactly as it reached the read loop: cancelling the
stand-in ends the connection the way cancelling the read loop did, and the stand-in is
done only when the connection has ended.

Ordering is the read loop's: frames are fed one at a time in arrival order (a frame that
arrives while one is being fed waits in a backlog, as it waited in Daphne's queue), and
the same code (`HubSession.feed`, `websocket.end_socket`) handles them and the end.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
from typing import Any

from ..core.connection import HubConnection
from ..core.logs import safe_id
from ..dispatch.dispatcher import ClientClosed
from ..dispatch.handler import ConnectionRefused
from ..dispatch.session import HubSession
from ..exceptions import ProtocolError
from ..server import daphne
from ..server.daphne import DaphneWebSocketOutbound
from . import websocket
from .sessions import EndpointHandler

logger = logging.getLogger(__name__)


class ParkedReader:
    """The read side of one parked hub WebSocket (see the module docstring)."""

    __slots__ = (
        "_backlog",
        "_busy",
        "_context",
        "_ending",
        "_running",
        "_standin",
        "handler",
        "outbound",
        "session",
    )

    def __init__(
        self,
        handler: EndpointHandler,
        session: HubSession,
        outbound: DaphneWebSocketOutbound,
    ) -> None:
        self.handler = handler
        self.session = session
        self.outbound = outbound
        # The read loop's context: frames are fed with the context variables they saw.
        self._context = contextvars.copy_context()
        self._busy: asyncio.Task[None] | None = None  # feeding a burst, or ending
        self._backlog: collections.deque[dict[str, Any]] | None = None
        self._ending = False
        # `_busy`'s coroutine has started: a task cancelled before it starts never runs
        # its body, so such a task is told to stop (`_ending`) instead of cancelled.
        self._running = False
        self._standin: daphne.Standin | None = None

    # -- what Daphne calls ----------------------------------------------------------------

    def put_nowait(self, event: dict[str, Any]) -> None:
        """An event from Daphne's protocol (a frame, or the socket's end)."""
        if self._ending:
            return
        if self._busy is not None:
            backlog = self._backlog
            if backlog is None:
                backlog = self._backlog = collections.deque()
            backlog.append(event)
            return
        data = event.get("text")
        if data is None:
            data = event.get("bytes")
        if data is not None and len(data) <= 16 and self.session.take_ping(data):
            return  # a keep-alive Ping: nothing to schedule
        self.session.parked = False
        self._busy = asyncio.get_running_loop().create_task(
            self._read(event), context=self._context
        )

    def cancelled(self) -> None:
        """Daphne cancelled the application instance (shutdown, or outlived its socket).

        As a cancelled read loop's task did, this also cuts short an ending in progress
        (`on_disconnected` that does not return, say), so a shutdown cannot hang on it.
        """
        busy = self._busy
        if self._ending:
            if busy is not None and self._running and not busy.done():
                busy.cancel()
            return
        self._stop()

    # -- what the connection calls --------------------------------------------------------

    def abort(self) -> None:
        """The server ends the connection (`HubConnection.abort`): stop reading, then end."""
        self._stop()

    async def take_over(self) -> bool:
        """A resumed socket takes this connection over: close this socket quietly.

        Waits until no frame is being fed (a counted message must not be lost halfway);
        False when this reader ended meanwhile or does not stop in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.handler.options.HANDSHAKE_TIMEOUT
        while self._busy is not None and not self._ending and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self._busy is not None or self._ending:
            return False
        connection = self.session.connection
        assert isinstance(connection, HubConnection)
        websocket._replacing[connection] = self
        ending = self._stop()
        if ending is not None:
            await asyncio.wait({ending}, timeout=self.handler.options.HANDSHAKE_TIMEOUT)
        return ending is None or ending.done()

    # -- internals ------------------------------------------------------------------------

    def _stop(self) -> asyncio.Task[None] | None:
        """Stop reading: cancel the burst being fed, or end now if none is; the task that ends."""
        if self._ending:
            return self._busy
        busy = self._busy
        if busy is not None:
            if self._running and busy is not asyncio.current_task():
                busy.cancel()  # `_read` sees CancelledError and ends the connection
            else:
                # Not started yet (a task cancelled before it starts never runs its body),
                # or stopping itself (a frame it fed aborted the connection): `_read`
                # ends the connection at its next step.
                self._ending = True
            return busy
        self._ending = True
        self._busy = asyncio.get_running_loop().create_task(self._stopped(), context=self._context)
        return self._busy

    async def _stopped(self) -> None:
        self._running = True
        failure, replaced, released = websocket.cancelled_outcome(self.handler, self.session, self)
        await self._end(failure, False, replaced, released)

    async def _read(self, event: dict[str, Any]) -> None:
        """Feed a burst of frames, then the ones that arrived meanwhile; end on failure."""
        self._running = True
        session = self.session
        outcome: tuple[BaseException | None, bool, bool, bool]
        try:
            while True:
                if self._ending:  # stopped before this burst started, or by the last frame
                    failure, replaced, released = websocket.cancelled_outcome(
                        self.handler, session, self
                    )
                    outcome = (failure, False, replaced, released)
                    break
                kind = event["type"]
                if kind == "websocket.receive":
                    await session.feed(websocket._data(event))
                elif kind == "websocket.disconnect":
                    outcome = (None, True, False, False)
                    break
                backlog = self._backlog
                if not backlog and not self._ending:
                    self._busy = None
                    self._running = False
                    session.parked = True
                    return
                if backlog:
                    event = backlog.popleft()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            failure, replaced, released = websocket.cancelled_outcome(self.handler, session, self)
            outcome = (failure, False, replaced, released)
        except (ProtocolError, ClientClosed, ConnectionRefused) as error:
            outcome = (error, False, False, False)
        except Exception as error:
            logger.exception("Hub connection %s failed", safe_id(session.connection_id))
            outcome = (error, False, False, False)
        self._ending = True
        await self._end(*outcome)

    async def _end(
        self, failure: BaseException | None, client_gone: bool, replaced: bool, released: bool
    ) -> None:
        session = self.session
        connection = session.connection
        try:
            if isinstance(connection, HubConnection):
                live = websocket._live.get(connection)
                if live is not None and live[0] is self:
                    del websocket._live[connection]
            await websocket.end_socket(
                self.handler,
                session,
                self.outbound,
                daphne.asgi_send(self.outbound),
                failure=failure,
                client_gone=client_gone,
                replaced=replaced,
                released=released,
            )
        except Exception:
            logger.exception("Ending hub connection %s failed", safe_id(session.connection_id))
        finally:
            self._backlog = None
            standin = self._standin
            if standin is not None:
                standin.finish()


def park(
    handler: EndpointHandler,
    session: HubSession,
    outbound: DaphneWebSocketOutbound,
    send: Any,
) -> bool:
    """Hand a hub WebSocket whose handshake is done to a `ParkedReader`; False if not Daphne.

    On True the caller's read loop must return at once: the reader now receives Daphne's
    events (those already queued are passed on, in order).
    """
    connection = session.connection
    assert connection is not None
    reader = ParkedReader(handler, session, outbound)
    standin = daphne.park(send, reader)
    if standin is None:
        return False
    reader._standin = standin
    websocket._live[connection] = (reader, session)
    session.on_abort(reader.abort)
    session.parked = True
    for event in standin.queued:
        reader.put_nowait(event)
    standin.queued = ()
    return True
