"""Parked WebSocket connections: the reader's ordering and ending, and what it relies on.

`transports.parked` lets a hub WebSocket go on without its ASGI application task under
Daphne. These tests pin the Daphne and autobahn behaviour it builds on and check the
reader's promises: frames are fed one at a time in arrival order, the connection ends
exactly once however it is stopped (even by a stop that lands before a burst's task
starts), and Daphne's stand-in is done only when the connection has ended.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import Any

import pytest

from signalr_django.server import daphne as adapter
from signalr_django.transports import parked, websocket


def test_daphne_hands_websocket_events_to_the_application_queue() -> None:
    from daphne import ws_protocol

    on_message = inspect.getsource(ws_protocol.WebSocketProtocol.onMessage)
    on_close = inspect.getsource(ws_protocol.WebSocketProtocol.onClose)
    assert on_message.count("self.application_queue.put_nowait(") == 2
    assert "self.application_queue.put_nowait(" in on_close
    assert 'hasattr(self, "application_queue")' in on_close


def test_daphne_acts_on_application_instances_only_through_the_future_api() -> None:
    from daphne.server import Server

    create = inspect.getsource(Server.create_application)
    assert 'self.connections[protocol]["application_instance"] = asyncio.ensure_future(' in (create)
    kill = inspect.getsource(Server.kill_all_applications)
    assert "application_instance.cancel()" in kill
    assert "asyncio.gather(*wait_for)" in kill
    checker = inspect.getsource(Server.application_checker)
    for use in ("application_instance.cancel()", "application_instance.done()", ".exception()"):
        assert use in checker


def test_autobahn_uses_its_send_queue_only_through_len_append_and_popleft() -> None:
    from autobahn.websocket import protocol

    source = inspect.getsource(protocol)
    uses = {line.strip() for line in source.splitlines() if "send_queue" in line}
    assert uses == {
        "self.send_queue = deque()",
        "if len(self.send_queue) > 0:",
        "e = self.send_queue.popleft()",
        "self.send_queue.append((data[i:j], True))",
        "if sync or len(self.send_queue) > 0:",
        "self.send_queue.append((data, sync))",
    }


def test_the_lazy_send_queue_becomes_a_deque_on_first_use() -> None:
    class Protocol:
        send_queue: Any = None

    protocol = Protocol()
    protocol.send_queue = adapter._LazySendQueue(protocol)
    assert len(protocol.send_queue) == 0
    protocol.send_queue.append((b"frame", True))
    assert list(protocol.send_queue) == [(b"frame", True)]
    assert protocol.send_queue.popleft() == (b"frame", True)


def test_header_names_are_shared_between_connections() -> None:
    first = [(b"host", b"a"), (b"x-custom", b"1")]
    second = [(b"HOST".lower(), b"b"), (b"X-Custom".lower(), b"2")]  # as Daphne makes them
    assert second[0][0] is not first[0][0]
    adapter._share_header_names(first)
    adapter._share_header_names(second)
    assert second == [(b"host", b"b"), (b"x-custom", b"2")]
    assert second[0][0] is first[0][0] and second[1][0] is first[1][0]
    adapter._share_header_names([("not", "a pair", "at all")])  # left alone


def test_park_replaces_the_queue_and_the_application_task_with_a_standin() -> None:
    """With a real Daphne `Server`: queued events move over, the sweep keeps the connection
    while the stand-in is pending, shutdown waits for the connection's end, and the
    connection is forgotten once it has ended and disconnected."""
    from daphne.server import Server

    class Protocol:
        server: Any = None
        application_queue: Any = None

        def handle_exception(self, exc: BaseException) -> None:
            raise AssertionError(exc)

    class Sink:
        def __init__(self) -> None:
            self.events: list[Any] = []
            self.stops = 0

        def put_nowait(self, event: Any) -> None:
            self.events.append(event)

        def cancelled(self) -> None:
            self.stops += 1

    async def scenario() -> None:
        sink = Sink()
        parked_with: list[adapter.Standin | None] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()  # websocket.connect
            await asyncio.sleep(0)  # a frame arrives meanwhile (queued by the test)
            parked_with.append(adapter.park(send, sink))

        server = Server(application=app, endpoints=["tcp:port=0:interface=127.0.0.1"])
        server.connections = {}
        assert adapter.tune_server(server)
        protocol = Protocol()
        protocol.server = server
        server.protocol_connected(protocol)
        queue = server.create_application(protocol, {"type": "websocket"})
        protocol.application_queue = queue
        queue.put_nowait({"type": "websocket.connect"})
        await asyncio.sleep(0)
        queue.put_nowait({"type": "websocket.receive", "text": "early"})
        await asyncio.sleep(0.01)
        standin = parked_with[0]
        assert isinstance(standin, adapter.Standin)
        assert standin.queued == ({"type": "websocket.receive", "text": "early"},)
        assert protocol.application_queue is sink
        assert server.connections[protocol]["application_instance"] is standin
        server.application_checker()
        assert protocol in server.connections and not standin.done()
        # Shutdown: Daphne cancels the stand-in and waits until the connection has ended.
        waiting = server.kill_all_applications()
        assert sink.stops == 1 and not standin.done()
        ended: list[object] = []
        waiting.addCallback(ended.append)
        await asyncio.sleep(0.01)
        assert not ended
        standin.finish()
        await asyncio.sleep(0.01)
        assert ended and standin.done()
        server.protocol_disconnected(protocol)
        server.application_checker()
        assert protocol not in server.connections

    logging.getLogger("daphne.server").disabled = True
    try:
        asyncio.run(scenario())
    finally:
        logging.getLogger("daphne.server").disabled = False


def test_park_declines_when_not_called_from_the_application_task() -> None:
    class Protocol:
        application_queue: Any = None
        server: Any = None

    async def scenario() -> None:
        protocol = Protocol()
        protocol.application_queue = asyncio.Queue()

        other = asyncio.ensure_future(asyncio.sleep(0))

        class Server:
            connections = {protocol: {"application_instance": other}}

            async def handle_reply(self, protocol: Any, message: Any) -> None:
                pass

        protocol.server = Server()
        send = functools.partial(protocol.server.handle_reply, protocol)
        assert adapter.park(send, object()) is None
        assert isinstance(protocol.application_queue, asyncio.Queue)

    asyncio.run(scenario())


# -- the reader ------------------------------------------------------------------------


class FakeSession:
    """What the reader uses of a `HubSession`; `feed` records and may wait on a gate."""

    connection = None
    connection_id = "c1"

    def __init__(self) -> None:
        self.fed: list[str] = []
        self.parked = False
        self.gate: asyncio.Future[None] | None = None
        self.on_feed: Any = None

    async def feed(self, data: str | bytes) -> None:
        self.fed.append(str(data))
        if self.on_feed is not None:
            self.on_feed(data)
        if self.gate is not None:
            await self.gate

    def on_abort(self, callback: Any) -> None:
        pass

    def take_ping(self, data: str | bytes) -> bool:
        return data == "ping"


class FakeHandler:
    class options:  # noqa: N801 - the shape of HubOptions
        HANDSHAKE_TIMEOUT = 5.0


@pytest.fixture
def ends(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each ending of a connection, with how it ended."""
    recorded: list[dict[str, Any]] = []

    async def end_socket(handler: Any, session: Any, outbound: Any, send: Any, **how: Any) -> None:
        recorded.append(how)

    monkeypatch.setattr(websocket, "end_socket", end_socket)
    monkeypatch.setattr(adapter, "asgi_send", lambda outbound: None)
    return recorded


def _reader() -> tuple[parked.ParkedReader, FakeSession, adapter.Standin]:
    session = FakeSession()
    reader = parked.ParkedReader(FakeHandler(), session, None)  # type: ignore[arg-type]
    standin = adapter.Standin(reader.cancelled, object(), None)
    reader._standin = standin
    return reader, session, standin


def _frame(text: str) -> dict[str, Any]:
    return {"type": "websocket.receive", "text": text}


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_frames_are_fed_one_at_a_time_in_order(ends: list[dict[str, Any]]) -> None:
    async def scenario() -> None:
        reader, session, standin = _reader()
        session.gate = asyncio.get_running_loop().create_future()
        reader.put_nowait(_frame("1"))
        await _settle()
        reader.put_nowait(_frame("2"))  # while "1" is being fed
        reader.put_nowait(_frame("3"))
        await _settle()
        assert session.fed == ["1"] and not session.parked
        session.gate.set_result(None)
        await _settle()
        assert session.fed == ["1", "2", "3"] and session.parked
        assert reader._busy is None and not ends and not standin.done()
        reader.put_nowait(_frame("ping"))  # taken at once: no task
        assert reader._busy is None and session.fed == ["1", "2", "3"]
        reader.put_nowait({"type": "websocket.disconnect", "code": 1000})
        reader.put_nowait(_frame("late"))
        await _settle()
        assert ends == [
            {"failure": None, "client_gone": True, "replaced": False, "released": False}
        ]
        assert session.fed == ["1", "2", "3"] and standin.done()

    asyncio.run(scenario())


@pytest.mark.parametrize("when", ["idle", "feeding", "before_start", "inside_feed"])
def test_a_stop_ends_the_connection_exactly_once(ends: list[dict[str, Any]], when: str) -> None:
    """However an abort lands (also before a burst's task has started, which a cancel
    would skip entirely, or from a frame being fed), the connection ends once."""

    async def scenario() -> None:
        reader, session, standin = _reader()
        if when == "idle":
            reader.abort()
        elif when == "feeding":
            session.gate = asyncio.get_running_loop().create_future()
            reader.put_nowait(_frame("1"))
            await _settle()
            reader.abort()
        elif when == "before_start":
            reader.put_nowait(_frame("1"))
            reader.abort()
        else:
            session.on_feed = lambda data: reader.abort()
            reader.put_nowait(_frame("1"))
        await _settle()
        reader.abort()
        reader.put_nowait(_frame("after"))
        await _settle()
        assert len(ends) == 1 and ends[0]["client_gone"] is False
        assert "after" not in session.fed and standin.done()

    asyncio.run(scenario())


def test_daphnes_cancel_cuts_short_an_ending_that_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    """At shutdown Daphne cancels the stand-in and waits: a hanging `on_disconnected` must
    not hold the process, as it did not when the read loop's task was cancelled."""

    async def hang(*args: Any, **kwargs: Any) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(websocket, "end_socket", hang)
    monkeypatch.setattr(adapter, "asgi_send", lambda outbound: None)

    async def scenario() -> None:
        reader, _, standin = _reader()
        reader.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await _settle()
        assert not standin.done()
        assert standin.cancel()
        await _settle()
        assert standin.done() and not standin.cancelled()

    asyncio.run(scenario())


# -- keep-alive Pings ------------------------------------------------------------------


def _session_with(framer: str) -> tuple[Any, Any]:
    from types import SimpleNamespace

    from signalr_django.dispatch.session import HubSession
    from signalr_django.protocol.framing import BinaryFramer, TextFramer

    session = HubSession.__new__(HubSession)
    session._text_framer = TextFramer(1024) if framer == "text" else None
    session._binary_framer = BinaryFramer(1024) if framer == "binary" else None
    connection = SimpleNamespace(
        last_received=0.0, client_pinged=False, messages_received=0, bytes_received=0
    )
    session.connection = connection  # type: ignore[assignment]
    return session, connection


@pytest.mark.parametrize(
    ("framer", "ping"), [("text", '{"type":6}\x1e'), ("binary", b"\x02\x91\x06")]
)
def test_a_ping_frame_is_taken_without_feeding(framer: str, ping: str | bytes) -> None:
    session, connection = _session_with(framer)
    assert session.take_ping(ping)
    assert connection.client_pinged and connection.last_received > 0


def test_only_a_lone_ping_with_nothing_buffered_is_taken() -> None:
    session, connection = _session_with("text")
    assert not session.take_ping('{"type": 6}\x1e')  # other bytes: fed as usual
    assert not session.take_ping(b"\x02\x91\x06")  # a binary Ping on a text connection
    session._text_framer.feed('{"type":1,"tar')  # half a record waits for its end
    assert not session.take_ping('{"type":6}\x1e')
    assert not connection.client_pinged
    before, _ = _session_with("text")
    before.connection = None
    assert not before.take_ping('{"type":6}\x1e')  # no handshake yet


def test_daphnes_timeout_sweep_is_what_the_tuned_one_reproduces() -> None:
    from daphne.server import Server

    body = inspect.getsource(Server.timeout_checker).split('"""')[-1]
    lines = [line.strip() for line in body.strip().splitlines()]
    assert lines == [
        "for protocol in list(self.connections.keys()):",
        "protocol.check_timeouts()",
        "reactor.callLater(2, self.timeout_checker)",
    ]


def test_the_timeout_sweep_visits_parked_connections_once_per_ping_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from daphne.server import Server
    from twisted.internet import reactor

    class Protocol:
        def __init__(self) -> None:
            self.checks = 0

        def check_timeouts(self) -> None:
            self.checks += 1

    scheduled: list[Any] = []
    monkeypatch.setattr(reactor, "callLater", lambda delay, f: scheduled.append((delay, f)))
    clock = [1000.0]
    monkeypatch.setattr(adapter.time, "monotonic", lambda: clock[0])

    async def scenario() -> None:
        server = Server(
            application=None, endpoints=["tcp:port=0:interface=127.0.0.1"], ping_interval=20
        )
        server.connections = {}
        assert adapter.tune_server(server)
        parked_one, other = Protocol(), Protocol()
        server.connections[parked_one] = {
            "application_instance": adapter.Standin(lambda: None, parked_one, None)
        }
        server.connections[other] = {}
        server.timeout_checker()
        assert (parked_one.checks, other.checks) == (1, 1)
        assert scheduled[-1] == (2, server.timeout_checker)
        for _ in range(9):  # 18 s
            clock[0] += 2
            server.timeout_checker()
        assert (parked_one.checks, other.checks) == (1, 10)
        clock[0] += 2  # 20 s: the parked one's turn
        server.timeout_checker()
        assert (parked_one.checks, other.checks) == (2, 11)

    asyncio.run(scenario())
