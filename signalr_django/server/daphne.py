"""The Daphne adapter: the one module that reads Daphne, Twisted and autobahn internals.

ASGI gives an application no backpressure and no way to share one encoded frame among many
sockets. Under Daphne both are available one level down, and this module is where the
project reaches for them:

- the autobahn WebSocket protocol behind an ASGI `send` (`functools.partial(
  server.handle_reply, protocol)`), whose factory prepares a frame once for many sockets;
- Twisted's TCP transport under it: the bytes it still buffers (`dataBuffer`, `offset`,
  `_tempDataLen`) are the connection's outbound queue, `pauseProducing`/`resumeProducing`
  stop and restart reading, and a frame can go straight to the socket when nothing waits;
- the reactor's start and shutdown hooks (load reports, graceful drain);
- for the drain, Daphne's listening ports among the reactor's readers (closed first), its
  server's connection table, and Twisted's HTTP channels behind kept-alive connections;
- what a WebSocket keeps of its opening handshake (`release_handshake`): about 5 KB per
  connection that nothing reads once it is open, which at 50,000 connections is 250 MB;
- Daphne's once-a-second sweep over every connection (`tune_server`);
- for plain HTTP requests (negotiate, Server-Sent Events, long polling), Daphne's HTTP
  factory: its requests skip Twisted's form parsing, and Twisted's own access log is not
  written where Daphne discards it (`tune_http_factory`);
- autobahn's per-message path: the protocol's `dataReceived` and `onMessageEnd`
  (`_QuietFrames`) and the module-level `create_xor_masker` (`tune_masking`);
- the WebSocket protocol's `application_queue` and Daphne's table of application instances,
  for connections that go on without an application task (`park`).

Every such attribute is checked when a connection starts (`websocket_outbound`); when one
is missing (a Daphne or Twisted upgrade renamed it) the connection falls back to the generic
`QueuedOutbound` and a WARNING says so once, instead of backpressure silently switching
off. tests/unit/test_daphne_adapter.py pins each attribute on the installed versions.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import struct
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .outbound import Outbound

if TYPE_CHECKING:
    from ..lifetime.serialized import SerializedMessage
    from ..protocol import HubProtocol, Payload

logger = logging.getLogger(__name__)

# What the adapter uses, checked per connection (a missing name disables the fast path).
PROTOCOL_ATTRIBUTES = ("sendMessage", "sendPreparedMessage", "factory", "STATE_OPEN", "state")
TRANSPORT_ATTRIBUTES = ("dataBuffer", "offset", "_tempDataLen", "pauseProducing", "resumeProducing")

_warned = False

# The WebSocket protocols behind this package's connections, for the drain (`open_websockets`).
_websockets: weakref.WeakSet[Any] = weakref.WeakSet()


def server_protocol(send: Any) -> Any:
    """The Daphne protocol object behind an ASGI `send`, or None under other servers.

    Daphne passes `functools.partial(server.handle_reply, protocol)`; Channels' session
    middleware wraps it (`real_send`) without touching WebSocket or body messages, so it
    is looked through.
    """
    for _ in range(8):
        if isinstance(send, functools.partial) and send.args:
            return send.args[0]
        inner = getattr(getattr(send, "__self__", None), "real_send", None)
        if inner is None:
            return None
        send = inner
    return None


def transport_of(protocol: Any) -> Any:
    """The Twisted transport under a Daphne protocol (WebSocket or HTTP), or None."""
    transport = getattr(protocol, "transport", None)
    if transport is None:
        channel = getattr(protocol, "channel", None)
        transport = getattr(channel, "transport", None)
    return transport


def _has(obj: Any, names: tuple[str, ...]) -> bool:
    return obj is not None and all(hasattr(obj, name) for name in names)


def _warn_once(what: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning(
            "Daphne's %s lacks attributes signalr_django relies on (a Daphne or Twisted "
            "upgrade?); connections use the generic ASGI path: slower fan-out, no paused reads.",
            what,
        )


def backlog(transport: Any) -> int:
    """Bytes a Twisted transport holds that the peer has not taken yet."""
    return int(len(transport.dataBuffer) - transport.offset + transport._tempDataLen)


def direct_writer(transport: Any) -> Callable[[bytes], None] | None:
    """A writer that sends on the socket at once when Twisted has nothing queued.

    Twisted's `transport.write` always queues, registers the socket with the event loop and
    writes on the next loop iteration: two epoll calls and a loop pass per message. For a
    broadcast to thousands of connections that is most of the cost, so, as asyncio's own
    transports do, the frame is sent straight away when nothing is waiting, and only the
    part the kernel did not take goes through Twisted. Plain TCP only (a TLS transport
    must encrypt, so it keeps Twisted's path); anything unusual also falls back to it.
    """
    try:
        from twisted.internet import tcp
    except ImportError:  # pragma: no cover - Twisted comes with Daphne
        return None
    if type(transport) is not tcp.Server:
        return None
    transport = cast(Any, transport)  # Twisted's private buffer attributes are read below
    sock = transport.socket
    send = sock.send

    def write(data: bytes) -> None:
        if (
            transport._tempDataBuffer
            or len(transport.dataBuffer) > transport.offset
            or not transport.connected
            or transport.disconnecting
            or transport._writeDisconnected
        ):
            transport.write(data)
            return
        try:
            sent = send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            transport.write(data)  # let Twisted notice and report the broken connection
            return
        if sent < len(data):
            transport.write(data[sent:])

    return write


# First byte of an unfragmented server frame (FIN + opcode), as autobahn's PreparedMessage.
TEXT = 0x81
BINARY = 0x82


def frame(data: bytes, first: int) -> bytes:
    """One unmasked, uncompressed WebSocket frame carrying `data` (RFC 6455 section 5.2).

    The bytes autobahn's `PreparedMessage(...).payloadHybi` holds for a server's frame, made
    without its object and option checks: the direct path writes one per message.
    """
    size = len(data)
    if size <= 125:
        return bytes((first, size)) + data
    if size <= 0xFFFF:
        return _SHORT(first, 126, size) + data
    return _LONG(first, 127, size) + data


_SHORT = struct.Struct("!BBH").pack
_LONG = struct.Struct("!BBQ").pack


class DaphneWebSocketOutbound(Outbound):
    """Frames go to autobahn's protocol (or straight to the socket); Twisted queues the rest.

    Writing is synchronous: no coroutine, no ASGI message, no per-message dispatch. Fan-out
    writes one frame prepared once per protocol (`SerializedMessage.prepared`).
    """

    __slots__ = ("_closed", "_direct", "_factory", "_open", "_protocol", "_transport")

    def __init__(self, protocol: Any, transport: Any) -> None:
        self._protocol = protocol
        self._transport = transport
        self._open = protocol.STATE_OPEN
        self._factory = protocol.factory
        self._closed = False
        # Compressed connections need autobahn's own framing per message.
        self._direct = (
            direct_writer(transport)
            if getattr(protocol, "_perMessageCompress", None) is None
            else None
        )

    def write(self, payload: Payload) -> int:
        """Frame the record and hand it to the socket; returns Twisted's backlog."""
        protocol = self._protocol
        if self._closed or protocol.state != self._open:
            return 0
        direct = self._direct
        if type(payload) is str:
            data = payload.encode("utf-8")
            if direct is not None:
                direct(frame(data, TEXT))
            else:
                protocol.sendMessage(data, False)
        elif direct is not None:
            direct(frame(payload, BINARY))  # type: ignore[arg-type]
        else:
            protocol.sendMessage(payload, True)
        transport = self._transport
        return int(len(transport.dataBuffer) - transport.offset + transport._tempDataLen)

    def write_serialized(self, message: SerializedMessage, protocol: HubProtocol) -> int:
        """Write the message's shared prepared frame (made once for all recipients)."""
        sink = self._protocol
        if self._closed or sink.state != self._open:
            return 0
        frame = message.prepared(protocol, self._factory)
        direct = self._direct
        if direct is not None:
            direct(frame.payloadHybi)
        else:
            sink.sendPreparedMessage(frame)
        return backlog(self._transport)

    def pending(self) -> int:
        """What Twisted still buffers for this socket."""
        return backlog(self._transport)

    def pause_reading(self) -> bool:
        """Stop reading the socket: the client's TCP window fills and it must wait."""
        self._transport.pauseProducing()
        return True

    def resume_reading(self) -> None:
        """Read the socket again."""
        self._transport.resumeProducing()

    def close(self) -> None:
        """Write nothing more (Twisted flushes or drops what it holds when the socket ends)."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """True once closed or the WebSocket left the open state."""
        return self._closed or self._protocol.state != self._open


def websocket_outbound(send: Any) -> DaphneWebSocketOutbound | None:
    """The Daphne outbound for an accepted WebSocket, or None (not Daphne, or unexpected)."""
    protocol = server_protocol(send)
    if protocol is None:
        return None
    transport = transport_of(protocol)
    if not _has(protocol, PROTOCOL_ATTRIBUTES):
        _warn_once("WebSocket protocol")
        return None
    if not _has(transport, TRANSPORT_ATTRIBUTES):
        _warn_once("transport")
        return None
    try:
        backlog(transport)
    except (AttributeError, TypeError):
        _warn_once("transport")
        return None
    _websockets.add(protocol)
    release_handshake(protocol, transport)
    adopt_tuned_class(protocol)
    return DaphneWebSocketOutbound(protocol, transport)


def adopt_tuned_class(protocol: Any) -> bool:
    """Give a protocol built before its factory was tuned the tuned class; True when its class
    is now its factory's.

    Connections opened together with the first one were built by the untuned factory, and
    would pay autobahn's per-message overhead (`_QuietFrames`) for their whole life. The
    tuned class is theirs plus class attributes equal to the options they already copied
    and the `_QuietFrames` methods, so the swap changes nothing else.
    """
    factory = getattr(protocol, "factory", None)
    tuned = getattr(factory, "protocol", None)
    cls = type(protocol)
    if tuned is cls:
        return True
    if (
        id(factory) not in _factories_tuned
        or not isinstance(tuned, type)
        or tuned.__bases__[-1] is not cls
    ):
        return False
    try:
        protocol.__class__ = tuned
    except TypeError:  # pragma: no cover - a layout autobahn or Daphne changed
        return False
    return True


class _LazyFormat(str):
    """Formats its object with `pprint.pformat` only when a log record is rendered.

    A `str` (empty until rendered) so that autobahn's own `__repr__`s that return
    `pformat(...)` still return a string.
    """

    _obj: Any

    def __new__(cls, obj: Any) -> _LazyFormat:
        self = super().__new__(cls, "")
        self._obj = obj
        return self

    def __str__(self) -> str:
        import pprint

        return pprint.pformat(self._obj)

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class _QuietFrames:
    """Per-message work autobahn does for nothing, skipped (mixed into the tuned protocol).

    - `dataReceived` builds the arguments of a DEBUG line (`hltype`, `hlval`: qualified
      names coloured by click) for every read, before the logger drops it: about 5 % of the
      server's CPU per echo. With txaio's DEBUG off (its `debug` is the no-op) the bytes go
      straight to `_dataReceived`; with DEBUG on, autobahn's own method runs.
    - `onMessageEnd` fires a "message" event to observers after each message: a Deferred,
      a gather and two callbacks when nothing observes (Daphne never does). With no
      listener and no timing tracker the message is delivered exactly as autobahn does it,
      without the event; otherwise autobahn's own method runs.
    """

    log: Any
    _listeners: Any
    trackedTimings: Any  # noqa: N815 - autobahn's name
    failedByMe: bool  # noqa: N815 - autobahn's name
    message_data: Any
    message_is_binary: bool

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - autobahn's name
        if self.log.debug is _txaio_no_op:
            self._dataReceived(data)  # type: ignore[attr-defined]
        else:
            super().dataReceived(data)  # type: ignore[misc]

    def onMessageEnd(self) -> None:  # noqa: N802 - autobahn's name
        if self._listeners is not None or self.trackedTimings or self.failedByMe:
            super().onMessageEnd()  # type: ignore[misc]
            return
        self._onMessage(b"".join(self.message_data), self.message_is_binary)  # type: ignore[attr-defined]
        self.message_data = None


def _txaio_no_op_function() -> Any:
    """txaio's stand-in for a disabled log level on Twisted (None if it is not there)."""
    try:
        from txaio import tx
    except ImportError:  # pragma: no cover - txaio comes with autobahn
        return None
    return getattr(tx, "_no_op", None)


_txaio_no_op = _txaio_no_op_function()

# What `_QuietFrames` calls or reads on autobahn's protocol.
QUIET_FRAMES_ATTRIBUTES = (
    "dataReceived",
    "_dataReceived",
    "onMessageEnd",
    "_onMessage",
    "_listeners",
    "log",
)


def _quiet_frames_base(base: type) -> tuple[type, ...]:
    """The bases of the tuned protocol: `_QuietFrames` first when autobahn looks as expected."""
    if _txaio_no_op is None or not all(hasattr(base, n) for n in QUIET_FRAMES_ATTRIBUTES):
        return (base,)
    return (_QuietFrames, base)


# Frames shorter than this are unmasked by `_SmallMasker`; longer ones by autobahn's own.
SMALL_FRAME = 512


class _SmallMasker:
    """Unmasks a short client frame with one integer XOR (autobahn's masker interface).

    autobahn makes a masker for every client frame; its native one allocates two cffi
    buffers and a finaliser per frame and copies the payload twice, which for a 100-byte
    invocation costs about four times this (and 4-5 % of the server's CPU per echo). Past
    a few hundred bytes the native one is faster, so it keeps those frames.
    """

    __slots__ = ("_mask", "_ptr")

    def __init__(self, mask: bytes) -> None:
        self._mask = mask
        self._ptr = 0

    def pointer(self) -> int:
        """Payload bytes processed so far (autobahn compares it with the frame length)."""
        return self._ptr

    def reset(self) -> None:
        """Start over at the first payload byte."""
        self._ptr = 0

    def process(self, data: bytes) -> bytes:
        """XOR the next `len(data)` payload bytes with the mask, continuing where it was."""
        size = len(data)
        ptr = self._ptr
        self._ptr = ptr + size
        mask = self._mask
        shift = ptr & 3
        if shift:
            mask = mask[shift:] + mask[:shift]
        key = int.from_bytes((mask * ((size >> 2) + 1))[:size], "little")
        return (int.from_bytes(data, "little") ^ key).to_bytes(size, "little")


def tune_masking() -> bool:
    """Give autobahn's frame parser `_SmallMasker` for short frames; whether it is in place.

    autobahn's protocol module calls its module-level `create_xor_masker(mask, length)`
    for each masked frame; the replacement returns `_SmallMasker` below `SMALL_FRAME` bytes
    and autobahn's own masker otherwise (what it returns is unchanged for those).
    """
    try:
        from autobahn.websocket import protocol as ab_protocol
    except ImportError:  # pragma: no cover - autobahn comes with Daphne
        return False
    create = getattr(ab_protocol, "create_xor_masker", None)
    if create is None:
        return False
    if getattr(create, "_signalr_small", False):
        return True

    def create_xor_masker(mask: bytes, length: int | None = None) -> Any:
        if length is not None and length < SMALL_FRAME and len(mask) == 4:
            return _SmallMasker(mask)
        return create(mask, length)

    create_xor_masker._signalr_small = True  # type: ignore[attr-defined]
    setattr(ab_protocol, "create_xor_masker", create_xor_masker)  # noqa: B010 - not public
    return True


_factories_tuned: set[int] = set()


def tune_factory(factory: Any) -> bool:
    """Make autobahn's per-connection set-up cheaper for every later connection of `factory`.

    autobahn's `_connectionMade` copies each of ~30 protocol options from the factory onto
    every new protocol instance unless the instance already has it, which grows each
    connection's `__dict__` from the 1.5 KB size class to the 3.3 KB one; and it pretty-prints
    those options for a DEBUG line whether or not DEBUG is on (an eager `pformat`), about a
    tenth of the server's CPU per connection. Giving the factory a protocol subclass that
    carries the factory's option values as class attributes makes the copy a no-op with the
    same values (Daphne sets the options once, before it listens); the pretty-printing is
    made lazy by giving autobahn's protocol module a `pformat` that defers the work to when a
    record is rendered. Both are proposals for autobahn upstream (read options from the
    factory; format lazily). The subclass also carries `_QuietFrames`, and short frames get
    `_SmallMasker` (`tune_masking`). Returns whether the factory was tuned.
    """
    if id(factory) in _factories_tuned:
        return True
    try:
        from autobahn.websocket import protocol as ab_protocol

        base = factory.protocol
        names = tuple(base.CONFIG_ATTRS)
        # A callable option (perMessageCompressionAccept) must not turn into a method.
        values = {
            name: staticmethod(value) if callable(value) else value
            for name, value in ((name, getattr(factory, name)) for name in names)
        }
    except (ImportError, AttributeError):
        _warn_once("WebSocket factory")
        return False
    if getattr(ab_protocol, "pformat", None) is not None and not isinstance(
        getattr(ab_protocol, "pformat", None), type
    ):
        setattr(ab_protocol, "pformat", _LazyFormat)  # noqa: B010 - not a public name
    tune_masking()
    factory.protocol = type(
        base.__name__, _quiet_frames_base(base), {**values, "__module__": base.__module__}
    )
    _factories_tuned.add(id(factory))
    tune_server(getattr(factory, "server_class", None))
    return True


# What `tune_server` uses of Daphne's Server.
SERVER_ATTRIBUTES = (
    "connections",
    "application_checker",
    "protocol_disconnected",
    "create_application",
    "timeout_checker",
    "ping_interval",
)

# How often Daphne's 2-second timeout sweep runs `check_timeouts` on a parked connection at
# most: its WebSocket ping interval (see `tune_server`).
MIN_PARKED_SWEEP = 2.0


def tune_server(server: Any) -> bool:
    """Make Daphne's once-a-second sweep visit only the connections that need it.

    `Server.application_checker` walks every connection each second to reap finished
    application instances and forget closed connections. With 20,000 idle WebSockets that
    walk is half of the worker's idle CPU, though it acts only on connections that have
    disconnected or whose application has finished. Here those two events put the connection
    on a watch list (`protocol_disconnected` is wrapped, and each application instance gets
    a done-callback), and each sweep runs Daphne's own `application_checker`, unchanged, over
    a `connections` dict holding just the watched ones (the per-connection entries are the
    same dict objects, so what it updates is updated), then carries its removals over to
    the full dict. A connection stays watched while it is disconnected and its application
    still runs (Daphne cancels it after `application_close_timeout`). The proposal for
    Daphne upstream is the same: reap from events, not from a sweep.

    Daphne's other sweep, `timeout_checker`, runs every protocol's `check_timeouts` every
    2 s: for an open WebSocket that is its ping (every `ping_interval`, 20 s by default) and
    its `websocket_timeout` (a day by default), a fifth of an idle worker's CPU. Parked hub
    connections (`park`) are visited once per `ping_interval` instead, so Daphne's ping
    reaches them within two intervals rather than one (SignalR's own keep-alive and client
    timeout are what watch a hub connection); every other connection (HTTP requests,
    handshakes, other consumers) is still visited every 2 s. Returns whether the server was
    tuned.
    """
    if server is None or getattr(server, "_signalr_tuned", False):
        return bool(server is not None)
    if not _has(server, SERVER_ATTRIBUTES) or not isinstance(server.connections, dict):
        return False
    watch: set[Any] = set()
    sweep = server.application_checker  # Daphne's own, bound to the server
    disconnected = server.protocol_disconnected
    create = server.create_application

    def watch_finish(protocol: Any, details: Any) -> None:
        instance = details.get("application_instance") if isinstance(details, dict) else None
        if instance is not None and hasattr(instance, "add_done_callback"):
            instance.add_done_callback(lambda _future: watch.add(protocol))

    def protocol_disconnected(protocol: Any) -> None:
        disconnected(protocol)
        watch.add(protocol)

    def create_application(protocol: Any, scope: Any) -> Any:
        queue = create(protocol, scope)
        watch_finish(protocol, server.connections.get(protocol))
        return queue

    def application_checker() -> None:
        full = server.connections
        subset = {protocol: full[protocol] for protocol in watch if protocol in full}
        checked = list(subset)
        server.connections = subset
        try:
            sweep()  # reschedules itself as `server.application_checker`: this function
        finally:
            server.connections = full
        for protocol in checked:
            if protocol not in subset:  # Daphne forgot it: forget it in the full dict too
                full.pop(protocol, None)
        for protocol in list(watch):
            details = full.get(protocol)
            if details is None:
                watch.discard(protocol)
                continue
            instance = details.get("application_instance")
            if "disconnected" not in details and (instance is None or not instance.done()):
                watch.discard(protocol)  # reaped; its next event brings it back

    for protocol, details in list(server.connections.items()):
        watch.add(protocol)  # connections made before: looked at once, then by events
        watch_finish(protocol, details)
    parked_due = [0.0]
    parked_every = max(MIN_PARKED_SWEEP, float(server.ping_interval or 0))

    def timeout_checker() -> None:
        # Daphne's own, with parked connections visited once per ping interval.
        from twisted.internet import reactor

        now = time.monotonic()
        everyone = now >= parked_due[0]
        if everyone:
            parked_due[0] = now + parked_every
        connections = server.connections
        # Keys only, as Daphne's own: a tuple per connection per sweep would be 20,000
        # allocations every 2 s, and the garbage collections they set off.
        for protocol in list(connections):
            if not everyone:
                details = connections.get(protocol)
                if details is not None and type(details.get("application_instance")) is Standin:
                    continue
            protocol.check_timeouts()
        cast(Any, reactor).callLater(2, server.timeout_checker)

    server.protocol_disconnected = protocol_disconnected
    server.create_application = create_application
    server.application_checker = application_checker
    server.timeout_checker = timeout_checker
    server._signalr_watch = watch  # for `park`'s stand-ins
    server._signalr_tuned = True
    return True


class Standin(asyncio.Future[None]):
    """Takes a parked connection's place in Daphne's table of application instances.

    Daphne keeps the future of each connection's application and acts on it: its sweep
    forgets a connection once that future is done and the socket closed, it cancels the
    future when the application outlives its socket by `application_close_timeout`, and
    at shutdown it cancels every one and waits for them all. A parked connection has no
    application task (`transports.parked`), so this future stands in: `cancel` asks the
    connection's reader to stop the way cancelling the read loop did, and the future is
    done (`finish`) only once the connection has ended, so that Daphne's shutdown waits
    for the goodbye as it waited for the task.
    """

    __slots__ = ("_protocol", "_stop", "_watch", "queued")

    def __init__(self, stop: Callable[[], None], protocol: Any, watch: set[Any] | None) -> None:
        super().__init__()
        self._stop: Callable[[], None] | None = stop
        # Daphne's sweep looks at a connection when its application finishes (`tune_server`).
        self._protocol = protocol
        self._watch = watch
        # Events Daphne queued before the reader took over, for the reader to take.
        self.queued: tuple[dict[str, Any], ...] = ()

    def cancel(self, msg: Any = None) -> bool:
        """Stop the connection's reader; the future is done when the connection has ended."""
        if self.done():
            return False
        stop = self._stop
        if stop is None:
            self._watched()
            return super().cancel(msg)
        stop()
        return True

    def finish(self) -> None:
        """The connection has ended."""
        self._stop = None
        if not self.done():
            self._watched()
            self.set_result(None)

    def _watched(self) -> None:
        if self._watch is not None:
            self._watch.add(self._protocol)


def park(send: Any, sink: Any) -> Standin | None:
    """Deliver a WebSocket's later events to `sink.put_nowait` instead of its ASGI queue.

    For a connection whose application is about to return while the socket stays open
    (`transports.parked`): autobahn's protocol hands Daphne's `onMessage` and `onClose`
    events to `protocol.application_queue.put_nowait`, which becomes `sink.put_nowait`;
    events already queued move to the stand-in's `queued`, in order; and the stand-in
    (`sink.cancelled` on cancel) replaces the application's task in Daphne's table.
    None (nothing changed) unless all of that is exactly as expected: the caller is the
    connection's application task, the queue is Daphne's plain `asyncio.Queue`.
    """
    protocol = server_protocol(send)
    server = getattr(protocol, "server", None)
    connections = getattr(server, "connections", None)
    details = connections.get(protocol) if isinstance(connections, dict) else None
    queue = getattr(protocol, "application_queue", None)
    if (
        not isinstance(details, dict)
        or details.get("application_instance") is not asyncio.current_task()
        or type(queue) is not asyncio.Queue
        or "disconnected" in details
    ):
        return None
    standin = Standin(sink.cancelled, protocol, getattr(server, "_signalr_watch", None))
    queued = []
    while not queue.empty():
        queued.append(queue.get_nowait())
    standin.queued = tuple(queued)
    details["application_instance"] = standin
    protocol.application_queue = sink
    return standin


def asgi_send(outbound: DaphneWebSocketOutbound) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """The ASGI `send` Daphne gave the connection's application, made anew when needed.

    A parked connection keeps no `send` (Daphne's `partial`, ~250 bytes) for the one
    message it may still need it for, the WebSocket close.
    """
    protocol = outbound._protocol
    return cast(
        "Callable[[dict[str, Any]], Awaitable[None]]",
        functools.partial(protocol.server.handle_reply, protocol),
    )


# Handshake leftovers on autobahn's protocol that nothing reads once the socket is open.
HANDSHAKE_BYTES = ("http_request_data", "http_response_data")


def release_handshake(protocol: Any, transport: Any) -> None:
    """Let go of what an open WebSocket no longer needs of its HTTP upgrade.

    - Twisted's `HTTPChannel` that parsed the upgrade request stays registered as the TCP
      transport's producer, and keeps its request object and both header sets alive for the
      connection's life (~3 KB). While that request is unfinished (always, for an upgrade)
      the channel's pause/resume do nothing but forward to a request producer it does not
      have, so unregistering it changes no behaviour; the adapter pauses reading itself.
    - autobahn keeps the raw request and response bytes, and the parsed headers twice over
      (`http_headers`, and `request.headers` of the `ConnectionRequest` Daphne keeps only to
      log `request.path`); the ASGI scope has its own copy, which the hub context reads.
    - Daphne's per-connection `asyncio.Queue` (unbounded, fed with `put_nowait`, never
      joined) allocates a deque for putters that can never wait and an Event for `join`
      that nobody calls: ~1.5 KB that a shared empty tuple replaces.
    - The factory is tuned for later connections (`tune_factory`).
    Each step checks what it touches and is skipped when it does not look as expected.
    """
    tune_factory(getattr(protocol, "factory", None))
    try:
        from twisted.web.http import HTTPChannel
    except ImportError:  # pragma: no cover - Twisted comes with Daphne
        return
    producer = getattr(transport, "producer", None)
    if (
        isinstance(producer, HTTPChannel)
        and getattr(producer, "_handlingRequest", False) is True
        and getattr(producer, "_requestProducer", True) is None
        and hasattr(transport, "unregisterProducer")
    ):
        transport.unregisterProducer()
    for name in HANDSHAKE_BYTES:
        if isinstance(getattr(protocol, name, None), bytes):
            setattr(protocol, name, b"")
    request = getattr(protocol, "request", None)
    path = getattr(request, "path", None)
    if isinstance(path, str) and isinstance(getattr(protocol, "http_headers", None), dict):
        protocol.request = _RequestPath(path)
        protocol.http_headers = {}
    _slim_queue(getattr(protocol, "application_queue", None))
    queue = getattr(protocol, "send_queue", None)
    if type(queue) is collections.deque and not queue:
        protocol.send_queue = _LazySendQueue(protocol)
    _share_header_names(getattr(protocol, "clean_headers", None))


class _LazySendQueue:
    """autobahn's per-connection send queue, made only when something is queued.

    autobahn queues a frame only for a synchronous or chopped send, which nothing here
    asks for, yet every connection allocates an empty `deque` (~760 bytes) for it. This
    stands in with what autobahn uses of it (`len`, `append`, `popleft`); the first
    `append` puts a real deque on the protocol.
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    def __len__(self) -> int:
        return 0

    def append(self, item: Any) -> None:
        queue: collections.deque[Any] = collections.deque((item,))
        self._protocol.send_queue = queue

    def popleft(self) -> Any:
        raise IndexError("pop from an empty deque")


# One bytes object per header name for every connection (Daphne lowercases a new one each).
_header_names: dict[bytes, bytes] = {}
MAX_SHARED_HEADER_NAMES = 256


def _share_header_names(headers: Any) -> None:
    """Point each header of a connection's ASGI scope at a shared copy of its name.

    The list is the scope's own (Daphne's `clean_headers`), changed in place: the same
    names and values, ~40 bytes less per header for each open connection.
    """
    if type(headers) is not list:
        return
    names = _header_names
    for index, header in enumerate(headers):
        if type(header) is not tuple or len(header) != 2:
            return
        name = header[0]
        shared = names.get(name)
        if shared is None:
            if len(names) >= MAX_SHARED_HEADER_NAMES or type(name) is not bytes:
                continue
            shared = names[name] = name
        elif shared is not name:
            headers[index] = (shared, header[1])


class _RequestPath:
    """What Daphne reads of the opening request after the handshake: its path (for logs)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


_NOBODY: tuple[()] = ()


def _slim_queue(queue: Any) -> None:
    """Drop the parts of an unbounded, never-joined `asyncio.Queue` that can never be used."""
    import asyncio
    import collections

    if type(queue) is not asyncio.Queue or queue.maxsize != 0:
        return
    queue = cast(Any, queue)  # private deques of the stdlib queue are replaced below
    putters = getattr(queue, "_putters", None)
    finished = getattr(queue, "_finished", None)
    if isinstance(putters, collections.deque) and not putters:
        queue._putters = _NOBODY
    waiters = getattr(finished, "_waiters", None)
    if (
        isinstance(finished, asyncio.Event)
        and isinstance(waiters, collections.deque)
        and not waiters
    ):
        cast(Any, finished)._waiters = _NOBODY


def http_backlog(send: Any) -> Callable[[], int] | None:
    """A function giving the bytes Twisted buffers for an HTTP response (SSE), or None."""
    transport = transport_of(server_protocol(send))
    if not _has(transport, TRANSPORT_ATTRIBUTES):
        return None
    return lambda: backlog(transport)


def _reactor() -> Any:
    reactor: Any = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not hasattr(reactor, "addSystemEventTrigger"):
        return None
    return reactor


def call_when_running(callback: Callable[[], None]) -> bool:
    """Run `callback` once Daphne's reactor (and its asyncio loop) runs; False if not Daphne."""
    reactor = _reactor()
    if reactor is None:
        return False
    reactor.callWhenRunning(callback)
    return True


def before_shutdown(coroutine: Callable[[], Awaitable[Any]]) -> bool:
    """Run `coroutine()` before Daphne's reactor shuts down; False if not Daphne."""
    reactor = _reactor()
    if reactor is None:
        return False

    def trigger() -> Any:
        import asyncio

        from twisted.internet.defer import Deferred

        return Deferred.fromFuture(asyncio.ensure_future(coroutine()))

    reactor.addSystemEventTrigger("before", "shutdown", trigger)
    return True


def _listening_ports(reactor: Any) -> list[Any]:
    """Daphne's listening ports (TCP, UNIX or adopted descriptors) among the reactor's readers."""
    try:
        from daphne.http_protocol import HTTPFactory
        from twisted.internet.interfaces import IListeningPort
    except ImportError:  # pragma: no cover - Twisted comes with Daphne
        return []
    return [
        reader
        for reader in reactor.getReaders()
        if IListeningPort.providedBy(reader)
        and isinstance(getattr(reader, "factory", None), HTTPFactory)
    ]


# The Daphne servers whose ports were closed, for `close_idle_http`.
_servers: list[Any] = []
# Idle HTTP connections being closed by the drain, for `closing_http`.
_closing: list[Any] = []


def stop_listening() -> int:
    """Close Daphne's listening sockets now; how many (0 when not under Daphne).

    Twisted only closes them in the "during shutdown" phase, after every "before" trigger
    (the drain among them) has finished: until then the kernel keeps completing handshakes
    on the port, so a client told to reconnect comes straight back to this process, and a
    replacement cannot bind the port. Closing them first sends new connections elsewhere:
    a proxy sees "connection refused" and tries its next upstream, a replacement process can
    bind the port at once (Twisted listens with SO_REUSEADDR), and a socket shared with other
    processes (`--fd`, systemd socket activation) stays open in them, which take every new
    connection from its queue. Connections already accepted are not affected.
    """
    reactor = _reactor()
    if reactor is None or not hasattr(reactor, "getReaders"):
        return 0
    ports = _listening_ports(reactor)
    for port in ports:
        server = getattr(port.factory, "server", None)
        if server is not None and server not in _servers:
            _servers.append(server)
        port.stopListening()
    if ports:
        logger.info(
            "Stopped listening on %d socket(s) and closed %d idle HTTP connection(s) to drain",
            len(ports),
            close_idle_http(),
        )
    return len(ports)


def close_idle_http() -> int:
    """End Daphne's kept-alive HTTP connections; how many were idle and closed now.

    A client (or proxy) that kept a connection alive would send its next request, the
    reconnect's negotiate among them, over it to this process even after the listening
    socket is closed, and be refused. Idle connections are closed at once, so the client
    opens a new one (which goes elsewhere); those with a request in progress stop being
    persistent, so they close once their response is complete (as Go's `Shutdown` does).
    """
    reactor = _reactor()
    if reactor is None or not hasattr(reactor, "getReaders"):
        return 0
    try:
        from twisted.internet import tcp
        from twisted.web.http import HTTPChannel
    except ImportError:  # pragma: no cover - Twisted comes with Daphne
        return 0
    for server in _servers:
        for protocol in list(getattr(server, "connections", {})):
            channel = getattr(protocol, "channel", None)
            if isinstance(channel, HTTPChannel):
                channel.persistent = False
    closed = 0
    for reader in reactor.getReaders():
        if not isinstance(reader, tcp.Server):
            continue
        reader = cast(Any, reader)  # Twisted's transports are untyped
        channel = getattr(getattr(reader, "protocol", None), "_channel", None)
        if (
            isinstance(channel, HTTPChannel)
            and not channel.requests
            and not getattr(channel, "_handlingRequest", True)
        ):
            reader.loseConnection()
            _closing.append(reader)
            closed += 1
    return closed


def closing_http() -> int:
    """Idle HTTP connections `close_idle_http` ended whose socket is not closed yet.

    Twisted closes a socket on its next loop iteration, while the drain writes its Close
    messages straight to the WebSockets: the drain waits for these first, so that a client
    sees its idle connection end before it is told to reconnect, and does not reuse it.
    """
    _closing[:] = [transport for transport in _closing if transport.connected]
    return len(_closing)


def open_websockets() -> int:
    """This package's Daphne WebSockets whose socket is still open (closing handshake pending).

    The drain waits for these so that every client completes its clean close (code 1000)
    before the reactor drops the remaining sockets, which a client reports as code 1006.
    Only connections served by this package count: a project's own Channels consumers,
    which nothing closes, must not hold the drain until its timeout.
    """
    count = 0
    for protocol in list(_websockets):
        closed = getattr(protocol, "STATE_CLOSED", None)
        if closed is not None and protocol.state != closed:
            count += 1
    return count


def reactor_running() -> bool:
    """Whether Daphne's reactor runs in this process (it then serves connections)."""
    reactor = _reactor()
    return bool(reactor is not None and getattr(reactor, "running", False))


# --------------------------------------------------------------------------- HTTP requests

# What `tune_http_factory` uses of Daphne's HTTP factory.
HTTP_FACTORY_ATTRIBUTES = ("buildProtocol", "server", "_logFile")

_request_classes: dict[type, type] = {}


def _request_class(base: Any) -> type:
    """`base` (Daphne's `WebRequest`) without Twisted's parsing of form bodies.

    Twisted's `Request.requestReceived` parses the Content-Type of every POST with a body
    through the `email` package (to fill `request.args` for form submissions), about 60 µs
    per request. Daphne never reads `request.args`: it hands the raw body to the
    application, which parses forms itself (Django's `request.POST`), so the parse is
    pure cost, and for an upload a second copy of it in memory. Twisted offers the switch
    (`parsePOSTFormSubmission=False`); Daphne does not pass it, so it is set here.
    """
    cls = _request_classes.get(base)
    if cls is None:
        setup: Callable[..., None] = base.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            setup(self, *args, **kwargs)
            self._parsePOSTFormSubmission = False

        namespace = {"__init__": init, "__module__": base.__module__}
        cls = _request_classes[base] = type(base.__name__, (base,), namespace)
    return cls


def parses_forms_optionally() -> bool:
    """Whether Twisted's requests take `parsePOSTFormSubmission` (older Twisted always parses)."""
    import inspect

    from twisted.web.http import Request

    return "parsePOSTFormSubmission" in inspect.signature(Request.__init__).parameters


def tune_http_factory(factory: Any) -> bool:
    """Make every later HTTP request of Daphne's `factory` cheaper; whether it was tuned.

    - Requests skip Twisted's form-body parsing (`_request_class`): Daphne builds each
      connection's channel with `requestFactory = WebRequest`; the wrapped `buildProtocol`
      gives it the subclass instead.
    - Twisted's own access log is switched off when Daphne sends Twisted's log nowhere
      (verbosity 0 or 1, the default): Twisted's HTTP factory formats a combined-log line
      per request into it, which Daphne then drops. Daphne's access log (`--access-log`,
      or stdout at verbosity 1) is Daphne's and is left as it is.
    Both are proposals for Daphne upstream (pass `parsePOSTFormSubmission=False`; no Twisted
    access log). tests/unit/test_daphne_adapter.py pins what this relies on.
    """
    if getattr(factory, "_signalr_tuned", False):
        return True
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # pragma: no cover - only called under Daphne
        return False
    if not _has(factory, HTTP_FACTORY_ATTRIBUTES) or not parses_forms_optionally():
        logger.info("Daphne's HTTP factory is not as expected; HTTP requests are not tuned")
        return False
    build = factory.buildProtocol

    def build_protocol(addr: Any) -> Any:
        protocol = build(addr)
        base = getattr(protocol, "requestFactory", None)
        if isinstance(base, type) and issubclass(base, WebRequest):
            protocol.requestFactory = _request_class(base)
        return protocol

    factory.buildProtocol = build_protocol
    if getattr(factory.server, "verbosity", 2) <= 1:
        factory._logFile = None
    factory._signalr_tuned = True
    return True


def tune_http() -> None:
    """Tune Daphne's HTTP factories once its reactor runs (before it accepts a connection)."""

    def tune() -> None:
        reactor = _reactor()
        if reactor is None or not hasattr(reactor, "getReaders"):
            return
        for port in _listening_ports(reactor):
            tune_http_factory(port.factory)

    call_when_running(tune)
