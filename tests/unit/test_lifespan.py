"""The lifespan app and the signal drain (servers other than Daphne), in process.

The end-to-end behaviour on a real uvicorn is in tests/e2e/test_uvicorn.py; here each
piece is pinned: the lifespan messages, the order "drain, then the server's handler", a
second signal going straight through, and the SSE writer that stops with its client.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from signalr_django import Hub, lifespan
from signalr_django.core import load, shutdown
from signalr_django.dispatch.handler import get_handler
from signalr_django.transports.http import serve_sse
from signalr_django.transports.http_connection import get_http_manager


async def until(condition: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
def restore_signals() -> Iterator[None]:
    """Start-up wraps the process's SIGTERM/SIGINT handlers: put them back after each test."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        shutdown._signal_drain = None


async def test_lifespan_answers_startup_and_shutdown() -> None:
    """startup.complete, then shutdown.complete, and the app returns."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await inbox.put({"type": "lifespan.startup"})
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan({"type": "lifespan"}, inbox.get, send), 10)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_lifespan_starts_and_stops_load_reports(settings: Any) -> None:
    """With WORKER_URL the report task runs from startup until shutdown."""
    settings.SIGNALR = {**settings.SIGNALR, "WORKER_URL": "http://worker.test:1"}
    from signalr_django.server.lifespan import shutdown as app_shutdown
    from signalr_django.server.lifespan import startup as app_startup

    await app_startup()
    task = load._task
    assert task is not None and not task.done()
    await app_shutdown()
    assert task.done() and load._task is None


async def test_lifespan_refuses_other_scopes() -> None:
    with pytest.raises(ValueError, match="lifespan"):
        await lifespan({"type": "http"}, None, None)  # type: ignore[arg-type]


@pytest.fixture
def server_handler() -> Iterator[list[str]]:
    """A stand-in for the server's own SIGTERM handler (uvicorn's)."""
    calls: list[str] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        calls.append("server")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield calls


async def test_the_drain_runs_before_the_servers_handler(
    server_handler: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM: drain first; the server's handler once the drain is over, once."""
    gate = asyncio.Event()

    async def drain(timeout: float | None = None) -> int:
        server_handler.append("drain")
        await gate.wait()
        return 0

    monkeypatch.setattr(shutdown, "drain", drain)
    assert shutdown.install_signal_drain()
    os.kill(os.getpid(), signal.SIGTERM)
    await until(lambda: "drain" in server_handler)
    assert server_handler == ["drain"]  # uvicorn has not been told yet
    gate.set()
    await until(lambda: "server" in server_handler)
    await shutdown.stop_signal_drain()
    assert server_handler == ["drain", "server"]
    assert shutdown._signal_drain is None  # a server started again installs it afresh


async def test_a_second_signal_goes_straight_to_the_server(
    server_handler: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator who signals again is not kept waiting, and the server hears it once."""
    gate = asyncio.Event()

    async def drain(timeout: float | None = None) -> int:
        server_handler.append("drain")
        await gate.wait()
        return 0

    monkeypatch.setattr(shutdown, "drain", drain)
    assert shutdown.install_signal_drain()
    os.kill(os.getpid(), signal.SIGTERM)
    await until(lambda: "drain" in server_handler)
    os.kill(os.getpid(), signal.SIGTERM)
    await until(lambda: "server" in server_handler)
    gate.set()
    await shutdown.stop_signal_drain()
    assert server_handler == ["drain", "server"]


async def test_python_default_handlers_are_not_taken_over() -> None:
    """Without a server handler to call afterwards, nothing is wrapped."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    assert not shutdown.install_signal_drain()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class SseHub(Hub):
    async def echo(self, value: Any) -> Any:
        return value


async def test_an_sse_stream_left_by_its_client_stops_its_writer() -> None:
    """The writer task ends with the stream instead of waiting forever for records."""
    handler = get_handler(SseHub)
    connection = get_http_manager(handler).create(
        "sse-unit", "ServerSentEvents", {"type": "http"}, None
    )
    sent: list[dict[str, Any]] = []
    leave = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await leave.wait()
        return {"type": "http.disconnect"}

    stream = asyncio.ensure_future(serve_sse(connection, receive, send, []))
    await until(lambda: connection.sse_send is not None)
    connection.outbound.write("{}\x1e")
    await until(lambda: any(m.get("body", b"").startswith(b"data: {}") for m in sent))
    writer = connection.outbound._task  # type: ignore[attr-defined]
    assert writer is not None and not writer.done()
    leave.set()
    await asyncio.wait_for(stream, 10)
    assert connection.outbound.closed
    await asyncio.wait_for(writer, 10)
    await connection.wait_ended()
