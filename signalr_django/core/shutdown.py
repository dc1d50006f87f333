"""Graceful shutdown: on SIGTERM, every connection gets a Close that allows reconnecting.

A server closes its sockets on shutdown before the applications can say goodbye; clients
would then see an abrupt disconnect, or (when the application is cancelled first) a plain
Close that the official clients treat as final. So the drain runs first: it closes every
hub connection with `{"type":7,"allowReconnect":true}` and waits for them (at most
SHUTDOWN_DRAIN_TIMEOUT), so clients with automatic reconnect move to another worker.

How the drain gets to run first depends on the server:

- Daphne: Twisted's SIGTERM and SIGINT handlers are wrapped once the reactor runs (as for
  uvicorn below), so the drain runs before Twisted starts shutting down: Daphne's own
  "before shutdown" step cancels every application instance still running, which would
  otherwise race the drain. A "before shutdown" trigger drains too, for a reactor stopped
  by other means.
- Servers that speak the ASGI lifespan protocol (uvicorn): lifespan's shutdown event comes
  only after the server closed every connection, too late. At `lifespan.startup`
  (`signalr_django.lifespan`) the process's SIGTERM and SIGINT handlers, which the server
  installed, are wrapped (`install_signal_drain`): the first signal drains, then goes on to
  the server's own handler, which shuts down as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..protocol import Close

logger = logging.getLogger(__name__)

_installed = False

# Set once this process has begun to drain: from then on it accepts no new connection and
# reports itself not ready (`is_draining`).
_draining = False

# After a signal drain, until the server has closed its listening sockets, connections it
# still accepts are closed the same way; it looks for them this often (seconds).
LATECOMER_POLL = 0.05


def install() -> None:
    """Register the drain to run before the server shuts down (Daphne; idempotent)."""
    global _installed
    if _installed:
        return
    from ..server.daphne import before_shutdown, call_when_running

    _installed = before_shutdown(drain)
    if _installed:
        # Twisted installs its signal handlers as the reactor starts, before this runs.
        call_when_running(_install_daphne_signal_drain)


def _install_daphne_signal_drain() -> None:
    if not install_signal_drain(sweep=False):
        logger.info("No SIGTERM/SIGINT handler of Twisted to wrap; draining at reactor stop")


def is_draining() -> bool:
    """Whether this process has begun to shut down and must accept no new connection."""
    return _draining


def _close_all() -> int:
    """Close every hub connection (allowing reconnects) and every raw one; how many."""
    from ..lifetime.manager import _managers
    from ..raw.handler import close_raw_connections
    from ..transports.handoff import release

    connections = [c for m in _managers.values() for c in list(m.connections.values())]
    for connection in connections:
        # Stateful WebSocket clients resume, on another worker, without losing a message.
        if not release(connection):
            connection.abort(Close(allow_reconnect=True), "shutdown")
    return len(connections) + len(close_raw_connections())


def _connections_left() -> bool:
    from ..lifetime.manager import _managers
    from ..raw.handler import connection_count as raw_count
    from ..server.daphne import open_websockets

    return bool(any(m.connections for m in _managers.values()) or raw_count() or open_websockets())


async def drain(timeout: float | None = None) -> int:
    """Hand every client over to other workers; returns how many connections were closed.

    In this order, so that no client told to reconnect can land here again: refuse new
    connections (`is_draining`), close the listening sockets (Daphne), withdraw the load
    report (the WSGI site's negotiate redirect stops choosing this worker), and only then
    close every connection with a Close that allows reconnecting. Returns as soon as the
    last connection is gone, or at `timeout` (SHUTDOWN_DRAIN_TIMEOUT).
    """
    from ..conf import global_options
    from ..server.daphne import closing_http, stop_listening
    from . import load

    global _draining
    started = not _draining
    _draining = True
    if timeout is None:
        timeout = global_options().SHUTDOWN_DRAIN_TIMEOUT
    if started:
        logger.info("Draining: new connections are refused")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    stop_listening()
    # No report may offer this worker again while it drains; a cache that does not answer
    # (a redirect could not read it either) must not keep the clients waiting for long.
    from ..presence import registry

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout / 2):
            await load.stop()
            await registry.stop()  # queries across workers stop waiting for this one
    while closing_http() and loop.time() < deadline:
        await asyncio.sleep(0.005)  # kept-alive connections end before clients reconnect
    count = _close_all()  # connection handlers get a normal close: nothing to say
    while loop.time() < deadline and _connections_left():
        await asyncio.sleep(0.02)
    if count:
        logger.info("Closed %d connection(s) for shutdown", count)
    if _connections_left():
        logger.warning("Drain timeout (%.1f s): closing what is left", timeout)
    return count


# What a client that reaches a draining process is told (HTTP 503 with Retry-After).
DRAINING = b"This server is shutting down; retry on another server."


Handler = Callable[[int, FrameType | None], Any]


class SignalDrain:
    """Drains on the first SIGTERM or SIGINT, then hands the signal to the server's handler.

    The server's handler is what starts its own shutdown (uvicorn: stop listening, close the
    remaining sockets, wait for the applications, `lifespan.shutdown`); it is called once
    the drain has finished and every Close was handed to the server, or at once for a
    signal that arrives while the drain runs (an operator who insists). Connections the
    server still accepts after the drain are closed the same way until `stop`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sweep: bool = True) -> None:
        self.loop = loop
        self.sweep = sweep
        self.started = False
        self.forwarded = False
        self._drain: asyncio.Task[None] | None = None
        self._latecomers: asyncio.Task[None] | None = None

    def wrap(self, previous: Handler) -> Handler:
        """A signal handler that drains before calling `previous`."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if not self.started:
                self.started = True
                self.loop.call_soon_threadsafe(self._start, previous, signum)
                return
            self.forwarded = True
            previous(signum, frame)

        return on_signal

    def _start(self, previous: Handler, signum: int) -> None:
        self._drain = self.loop.create_task(self._drain_then(previous, signum))

    async def _drain_then(self, previous: Handler, signum: int) -> None:
        from ..conf import global_options
        from ..server.outbound import all_flushed
        from ..server.uvicorn import stop_listening

        timeout = global_options().SHUTDOWN_DRAIN_TIMEOUT
        started = self.loop.time()
        try:
            stop_listening(previous)  # uvicorn's own shutdown would close it only after
            await drain(timeout)
            await all_flushed(max(0.0, timeout - (self.loop.time() - started)))
        except Exception:
            logger.exception("The shutdown drain failed")
        finally:
            if not self.forwarded:
                self.forwarded = True
                previous(signum, None)
        if self.sweep:
            self._latecomers = self.loop.create_task(self._close_latecomers())

    async def _close_latecomers(self) -> None:
        while True:
            await asyncio.sleep(LATECOMER_POLL)
            _close_all()

    async def stop(self) -> None:
        """The server finished shutting down (`lifespan.shutdown`): stop closing latecomers."""
        if self._drain is not None:
            await asyncio.wait({self._drain})
        if self._latecomers is not None:
            self._latecomers.cancel()
            await asyncio.wait({self._latecomers})


_signal_drain: SignalDrain | None = None


def install_signal_drain(sweep: bool = True) -> bool:
    """Wrap the server's SIGTERM and SIGINT handlers so the drain runs first (idempotent).

    Only handlers installed with `signal.signal` (uvicorn's, Twisted's) are wrapped; a
    signal left to Python's defaults is not taken over. False when nothing was wrapped (not
    the main thread, or no server handler to call afterwards). `sweep` keeps closing
    connections the server still accepts after the drain (uvicorn listens until its own
    handler runs; Daphne's sockets are closed by the drain itself).
    """
    global _signal_drain
    if _signal_drain is not None:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # Twisted runs its start-up callbacks before its asyncio loop
        loop = asyncio.get_event_loop()
    drainer = SignalDrain(loop, sweep)
    wrapped = False
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous) or previous is signal.default_int_handler:
            continue
        signal.signal(signum, drainer.wrap(previous))
        wrapped = True
    if wrapped:
        _signal_drain = drainer
    return wrapped


async def stop_signal_drain() -> None:
    """The server has shut down: end the latecomer sweep (lifespan.shutdown).

    The server puts its own handlers back as it stops, so a server started again in this
    process (programmatic use, tests) gets the drain installed afresh at its start-up.
    """
    global _signal_drain
    drainer, _signal_drain = _signal_drain, None
    if drainer is not None:
        with contextlib.suppress(Exception):
            await drainer.stop()
