"""Raw connections (connection handlers): the session the transports feed, without a hub.

A `RawSession` is driven here as the transports drive it (`open`, `feed`, `finish`), over
an outbound that records what reaches the client, so each rule of the raw path is checked
without a server: messages pass as sent, sizes and the outbound cap are enforced, the
application's callbacks run in order and their failures end the connection.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from signalr_django import Connection, ConnectionHandler, map_connection
from signalr_django.dispatch.dispatcher import ClientClosed
from signalr_django.dispatch.handler import ConnectionRefused, ServerShutdown
from signalr_django.exceptions import HubConfigurationError, MessageTooLargeError
from signalr_django.raw.connection import (
    CLOSE_ERROR,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    SlowConsumerError,
)
from signalr_django.raw.handler import RawConnectionHandler, connection_count
from signalr_django.raw.session import RawSession
from signalr_django.server import ListOutbound, Outbound
from signalr_django.transports.sessions import new_session


class Recorder(ConnectionHandler):
    """Echoes, and records every callback."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def on_connected(self, connection: Connection) -> None:
        self.events.append(("connected", connection.transport))
        await connection.send("hi")

    async def on_message(self, connection: Connection, data: str | bytes) -> None:
        self.events.append(("message", data))
        if data == "fail":
            raise RuntimeError("handler failed")
        if data == "close":
            connection.close()
            return
        await connection.send(data)

    async def on_disconnected(self, connection: Connection, exc: Exception | None) -> None:
        self.events.append(("disconnected", exc))


class Refuser(ConnectionHandler):
    async def on_connected(self, connection: Connection) -> None:
        raise RuntimeError("no")

    async def on_disconnected(self, connection: Connection, exc: Exception | None) -> None:
        raise AssertionError("not called for a refused connection")


class Stuck(Outbound):
    """A client that reads nothing: everything written waits."""

    def __init__(self) -> None:
        self.waiting = 0

    def write(self, payload: Any) -> int:
        self.waiting += len(payload)
        return self.waiting

    def pending(self) -> int:
        return self.waiting


def make(
    cls: type[ConnectionHandler] = Recorder,
    transport: str = "WebSockets",
    outbound: Outbound | None = None,
    **options: Any,
) -> tuple[RawConnectionHandler, RawSession, Outbound, list[bool]]:
    handler = RawConnectionHandler(cls, "raw/test", options)
    outbound = outbound if outbound is not None else ListOutbound()
    aborted: list[bool] = []
    session = new_session(
        handler,
        connection_id="c1",
        scope={"type": "websocket"},
        user=None,
        transport=transport,
        formats=(),
        outbound=outbound,
        on_abort=lambda: aborted.append(True),
    )
    assert isinstance(session, RawSession)
    return handler, session, outbound, aborted


def events(handler: RawConnectionHandler) -> list[Any]:
    app = handler.app
    assert isinstance(app, Recorder)
    return app.events


async def test_messages_pass_as_sent_and_callbacks_run_in_order() -> None:
    handler, session, outbound, _ = make()
    assert session.connection is None  # not the application's until opened
    await session.open()
    assert "c1" in handler.lifetime.connections
    assert connection_count() >= 1
    await session.feed("text \x1e with a record separator")
    await session.feed(b"\x00\x01binary")
    assert isinstance(outbound, ListOutbound)
    # No handshake answer, no framing, no keep-alive: exactly what the application sent.
    assert outbound.records == ["hi", "text \x1e with a record separator", b"\x00\x01binary"]
    await session.finish(ClientClosed(None), client_gone=True)
    await session.finish(None, client_gone=True)  # once only
    assert events(handler) == [
        ("connected", "WebSockets"),
        ("message", "text \x1e with a record separator"),
        ("message", b"\x00\x01binary"),
        ("disconnected", None),
    ]
    assert "c1" not in handler.lifetime.connections
    assert handler.token_spent("c1")
    assert session.close_code == CLOSE_NORMAL


async def test_message_over_the_limit_is_refused() -> None:
    handler, session, _, _ = make(MAXIMUM_RECEIVE_MESSAGE_SIZE=10)
    await session.open()
    await session.feed(b"0123456789")  # at the limit: fine
    await session.feed("é" * 5)  # 10 bytes in UTF-8
    with pytest.raises(MessageTooLargeError, match=r"\(11 bytes\) exceeds"):
        await session.feed("é" * 5 + "x")
    with pytest.raises(MessageTooLargeError):
        await session.feed(b"x" * 11)
    failure = MessageTooLargeError("too big")
    await session.finish(failure, client_gone=False)
    assert session.close_code == CLOSE_TOO_BIG
    assert events(handler)[-1] == ("disconnected", failure)


async def test_failing_on_message_closes_with_the_error() -> None:
    handler, session, _, aborted = make()
    await session.open()
    await session.feed("fail")
    assert aborted == [True]  # the transport's reader was interrupted
    assert session.connection is not None and session.connection.closed
    await session.feed("ignored after the failure")
    await session.finish(None, client_gone=False)
    assert session.close_code == CLOSE_ERROR
    kind, exc = events(handler)[-1]
    assert kind == "disconnected" and isinstance(exc, RuntimeError)
    assert ("message", "ignored after the failure") not in events(handler)


async def test_server_close_is_normal() -> None:
    handler, session, _, aborted = make()
    await session.open()
    await session.feed("close")
    assert aborted == [True]
    await session.finish(None, client_gone=False)
    assert session.close_code == CLOSE_NORMAL
    assert events(handler)[-1] == ("disconnected", None)


async def test_shutdown_is_not_an_error_for_the_application() -> None:
    handler, session, _, _ = make()
    await session.open()
    await session.finish(ServerShutdown(), client_gone=False)
    assert session.close_code == CLOSE_NORMAL
    assert events(handler)[-1] == ("disconnected", None)


async def test_refusing_on_connected() -> None:
    handler, session, _, _ = make(Refuser)
    with pytest.raises(ConnectionRefused) as refused:
        await session.open()
    await session.finish(refused.value, client_gone=False)
    assert session.close_code == CLOSE_ERROR
    assert "c1" not in handler.lifetime.connections


async def test_slow_client_is_closed_past_the_outbound_cap() -> None:
    handler, session, outbound, aborted = make(outbound=Stuck(), OUTBOUND_BUFFER_LIMIT=1000)
    await session.open()
    connection = session.connection
    assert connection is not None
    for _ in range(3):
        connection.send_nowait(b"x" * 400)  # never waits, even for a client that never reads
    assert aborted == [True]
    assert connection.close_code == CLOSE_POLICY
    before = outbound.pending()
    connection.send_nowait(b"dropped")
    assert outbound.pending() == before
    await session.finish(None, client_gone=False)
    assert session.close_code == CLOSE_POLICY
    kind, exc = events(handler)[-1]
    assert kind == "disconnected" and isinstance(exc, SlowConsumerError)
    assert "OUTBOUND_BUFFER_LIMIT" in str(exc)


async def test_sends_check_types_and_server_sent_events_text() -> None:
    _, session, outbound, _ = make(transport="ServerSentEvents")
    await session.open()
    connection = session.connection
    assert connection is not None
    with pytest.raises(TypeError):
        connection.send_nowait(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="text only"):
        connection.send_nowait(b"\xff")
    connection.send_nowait(b"caf\xc3\xa9")
    connection.send_nowait(bytearray(b"ok"))
    connection.send_nowait("")  # nothing to send on an event stream
    assert isinstance(outbound, ListOutbound)
    assert outbound.records == ["hi", "café", "ok"]


async def test_route_options_apply_and_stateful_reconnect_is_off() -> None:
    with override_settings(SIGNALR={"ALLOW_STATEFUL_RECONNECTS": True}):
        handler = RawConnectionHandler(Recorder, "r", {"TRANSPORTS": ["LongPolling"]})
        assert handler.options.TRANSPORTS == ("LongPolling",)
        assert handler.options.ALLOW_STATEFUL_RECONNECTS is False
        assert handler.resumable == {}


def test_mapping_validates_at_start_up() -> None:
    class Sync(ConnectionHandler):
        def on_message(self, connection: Connection, data: str | bytes) -> None:  # type: ignore[override]
            pass

    with pytest.raises(HubConfigurationError, match="ConnectionHandler subclass"):
        map_connection("x", object)
    with pytest.raises(HubConfigurationError, match="coroutine function"):
        map_connection("x", Sync)
    with pytest.raises(HubConfigurationError, match="NOT_AN_OPTION"):
        map_connection("x", Recorder, NOT_AN_OPTION=1)
    pattern = map_connection("/raw/echo/", Recorder)
    assert pattern.resolve("raw/echo/negotiate") is not None
    assert pattern.resolve("raw/echo") is not None
