"""`HubCommunicator`: one hub connection driven by a test, without a server or a socket.

The communicator plays the client's part of the hub protocol. What it sends is encoded
with the connection's protocol (JSON or MessagePack) and fed to the same `HubSession` a
WebSocket's read loop feeds; what the server writes lands in an in-memory `Outbound` and
is decoded back into messages. Everything between (handshake, authentication and the hub's
authorization, filters, binding, `on_connected`/`on_disconnected`, the lifetime manager
with its groups, users and backplane) is the production code path, so a test observes what
a real client would, and a hub method that only works by accident over the network fails
here too (a result the protocol cannot encode, for instance).

Waits (`invoke`, `receive`, stream items) end as soon as what they wait for arrives; their
timeouts only bound a test that would otherwise hang, so they are generous by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from inspect import isawaitable
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from django.utils.module_loading import import_string

from ..auth import AUTH_EXPIRES, authentication_expiry
from ..core.connection import HubConnection
from ..dispatch.dispatcher import ClientClosed
from ..dispatch.handler import ConnectionRefused, get_handler
from ..dispatch.session import HandshakeFailed, HubSession
from ..exceptions import ProtocolError
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
    TransferFormat,
    get_protocol,
)
from ..protocol.framing import BinaryFramer, TextFramer
from ..server.outbound import Outbound
from ..transports.negotiate import new_connection_id
from ..transports.security import AuthenticationFailed, authenticate, hub_allows, origin_allowed
from .state import close_sync_connections

logger = logging.getLogger(__name__)

# How long a wait for something the test expects may take before it fails (seconds). Only
# a hung test ever waits this long; what arrives earlier ends the wait at once.
DEFAULT_TIMEOUT = 10.0

# How long `assert_nothing_received` watches by default.
QUIET_PERIOD = 0.1

RECORD_SEPARATOR = "\x1e"
TRANSPORT = "WebSockets"
FORMATS = (TransferFormat.TEXT, TransferFormat.BINARY)

Handler = Callable[..., Any]


class HubInvocationError(Exception):
    """The server ended an invocation or a stream with an error.

    `message` is the text of the error Completion, exactly as a client receives it (the
    generic text unless the hub raised `HubException` or detailed errors are on).
    """

    def __init__(self, method: str, message: str) -> None:
        super().__init__(message)
        self.method = method
        self.message = message


class ConnectionClosed(Exception):
    """The connection ended while the test waited on it or wanted to use it.

    `error` and `allow_reconnect` come from the server's Close message; both are empty when
    the client side ended the connection or no Close was sent.
    """

    def __init__(self, error: str | None = None, allow_reconnect: bool = False) -> None:
        text = f"The server closed the connection: {error}" if error else "The connection closed."
        super().__init__(text)
        self.error = error
        self.allow_reconnect = allow_reconnect


class ConnectionRejected(Exception):
    """The connection was never accepted: authentication, authorization or the handshake
    refused it (a real client gets a 401/403 or a handshake error)."""


@dataclass(slots=True)
class ClientInvocation:
    """A client method the server invoked: `target` and its `arguments` as sent on the wire.

    `invocation_id` is set when the server waits for a result (`clients.client(...).invoke`);
    answer with `HubCommunicator.answer`. It takes no part in comparisons, so
    `await comm.receive() == ClientInvocation("ReceiveMessage", ["alice", "hi"])` holds.
    """

    target: str
    arguments: list[Any]
    invocation_id: str | None = field(default=None, compare=False)


class _ClientEnd(Outbound):
    """The connection's outbound: each record goes straight to the communicator."""

    __slots__ = ("_closed", "_owner")

    def __init__(self, owner: HubCommunicator) -> None:
        self._owner = owner
        self._closed = False

    def write(self, payload: Payload) -> int:
        if not self._closed:
            self._owner._on_payload(payload)
        return 0

    def pending(self) -> int:
        return 0

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


class HubCommunicator:
    """A client of `hub` in the test's own process: connect, call, receive, disconnect.

    `hub` is the hub class or its dotted path. `user` is who connects (anonymous when
    None; a bearer token in `headers` goes through the configured AUTHENTICATOR instead).
    `headers` and `query` become the connecting request's (`context.headers`,
    `context.query`). `route` names the endpoint whose `map_hub` options apply. Use it as
    an async context manager, or call `connect()` and `disconnect()`.
    """

    def __init__(
        self,
        hub: type | str,
        *,
        user: Any = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        query: Mapping[str, str] | str | None = None,
        protocol: str = "json",
        route: str = "",
        connection_id: str | None = None,
    ) -> None:
        self.hub_cls: type = import_string(hub) if isinstance(hub, str) else hub
        chosen = get_protocol(protocol)
        if chosen is None:
            raise ValueError(f"Unknown hub protocol {protocol!r}: use 'json' or 'messagepack'.")
        self.protocol: HubProtocol = chosen
        self.route = route.strip("/")
        self.connection_id = connection_id or new_connection_id()
        self.scope: dict[str, Any] = _scope(self.route, headers, query, user)
        # Every message the server sent, in order (pings and completions included).
        self.messages: list[HubMessage] = []
        self._session: HubSession | None = None
        self._outbound: _ClientEnd | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._lock: asyncio.Lock | None = None
        self._arrival: asyncio.Event | None = None
        self._ids = itertools.count(1)
        self._handshake: str | None = None
        self._framer: TextFramer | BinaryFramer | None = None
        self._calls: dict[str, tuple[str, asyncio.Future[Any]]] = {}
        self._streams: dict[str, StreamReader] = {}
        self._inbox: deque[ClientInvocation] = deque()
        self._handlers: dict[str, Handler] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finishing: asyncio.Task[None] | None = None
        self._ended = False
        self._closed: ConnectionClosed | None = None

    # -- connecting --------------------------------------------------------------------

    async def __aenter__(self) -> HubCommunicator:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    async def connect(self) -> None:
        """Authenticate, handshake and run `on_connected`, as a WebSocket client would.

        Raises ConnectionRejected when the request or the handshake is refused, and
        ConnectionClosed when `on_connected` (or a filter's) refuses the connection.
        """
        if self._session is not None:
            raise RuntimeError("This communicator already connected; make a new one.")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        await close_sync_connections()
        self._lock = asyncio.Lock()
        self._arrival = asyncio.Event()
        handler = get_handler(self.hub_cls, self.route)
        options = handler.options
        scope = self.scope
        if not origin_allowed(scope, options):
            raise ConnectionRejected("The Origin is not allowed (CORS_ALLOWED_ORIGINS).")
        try:
            user = await authenticate(scope, options)
        except AuthenticationFailed as exc:
            raise ConnectionRejected(str(exc)) from None
        if not await hub_allows(self.hub_cls, user, options):
            raise ConnectionRejected(
                f"{self.hub_cls.__qualname__} does not let this user in (@authorize or AUTHORIZE)."
            )
        if options.CLOSE_ON_AUTHENTICATION_EXPIRATION:
            scope[AUTH_EXPIRES] = await authentication_expiry(scope, user)
        self._outbound = _ClientEnd(self)
        self._session = HubSession(
            handler,
            connection_id=self.connection_id,
            scope=scope,
            user=user,
            transport=TRANSPORT,
            formats=FORMATS,
            outbound=self._outbound,
            on_abort=self._on_abort,
        )
        request = json.dumps({"protocol": self.protocol.name, "version": 1}) + RECORD_SEPARATOR
        binary = self.protocol.transfer_format is TransferFormat.BINARY
        self._framer = BinaryFramer() if binary else TextFramer()
        try:
            async with self._lock:
                await self._feed(request.encode() if binary else request)
        except HandshakeFailed as exc:
            self._ended = True
            self._mark_closed(None)
            raise ConnectionRejected(f"The handshake was refused: {exc}") from None
        if self._closed is not None:
            raise self._closed

    async def disconnect(self) -> None:
        """End the connection as a client closing its socket; `on_disconnected` runs.

        Harmless when the connection already ended (the server closed it, say).
        """
        if self._session is None:
            return
        finishing = self._finishing
        if finishing is not None:
            with contextlib.suppress(Exception):
                await finishing
        await self._finish(None, client_gone=True)
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await close_sync_connections()

    @property
    def connection(self) -> HubConnection:
        """The server's side of this connection (groups, items, user), once connected."""
        session = self._session
        if session is None or session.connection is None:
            raise RuntimeError("Not connected: call connect() first.")
        return session.connection

    @property
    def user(self) -> Any:
        """The user the server sees on this connection."""
        return self.connection.user

    @property
    def closed(self) -> bool:
        """True once the connection ended, from either side."""
        return self._closed is not None

    @property
    def close_error(self) -> str | None:
        """The error of the server's Close message (None for a clean close)."""
        return self._closed.error if self._closed is not None else None

    @property
    def close_allows_reconnect(self) -> bool:
        """Whether the server's Close message let the client reconnect."""
        return self._closed.allow_reconnect if self._closed is not None else False

    async def wait_closed(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Wait until the server closed the connection (an abort, a refused message...)."""
        await self._wait_for(lambda: self._closed is not None, timeout, "the connection to close")

    # -- calling the hub ---------------------------------------------------------------

    async def invoke(self, method: str, *args: Any, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """Call a hub method and return its result (None for a method returning nothing).

        Async iterables among `args` are uploaded as client-to-server streams. Raises
        HubInvocationError with the server's error text, ConnectionClosed when the
        connection ends first, TimeoutError after `timeout` seconds.
        """
        invocation_id = self._new_id()
        arguments, stream_ids, uploads = self._split(args)
        future: asyncio.Future[Any] = self._running_loop().create_future()
        self._calls[invocation_id] = (method, future)
        try:
            await self.send_message(Invocation(method, arguments, invocation_id, stream_ids))
            self._start_uploads(uploads)
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise TimeoutError(f"'{method}' did not complete within {timeout} s.") from None
        finally:
            self._calls.pop(invocation_id, None)

    async def send(self, method: str, *args: Any) -> None:
        """Call a hub method without waiting for it (no Completion comes back)."""
        arguments, stream_ids, uploads = self._split(args)
        await self.send_message(Invocation(method, arguments, None, stream_ids))
        self._start_uploads(uploads)

    def stream(
        self, method: str, *args: Any, timeout: float | None = DEFAULT_TIMEOUT
    ) -> StreamReader:
        """A server-to-client stream: `async for item in comm.stream("Counter", 3)`.

        The StreamInvocation goes out on the first iteration. `timeout` bounds the wait
        for each item. Leaving early? `await reader.cancel()`, or use
        `async with comm.stream(...) as items:`, which cancels on exit.
        """
        return StreamReader(self, method, args, timeout)

    async def send_message(self, message: HubMessage) -> None:
        """Send any hub protocol message, encoded as a client would (for protocol tests)."""
        if self._closed is not None:
            raise self._closed
        if self._lock is None:
            raise RuntimeError("Not connected: call connect() first.")
        payload = self.protocol.encode(message)
        async with self._lock:
            await self._feed(payload)

    # -- what the server invokes on the client ------------------------------------------

    def on(self, target: str, handler: Handler) -> None:
        """Handle the server's invocations of `target` (matched case-insensitively).

        `handler(*arguments)` may be sync or async. When the server waits for a result
        (client results), what the handler returns is the answer and an exception it raises
        is sent as the error. Handled invocations do not reach `receive`.
        """
        self._handlers[target.lower()] = handler

    def off(self, target: str) -> None:
        """Stop handling `target`: its invocations wait for `receive` again."""
        self._handlers.pop(target.lower(), None)

    async def receive(self, timeout: float | None = DEFAULT_TIMEOUT) -> ClientInvocation:
        """The next client method invocation the server sent (first in, first out).

        Raises TimeoutError when none arrives within `timeout` seconds and ConnectionClosed
        when the connection ended with nothing left to receive.
        """
        return await self._take(None, timeout)

    async def receive_invocation(
        self, target: str, timeout: float | None = DEFAULT_TIMEOUT
    ) -> ClientInvocation:
        """The next invocation of `target`; invocations of other methods stay queued."""
        return await self._take(target.lower(), timeout)

    async def assert_nothing_received(self, timeout: float = QUIET_PERIOD) -> None:
        """Fail when an invocation arrives (or is waiting) within `timeout` seconds.

        Let what the test triggered run first (await the call that triggers it): this
        only watches for a while, it cannot prove that nothing will ever come.
        """
        with contextlib.suppress(TimeoutError):
            await self._wait_for(lambda: bool(self._inbox), timeout, "")
        if self._inbox:
            raise AssertionError(f"Expected no client invocation, received {list(self._inbox)}")

    async def answer(
        self, invocation: ClientInvocation, result: Any = None, *, error: str | None = None
    ) -> None:
        """Answer a client-result invocation taken with `receive`: `result`, or `error`."""
        if invocation.invocation_id is None:
            raise ValueError(f"The server sent '{invocation.target}' without awaiting a result.")
        if error is not None:
            await self.send_message(Completion(invocation.invocation_id, error))
        else:
            await self.send_message(Completion(invocation.invocation_id, result=result))

    # -- inside ----------------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("Not connected: call connect() first.")
        return self._loop

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _split(
        self, args: tuple[Any, ...]
    ) -> tuple[list[Any], list[str] | None, list[tuple[str, AsyncIterable[Any]]]]:
        """Plain arguments, and a stream id for each async iterable (uploads)."""
        arguments: list[Any] = []
        uploads: list[tuple[str, AsyncIterable[Any]]] = []
        for arg in args:
            if hasattr(arg, "__aiter__"):
                uploads.append((self._new_id(), arg))
            else:
                arguments.append(arg)
        return arguments, [sid for sid, _ in uploads] or None, uploads

    def _start_uploads(self, uploads: list[tuple[str, AsyncIterable[Any]]]) -> None:
        for stream_id, source in uploads:
            self._spawn(self._upload(stream_id, source))

    async def _upload(self, stream_id: str, source: AsyncIterable[Any]) -> None:
        """Send the items of one upload, then its Completion (with the error it raised)."""
        with contextlib.suppress(ConnectionClosed):
            try:
                async for item in source:
                    await self.send_message(StreamItem(stream_id, item))
            except ConnectionClosed:
                raise
            except Exception as exc:
                await self.send_message(Completion(stream_id, str(exc)))
                return
            await self.send_message(Completion(stream_id))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = self._running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _feed(self, data: Payload) -> None:
        """Hand bytes to the session, ending the connection on what ends a real one."""
        session = self._session
        assert session is not None
        try:
            await session.feed(data)
        except HandshakeFailed:
            raise
        except (ProtocolError, ClientClosed, ConnectionRefused) as error:
            await self._finish(error, client_gone=False)
        except Exception as error:
            await self._finish(error, client_gone=False)
            raise

    async def _finish(self, failure: BaseException | None, client_gone: bool) -> None:
        """Write the Close (unless the client left) and run the disconnect path, once."""
        if self._ended:
            return
        self._ended = True
        session = self._session
        assert session is not None and self._outbound is not None
        try:
            await session.finish(failure, client_gone)
        finally:
            self._outbound.close()
            self._mark_closed(None)

    def _on_abort(self) -> None:
        """The server ended the connection (`context.abort()`, a cap, a timeout)."""
        loop = self._running_loop()
        if threading.get_ident() != self._thread:
            loop.call_soon_threadsafe(self._on_abort)
            return
        if self._finishing is None:
            self._finishing = self._spawn(self._finish(None, client_gone=False))

    def _on_payload(self, payload: Payload) -> None:
        """Decode what the server wrote and route each message."""
        if threading.get_ident() != self._thread:
            self._running_loop().call_soon_threadsafe(self._on_payload, payload)
            return
        if self._handshake is None:
            text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
            response = json.loads(text.split(RECORD_SEPARATOR, 1)[0])
            self._handshake = str(response.get("error") or "")
            return
        framer = self._framer
        records: list[Any]
        if isinstance(framer, TextFramer):
            records = framer.feed(payload if isinstance(payload, str) else payload.decode())
        else:
            assert framer is not None and isinstance(payload, bytes)
            records = framer.feed(payload)
        for record in records:
            message = self.protocol.decode(record)
            if message is not None:
                self.messages.append(message)
                self._on_message(message)

    def _on_message(self, message: HubMessage) -> None:
        if isinstance(message, Invocation):
            self._on_invocation(message)
        elif isinstance(message, StreamItem):
            reader = self._streams.get(message.invocation_id)
            if reader is not None:
                reader._push(message.item)
        elif isinstance(message, Completion):
            call = self._calls.get(message.invocation_id)
            if call is not None and not call[1].done():
                method, future = call
                if message.error is not None:
                    future.set_exception(HubInvocationError(method, message.error))
                else:
                    future.set_result(message.result if message.has_result else None)
            reader = self._streams.pop(message.invocation_id, None)
            if reader is not None:
                error = message.error
                reader._end(HubInvocationError(reader.method, error) if error else None)
        elif isinstance(message, Close):
            self._mark_closed(message)
        # Pings, Acks and Sequences need nothing from a test client.

    def _on_invocation(self, message: Invocation) -> None:
        invocation = ClientInvocation(message.target, message.arguments, message.invocation_id)
        handler = self._handlers.get(message.target.lower())
        if handler is None:
            self._inbox.append(invocation)
            self._notify()
        else:
            self._spawn(self._handle(handler, invocation))

    async def _handle(self, handler: Handler, invocation: ClientInvocation) -> None:
        try:
            result = handler(*invocation.arguments)
            if isawaitable(result):
                result = await result
        except Exception as exc:
            if invocation.invocation_id is None:
                logger.exception("The handler of '%s' failed", invocation.target)
                return
            with contextlib.suppress(ConnectionClosed):
                await self.send_message(Completion(invocation.invocation_id, str(exc)))
            return
        if invocation.invocation_id is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.send_message(Completion(invocation.invocation_id, result=result))

    def _mark_closed(self, close: Close | None) -> None:
        """The connection ended: fail every wait (the first Close seen gives the reason)."""
        if self._closed is not None:
            return
        closed = ConnectionClosed(close.error, close.allow_reconnect) if close else None
        self._closed = closed or ConnectionClosed()
        for _method, future in self._calls.values():
            if not future.done():
                future.set_exception(self._closed)
        for reader in list(self._streams.values()):
            reader._end(self._closed)
        self._streams.clear()
        self._notify()

    def _notify(self) -> None:
        if self._arrival is not None:
            self._arrival.set()

    async def _take(self, target: str | None, timeout: float | None) -> ClientInvocation:
        found: list[ClientInvocation] = []

        def ready() -> bool:
            for invocation in self._inbox:
                if target is None or invocation.target.lower() == target:
                    self._inbox.remove(invocation)
                    found.append(invocation)
                    return True
            if self._closed is not None:
                raise self._closed
            return False

        what = "a client invocation" if target is None else f"an invocation of '{target}'"
        await self._wait_for(ready, timeout, what)
        return found[0]

    async def _wait_for(self, ready: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Return once `ready()` holds, re-checking on every arrival; TimeoutError after."""
        arrival = self._arrival
        if arrival is None:
            raise RuntimeError("Not connected: call connect() first.")
        loop = self._running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not ready():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"No {what} within {timeout} s.")
            arrival.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrival.wait(), remaining)


class StreamReader:
    """The items of one server-to-client stream, as an async iterator."""

    def __init__(
        self,
        communicator: HubCommunicator,
        method: str,
        args: tuple[Any, ...],
        timeout: float | None,
    ) -> None:
        self.method = method
        self.invocation_id: str | None = None
        self._communicator = communicator
        self._args = args
        self._timeout = timeout
        self._items: deque[Any] = deque()
        self._done = False
        self._error: BaseException | None = None
        self._event = asyncio.Event()

    async def start(self) -> None:
        """Send the StreamInvocation (iterating does it on first use)."""
        if self.invocation_id is not None:
            return
        comm = self._communicator
        self.invocation_id = comm._new_id()
        arguments, stream_ids, uploads = comm._split(self._args)
        comm._streams[self.invocation_id] = self
        await comm.send_message(
            StreamInvocation(self.invocation_id, self.method, arguments, stream_ids)
        )
        comm._start_uploads(uploads)

    async def cancel(self) -> None:
        """Tell the server to stop the stream (CancelInvocation); later items are dropped."""
        if self.invocation_id is None or self._done:
            return
        self._end(None)
        self._communicator._streams.pop(self.invocation_id, None)
        with contextlib.suppress(ConnectionClosed):
            await self._communicator.send_message(CancelInvocation(self.invocation_id))

    async def collect(self) -> list[Any]:
        """Every item until the stream completes."""
        return [item async for item in self]

    def __aiter__(self) -> StreamReader:
        return self

    async def __anext__(self) -> Any:
        await self.start()
        while not self._items:
            if self._done:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), self._timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"No item of stream '{self.method}' within {self._timeout} s."
                ) from None
        return self._items.popleft()

    async def __aenter__(self) -> StreamReader:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cancel()

    def _push(self, item: Any) -> None:
        if not self._done:
            self._items.append(item)
            self._event.set()

    def _end(self, error: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self._error = error
            self._event.set()


def _scope(
    route: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    query: Mapping[str, str] | str | None,
    user: Any,
) -> dict[str, Any]:
    """The ASGI scope of the WebSocket request a client would open."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    raw_headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs
    ]
    query_string = urlencode(query) if isinstance(query, Mapping) else (query or "").lstrip("?")
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": f"/{route}",
        "raw_path": f"/{route}".encode(),
        "query_string": query_string.encode("latin-1"),
        "headers": raw_headers,
        "client": ("127.0.0.1", 0),
        "server": ("testserver", 80),
        "subprotocols": [],
    }
    if user is not None:
        scope["user"] = user
    return scope
