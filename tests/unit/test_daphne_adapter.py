"""Pin what the Daphne adapter reads of Daphne, Twisted and autobahn on the installed versions.

An upgrade that renames one of these attributes must fail here, not silently switch
backpressure or the fan-out fast path off (the adapter falls back to the generic path and
warns, which these tests also check).
"""

from __future__ import annotations

import functools
import logging
import socket
from typing import Any

import pytest
from twisted.internet import tcp

from signalr_django.server import QueuedOutbound, websocket_outbound
from signalr_django.server import daphne as adapter


def test_twisted_tcp_transport_has_the_buffer_attributes() -> None:
    """Twisted's TCP transport keeps dataBuffer/offset/_tempDataLen and producer methods."""
    left, right = socket.socketpair()
    try:
        server = tcp.Server(left, object(), ("127.0.0.1", 1), None, 1, None)  # type: ignore[arg-type]
        for name in adapter.TRANSPORT_ATTRIBUTES:
            assert hasattr(server, name), name
        for name in ("_tempDataBuffer", "connected", "disconnecting", "_writeDisconnected"):
            assert hasattr(server, name), name
        assert adapter.backlog(server) == 0
        server.write(b"x" * 10)
        assert adapter.backlog(server) == 10
    finally:
        left.close()
        right.close()


def test_autobahn_protocol_has_what_the_adapter_uses() -> None:
    """Daphne's WebSocket protocol (autobahn) still offers the names the adapter calls."""
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

    for name in ("sendMessage", "sendPreparedMessage", "STATE_OPEN"):
        assert hasattr(WebSocketProtocol, name), name
    assert hasattr(WebSocketFactory, "prepareMessage")
    frame = WebSocketFactory(server_class=object()).prepareMessage(b"hi", False)
    assert frame.payloadHybi.endswith(b"hi")


def test_daphne_send_is_a_partial_of_handle_reply() -> None:
    """Daphne hands applications `functools.partial(server.handle_reply, protocol)`."""
    import inspect

    from daphne.server import Server

    source = inspect.getsource(Server.create_application)
    assert "partial(self.handle_reply, protocol)" in source.replace("functools.", "")


class _Transport:
    def __init__(self) -> None:
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.paused = False

    def pauseProducing(self) -> None:  # noqa: N802
        self.paused = True

    def resumeProducing(self) -> None:  # noqa: N802
        self.paused = False


class _Factory:
    def prepareMessage(self, payload: bytes, binary: bool) -> Any:  # noqa: N802
        return payload


class _Protocol:
    STATE_OPEN = 3
    state = 3
    factory = _Factory()

    def __init__(self) -> None:
        self.transport = _Transport()
        self.sent: list[tuple[bytes, bool]] = []

    def sendMessage(self, payload: bytes, binary: bool) -> None:  # noqa: N802
        self.sent.append((payload, binary))

    def sendPreparedMessage(self, frame: Any) -> None:  # noqa: N802
        self.sent.append((frame, False))


def _daphne_send(protocol: Any) -> Any:
    def handle_reply(protocol: Any, message: Any) -> None:
        pass

    return functools.partial(handle_reply, protocol)


def test_adapter_uses_daphne_when_everything_is_there() -> None:
    """A protocol and transport with every attribute get the Daphne outbound."""
    protocol = _Protocol()
    outbound = websocket_outbound(_daphne_send(protocol))
    assert isinstance(outbound, adapter.DaphneWebSocketOutbound)
    assert outbound.write("hello") == 0
    assert protocol.sent == [(b"hello", False)]
    assert outbound.pause_reading() and protocol.transport.paused
    outbound.resume_reading()
    assert not protocol.transport.paused


async def test_adapter_falls_back_and_warns_when_an_attribute_is_gone(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transport without `_tempDataLen` gives the generic path and one WARNING."""
    monkeypatch.setattr(adapter, "_warned", False)
    protocol = _Protocol()
    del protocol.transport._tempDataLen
    with caplog.at_level(logging.WARNING):
        outbound = websocket_outbound(_daphne_send(protocol))
    assert isinstance(outbound, QueuedOutbound)
    assert "lacks attributes" in caplog.text


def test_the_drain_finds_what_it_closes() -> None:
    """What the drain reads: Daphne's factory and server table, Twisted's HTTP channels."""
    import inspect

    from daphne.http_protocol import HTTPFactory, WebRequest
    from daphne.server import Server
    from twisted.internet.interfaces import IListeningPort
    from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol

    assert IListeningPort.implementedBy(tcp.Port)
    assert "self.server = server" in inspect.getsource(HTTPFactory.__init__)
    assert "self.connections = {}" in inspect.getsource(Server.run)
    from daphne.ws_protocol import WebSocketProtocol

    assert hasattr(WebSocketProtocol, "STATE_CLOSED")
    assert "self.channel" in inspect.getsource(WebRequest)
    channel = HTTPChannel()
    for name in ("requests", "_handlingRequest", "persistent"):
        assert hasattr(channel, name), name
    built = HTTPFactory(object()).buildProtocol(("127.0.0.1", 1))
    assert isinstance(built, _GenericHTTPChannelProtocol)
    assert isinstance(built._channel, HTTPChannel)
    source = inspect.getsource(HTTPChannel.requestDone)
    assert "if self.persistent:" in source and "self.loseConnection()" in source


def test_the_drain_closes_nothing_outside_daphne() -> None:
    """Without Daphne's reactor the drain's Daphne steps do nothing."""
    assert adapter.stop_listening() == 0
    assert adapter.close_idle_http() == 0
    assert adapter.closing_http() == 0
    assert adapter.open_websockets() == 0


def test_autobahn_copies_options_unless_the_protocol_has_them() -> None:
    """`tune_factory` relies on autobahn copying a factory option only when the protocol
    lacks it, and on the eager `pformat` of those options in `_connectionMade`."""
    import inspect

    from autobahn.websocket import protocol as ab_protocol

    source = inspect.getsource(ab_protocol.WebSocketProtocol._connectionMade)
    assert "if not hasattr(self, configAttr):" in source
    assert "pformat(configAttrLog)" in source
    assert callable(ab_protocol.pformat)
    assert "autoPingInterval" in ab_protocol.WebSocketServerProtocol.CONFIG_ATTRS


def test_tune_factory_gives_later_protocols_the_factorys_options_as_class_attributes() -> None:
    from daphne.ws_protocol import WebSocketFactory

    factory = WebSocketFactory(server_class=object())
    factory.setProtocolOptions(autoPingInterval=7, allowNullOrigin=True)

    def accept(offers: Any) -> Any:
        return ("accepted", offers)

    factory.perMessageCompressionAccept = accept
    assert adapter.tune_factory(factory)
    protocol_cls = factory.protocol
    for name in protocol_cls.CONFIG_ATTRS:
        assert getattr(protocol_cls, name) == getattr(factory, name), name
    # A callable option is called as the factory holds it, not as a method of the protocol.
    protocol = protocol_cls()
    assert protocol.perMessageCompressionAccept(["deflate"]) == ("accepted", ["deflate"])
    assert protocol_cls.autoPingInterval == 7
    assert adapter.tune_factory(factory) and factory.protocol is protocol_cls  # once
    lazy = adapter._LazyFormat([("a", 1)])
    assert isinstance(lazy, str) and str(lazy) == "[('a', 1)]" and f"{lazy}" == "[('a', 1)]"


def test_an_upgraded_connection_keeps_the_http_channel_only_as_its_producer() -> None:
    """`release_handshake` unregisters Twisted's HTTPChannel from the TCP transport: it
    relies on an unfinished request making the channel's pause/resume forward nothing."""
    import inspect

    from twisted.web.http import HTTPChannel

    pause = inspect.getsource(HTTPChannel.pauseProducing)
    assert "if self._requestProducer is not None:" in pause
    assert "if not self._handlingRequest:" in pause
    resume = inspect.getsource(HTTPChannel.resumeProducing)
    assert "if not self._handlingRequest:" in resume


def test_daphne_reads_only_the_path_of_the_opening_request_after_the_handshake() -> None:
    import inspect
    import re

    from daphne import ws_protocol

    source = inspect.getsource(ws_protocol.WebSocketProtocol)
    uses = set(re.findall(r"self\.request\.(\w+)", source))
    assert uses == {"path"}, uses


def test_daphnes_application_queue_is_unbounded_and_never_joined() -> None:
    """`_slim_queue` drops the putters deque and the join Event of Daphne's queue."""
    import asyncio
    import inspect

    from daphne import server, ws_protocol

    assert "input_queue = asyncio.Queue()" in inspect.getsource(server.Server.create_application)
    for module in (server, ws_protocol):
        text = inspect.getsource(module)
        assert ".join(" not in text.replace('"".join(', "").replace("b''.join(", "")
    queue: asyncio.Queue[int] = asyncio.Queue()
    adapter._slim_queue(queue)
    queue.put_nowait(1)
    assert queue.get_nowait() == 1
    queue.task_done()

    async def roundtrip() -> int:
        waiter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait(2)
        return await waiter

    assert asyncio.run(roundtrip()) == 2


def test_daphnes_server_has_what_tune_server_wraps() -> None:
    import inspect

    from daphne.server import Server

    for name in adapter.SERVER_ATTRIBUTES:
        assert hasattr(Server, name) or name in ("connections", "ping_interval"), name
    checker = inspect.getsource(Server.application_checker)
    assert "self.connections.items()" in checker
    assert "reactor.callLater(1, self.application_checker)" in checker
    assert 'self.connections[protocol]["disconnected"]' in inspect.getsource(
        Server.protocol_disconnected
    )


def test_the_tuned_sweep_reaps_exactly_what_daphnes_own_would() -> None:
    """Connections that disconnected or finished are handled; the others are not visited."""
    import asyncio

    from daphne.server import Server

    class Protocol:
        def __init__(self, name: str) -> None:
            self.name = name
            self.exceptions: list[BaseException] = []

        def handle_exception(self, exc: BaseException) -> None:
            self.exceptions.append(exc)

    async def scenario() -> None:
        gate = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["fail"]:
                raise ValueError("boom")
            if scope["wait"]:
                await gate.wait()

        server = Server(application=app, endpoints=["tcp:port=0:interface=127.0.0.1"])
        server.connections = {}  # as Server.run() starts it
        early = Protocol("early")  # connected before the server was tuned
        server.protocol_connected(early)
        server.create_application(early, {"fail": False, "wait": True})
        assert adapter.tune_server(server)
        assert adapter.tune_server(server)  # once
        idle, closed, failed, lingering = (Protocol(n) for n in ("idle", "closed", "f", "l"))
        for protocol, scope in (
            (idle, {"fail": False, "wait": True}),
            (closed, {"fail": False, "wait": False}),
            (failed, {"fail": True, "wait": False}),
            (lingering, {"fail": False, "wait": True}),
        ):
            server.protocol_connected(protocol)
            server.create_application(protocol, scope)
        await asyncio.sleep(0.05)  # `closed` and `failed` finished their applications
        server.protocol_disconnected(closed)
        server.protocol_disconnected(lingering)
        server.application_checker()
        # Forgotten: disconnected and finished. Kept: the live ones, and the disconnected one
        # whose application still runs (until application_close_timeout).
        assert set(server.connections) == {early, idle, failed, lingering}
        assert failed.exceptions and "application_instance" not in server.connections[failed]
        server.protocol_disconnected(failed)
        gate.set()
        await asyncio.sleep(0.05)
        server.application_checker()
        assert set(server.connections) == {early, idle}
        server.protocol_disconnected(idle)
        server.protocol_disconnected(early)
        server.application_checker()
        assert server.connections == {}

    logging.getLogger("daphne.server").disabled = True
    try:
        asyncio.run(scenario())
    finally:
        logging.getLogger("daphne.server").disabled = False


def test_twisted_requests_can_skip_form_parsing() -> None:
    """Twisted's `Request` takes `parsePOSTFormSubmission` and `requestReceived` obeys it."""
    import inspect

    from twisted.web import http

    assert adapter.parses_forms_optionally()
    source = inspect.getsource(http.Request.requestReceived)
    assert "self._parsePOSTFormSubmission" in source
    assert "_parseContentType(" in source
    assert hasattr(http.HTTPFactory, "log")
    assert "if logFile is not None" in inspect.getsource(http.HTTPFactory.log)


def _daphne_http(verbosity: int) -> tuple[Any, Any, list[dict[str, Any]]]:
    """A Daphne server's HTTP factory, tuned, and what its application receives."""
    from daphne.http_protocol import HTTPFactory
    from daphne.server import Server

    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = Server(
        application=app, endpoints=["tcp:port=0:interface=127.0.0.1"], verbosity=verbosity
    )
    server.connections = {}  # as Server.run() starts it
    factory = HTTPFactory(server)
    factory.startFactory()
    return server, factory, received


@pytest.mark.parametrize("verbosity", [1, 2])
def test_tuned_daphne_hands_form_bodies_over_unparsed(
    verbosity: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `tune_http_factory` requests skip Twisted's form parsing, nothing else changes."""
    import asyncio

    from daphne.http_protocol import WebRequest
    from twisted.internet.testing import StringTransport
    from twisted.python import log as twisted_log
    from twisted.web import http

    def refuse(line: bytes) -> bytes:
        raise AssertionError("Twisted parsed the Content-Type")

    async def scenario() -> None:
        server, factory, received = _daphne_http(verbosity)
        assert factory._logFile is twisted_log.logfile
        assert adapter.tune_http_factory(factory)
        assert adapter.tune_http_factory(factory)  # once
        # Twisted's own access log goes where Daphne sends Twisted's log: nowhere at
        # verbosity 0-1 (so it is not written), to the logging module above.
        assert (factory._logFile is None) == (verbosity <= 1)
        protocol = factory.buildProtocol(None)
        assert issubclass(protocol.requestFactory, WebRequest)
        assert protocol.requestFactory is not WebRequest
        assert protocol.requestFactory.__name__ == "WebRequest"
        transport = StringTransport()
        protocol.makeConnection(transport)
        monkeypatch.setattr(http, "_parseContentType", refuse)
        protocol.dataReceived(
            b"POST /form?x=1 HTTP/1.1\r\nHost: a\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b"
        )
        for _ in range(20):
            await asyncio.sleep(0.01)
            if transport.value().endswith(b"ok"):
                break
        assert received == [{"type": "http.request", "body": b"a=b", "more_body": False}]
        assert transport.value().startswith(b"HTTP/1.1 200")
        for protocol in list(server.connections):
            server.protocol_disconnected(protocol)
        factory.stopFactory()

    logging.getLogger("daphne.server").disabled = True
    try:
        asyncio.run(scenario())
    finally:
        logging.getLogger("daphne.server").disabled = False


def test_tune_http_leaves_anything_else_alone() -> None:
    """An object that is not Daphne's HTTP factory is not touched."""

    class NotAFactory:
        pass

    thing = NotAFactory()
    assert not adapter.tune_http_factory(thing)
    assert not hasattr(thing, "_signalr_tuned")


def test_tune_http_tunes_daphnes_listening_factories_once_the_reactor_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`tune_http` (called at start-up) waits for the reactor, then tunes every port's factory."""
    from twisted.internet.interfaces import IListeningPort
    from zope.interface import implementer

    _server, factory, _received = _daphne_http(1)

    @implementer(IListeningPort)
    class Port:
        def __init__(self, factory: Any) -> None:
            self.factory = factory

    class Reactor:
        def __init__(self) -> None:
            self.pending: list[Any] = []

        def addSystemEventTrigger(self, *args: Any) -> None:  # noqa: N802 - Twisted's name
            pass

        def callWhenRunning(self, callback: Any) -> None:  # noqa: N802 - Twisted's name
            self.pending.append(callback)

        def getReaders(self) -> list[Any]:  # noqa: N802 - Twisted's name
            return [Port(factory), object()]

    reactor = Reactor()
    monkeypatch.setitem(__import__("sys").modules, "twisted.internet.reactor", reactor)
    adapter.tune_http()
    assert not getattr(factory, "_signalr_tuned", False)  # not before the reactor runs
    for callback in reactor.pending:
        callback()
    assert factory._signalr_tuned
    factory.stopFactory()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 1000, 0xFFFF, 0x10000])
@pytest.mark.parametrize("binary", [False, True])
def test_frame_is_the_frame_autobahn_prepares(size: int, binary: bool) -> None:
    """The direct path's frames are byte for byte what autobahn's PreparedMessage holds."""
    from daphne.ws_protocol import WebSocketFactory

    data = bytes(i % 251 for i in range(size))
    prepared = WebSocketFactory(server_class=object()).prepareMessage(data, binary)
    first = adapter.BINARY if binary else adapter.TEXT
    assert adapter.frame(data, first) == prepared.payloadHybi


def test_the_direct_path_writes_whole_frames_to_the_socket() -> None:
    """Over a real TCP transport a text record leaves as one text frame, bytes as binary."""
    from daphne.ws_protocol import WebSocketFactory

    left, right = socket.socketpair()
    try:
        transport = tcp.Server(left, object(), ("127.0.0.1", 1), None, 1, None)  # type: ignore[arg-type]
        protocol = _Protocol()
        protocol.transport = transport  # type: ignore[assignment]
        protocol.factory = WebSocketFactory(server_class=object())  # type: ignore[assignment]
        outbound = adapter.DaphneWebSocketOutbound(protocol, transport)
        assert outbound.write('{"type":6}\x1e') == 0
        assert outbound.write(b"\x02\x91\x06") == 0
        assert right.recv(100) == b"\x81\x0b" + b'{"type":6}\x1e' + b"\x82\x03\x02\x91\x06"
        assert protocol.sent == []
    finally:
        left.close()
        right.close()


def test_autobahn_unmasks_each_frame_with_the_module_level_masker() -> None:
    """`tune_masking` relies on the frame parser calling its module's `create_xor_masker`
    with the mask and the frame's length, then `process`/`pointer` on what it returns."""
    import inspect

    from autobahn.websocket import protocol as ab_protocol

    source = inspect.getsource(ab_protocol.WebSocketProtocol.processData)
    assert "self.current_frame_masker = create_xor_masker(" in source
    assert "frame_mask, frame_payload_len" in source
    assert "self.current_frame_masker.process(data)" in source
    assert "self.current_frame_masker.pointer()" in source


@pytest.mark.parametrize("size", [1, 3, 4, 5, 64, 127, 128, 511])
def test_the_small_masker_unmasks_as_autobahns_does(size: int) -> None:
    """Same bytes as autobahn's masker, whether the payload comes whole or in pieces."""
    import os

    from autobahn.websocket.xormasker import create_xor_masker

    mask = os.urandom(4)
    data = os.urandom(size)
    expected = create_xor_masker(mask, size).process(data)
    assert adapter._SmallMasker(mask).process(data) == expected
    for cut in {1, 2, 3, size // 2}:
        masker = adapter._SmallMasker(mask)
        pieces = masker.process(data[:cut]) + masker.process(data[cut:])
        assert pieces == expected and masker.pointer() == size
        masker.reset()
        assert masker.pointer() == 0


def test_tune_masking_keeps_autobahns_masker_for_long_frames() -> None:
    from autobahn.websocket import protocol as ab_protocol

    assert adapter.tune_masking() and adapter.tune_masking()  # once, then already in place
    create = ab_protocol.create_xor_masker
    mask = b"\x01\x02\x03\x04"
    assert isinstance(create(mask, adapter.SMALL_FRAME - 1), adapter._SmallMasker)
    long = create(mask, adapter.SMALL_FRAME)
    assert not isinstance(long, adapter._SmallMasker)
    data = bytes(range(256)) * 4
    assert long.process(data) == adapter._SmallMasker(mask).process(data)


def test_autobahn_reads_and_ends_messages_as_quiet_frames_assumes() -> None:
    """`_QuietFrames` relies on autobahn's `dataReceived` doing nothing but a DEBUG line and
    `_dataReceived`, and on `onMessageEnd` delivering the joined message, then firing an
    event only observers see."""
    import ast
    import inspect
    import textwrap

    from autobahn.twisted.websocket import WebSocketAdapterProtocol
    from autobahn.websocket import protocol as ab_protocol
    from daphne.ws_protocol import WebSocketProtocol

    source = textwrap.dedent(inspect.getsource(WebSocketAdapterProtocol.dataReceived))
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    calls = [ast.unparse(statement.value.func) for statement in function.body]  # type: ignore[attr-defined]
    assert calls == ["self.log.debug", "self._dataReceived"]
    source = inspect.getsource(ab_protocol.WebSocketProtocol.onMessageEnd)
    assert 'payload = b"".join(self.message_data)' in source
    assert "self._onMessage(payload, self.message_is_binary)" in source
    assert 'self.fire("message"' in source and "self.message_data = None" in source
    assert "if self._listeners is None:" in inspect.getsource(ab_protocol.ObservableMixin.fire)
    for name in adapter.QUIET_FRAMES_ATTRIBUTES:
        assert hasattr(WebSocketProtocol, name), name
    assert adapter._txaio_no_op is not None


def _tuned_protocol() -> Any:
    from daphne.ws_protocol import WebSocketFactory

    factory = WebSocketFactory(server_class=object())
    assert adapter.tune_factory(factory)
    assert issubclass(factory.protocol, adapter._QuietFrames)
    protocol = factory.protocol()
    protocol.received = []
    protocol.messages = []
    protocol._dataReceived = protocol.received.append
    protocol.onMessage = lambda payload, binary: protocol.messages.append((payload, binary))
    return protocol


def test_quiet_frames_read_without_formatting_a_dropped_debug_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autobahn.twisted.websocket import WebSocketAdapterProtocol

    protocol = _tuned_protocol()
    formatted: list[Any] = []
    monkeypatch.setattr(
        WebSocketAdapterProtocol,
        "dataReceived",
        lambda self, data: formatted.append(data) or self._dataReceived(data),
    )
    assert protocol.log.debug is adapter._txaio_no_op
    protocol.dataReceived(b"frame")
    assert protocol.received == [b"frame"] and formatted == []
    # With txaio's DEBUG on, autobahn's own method (and its log line) runs.
    monkeypatch.setattr(protocol.log, "debug", lambda *a, **k: None)
    protocol.dataReceived(b"next")
    assert protocol.received == [b"frame", b"next"] and formatted == [b"next"]


def test_quiet_frames_deliver_messages_and_still_fire_to_observers() -> None:
    protocol = _tuned_protocol()
    protocol.failedByMe = False
    protocol.trackedTimings = None
    protocol.message_data = [b"ab", b"c"]
    protocol.message_is_binary = False
    protocol.onMessageEnd()
    assert protocol.messages == [(b"abc", False)] and protocol.message_data is None
    seen: list[Any] = []
    protocol.set_valid_events(["message"])
    protocol.on("message", lambda payload, is_binary: seen.append((payload, is_binary)))
    protocol.message_data = [b"d"]
    protocol.message_is_binary = True
    protocol.onMessageEnd()
    assert protocol.messages[-1] == (b"d", True) and seen == [(b"d", True)]
    protocol.failedByMe = True  # a failed connection delivers nothing, as autobahn does
    protocol.message_data = [b"e"]
    protocol.onMessageEnd()
    assert len(protocol.messages) == 2 and protocol.message_data is None


def test_a_protocol_built_before_its_factory_was_tuned_takes_the_tuned_class() -> None:
    from daphne.ws_protocol import WebSocketFactory

    factory = WebSocketFactory(server_class=object())
    early = factory.protocol()
    early.factory = factory  # as Twisted's buildProtocol sets it
    base = type(early)
    assert adapter.adopt_tuned_class(early) and type(early) is base  # nothing to adopt yet
    assert adapter.tune_factory(factory)
    assert adapter.adopt_tuned_class(early)
    assert type(early) is factory.protocol and isinstance(early, adapter._QuietFrames)
    assert adapter.adopt_tuned_class(early)  # already has it
    assert not adapter.adopt_tuned_class(_Protocol())  # not one of the factory's
