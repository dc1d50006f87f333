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
