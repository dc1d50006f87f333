"""uvicorn as a server: graceful shutdown, load reports, and what the official client sees.

The official client's scenarios run on uvicorn in test_node_client.py, and the bounded
memory tests in test_resources.py; this module holds what differs from Daphne: how the
server's start and shutdown reach the application. With `signalr_django.lifespan` routed,
a SIGTERM first drains (every client gets a Close that allows reconnecting) and then lets
uvicorn shut down; without it, uvicorn's own shutdown is all the clients see.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_client

from tests.rawws import RawWebSocket
from tests.redis_server import redis_url
from tests.servers import ROOT, Server, free_port, uvicorn

from .conftest import JS_DIR, node_available, run_node

pytestmark = pytest.mark.e2e

ASGI = "tests.asgi:application"
HANDSHAKE = '{"protocol":"json","version":1}\x1e'


class NodeClient:
    """A Node script running in the background; its stdout lines are read as they come."""

    def __init__(self, script: str, url: str, transport: str) -> None:
        node_available()
        kind, _, protocol = transport.partition("/")
        env = {**os.environ, "SIGNALR_TRANSPORT": kind, "SIGNALR_PROTOCOL": protocol or "json"}
        self.proc = subprocess.Popen(
            ["node", str(JS_DIR / script), url],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.lines.put(line)
        self.lines.put(None)

    def line(self, timeout: float) -> Any:
        """The next line printed, as JSON; fails with the script's stderr if it ended."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.proc.kill()
            _, stderr = self.proc.communicate(timeout=10)
            pytest.fail(f"the Node client printed nothing more:\n{stderr[-4000:]}")
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def sigterm_then_restart(
    artifacts: Path, env: dict[str, str], transport: str, extra: tuple[str, ...] = ()
) -> tuple[dict[str, Any], int | None, str]:
    """Connect the official client, SIGTERM uvicorn, start a new one on the same port.

    Returns what the client saw, the old server's exit code, and its log.
    """
    port = free_port()
    with uvicorn(ASGI, "tests.settings", artifacts, env, "shutdown", port, extra=extra) as old:
        client = NodeClient("shutdown.mjs", old.url, transport)
        try:
            assert "ready" in client.line(30)
            old.proc.send_signal(signal.SIGTERM)
            code = old.proc.wait(60)
            with uvicorn(ASGI, "tests.settings", artifacts, env, "restarted", port):
                seen = client.line(90)
        finally:
            client.stop()
        return seen, code, old.output()


@pytest.mark.parametrize(
    "transport",
    ["WebSockets/json", "WebSockets/messagepack", "ServerSentEvents/json", "LongPolling/json"],
)
def test_sigterm_drains_with_a_close_that_allows_reconnecting(
    artifacts: Path, test_db: str, transport: str
) -> None:
    """With the lifespan app: a Close (allowReconnect) first, then uvicorn shuts down;
    the client reconnects to the next server on that port."""
    seen, code, log = sigterm_then_restart(artifacts, {"SIGNALR_TEST_DB": test_db}, transport)
    assert seen["closeMessage"] is True, seen
    assert seen["reconnectingError"] is None  # a Close without an error, not a failure
    assert seen["transportError"] is None
    assert seen["reconnected"] is True and seen["echo"] == "after"
    assert "Application shutdown complete" in log
    assert code is not None


def test_without_lifespan_websockets_see_uvicorns_1012_and_reconnect(
    artifacts: Path, test_db: str
) -> None:
    """Without the lifespan app, uvicorn closes WebSockets itself with 1012 (service
    restart) before the application can write a Close; the official client treats that as
    a lost connection and, with automatic reconnect, reconnects all the same."""
    env = {"SIGNALR_TEST_DB": test_db, "SIGNALR_TEST_NO_LIFESPAN": "1"}
    seen, _, _ = sigterm_then_restart(artifacts, env, "WebSockets/json")
    assert seen["closeMessage"] is False
    assert seen["transportError"] == "WebSocket closed with status code: 1012"
    assert seen["reconnectingError"].startswith("WebSocket closed with status code: 1012")
    assert seen["reconnected"] is True and seen["echo"] == "after"


def test_without_lifespan_an_sse_stream_holds_shutdown_until_the_graceful_timeout(
    artifacts: Path, test_db: str
) -> None:
    """Without the lifespan app nothing ends a Server-Sent Events stream: uvicorn waits
    for it until --timeout-graceful-shutdown, then cancels it; the client reconnects."""
    env = {"SIGNALR_TEST_DB": test_db, "SIGNALR_TEST_NO_LIFESPAN": "1"}
    extra = ("--timeout-graceful-shutdown", "2")
    seen, _, log = sigterm_then_restart(artifacts, env, "ServerSentEvents/json", extra)
    assert seen["closeMessage"] is False
    assert seen["reconnected"] is True and seen["echo"] == "after"
    assert "timeout graceful shutdown exceeded" in log


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    """A Redis server for this module (the shared cache the load reports go to)."""
    with redis_url() as url:
        yield url


def test_lifespan_starts_and_withdraws_load_reports(
    artifacts: Path, test_db: str, redis: str
) -> None:
    """uvicorn has no reactor: the lifespan app starts the reports and withdraws them."""
    port = free_port()
    worker = f"http://127.0.0.1:{port}"
    env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis, "SIGNALR_WORKER_URL": worker}
    cache = redis_client.Redis.from_url(redis.rsplit("/", 1)[0] + "/1")
    pattern = f"*signalr:load:{worker}"
    with (
        contextlib.closing(cache),
        uvicorn(ASGI, "tests.settings_redis", artifacts, env, "load", port) as server,
    ):
        deadline = time.monotonic() + 30
        while not cache.keys(pattern) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cache.keys(pattern), "no load report"
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        assert not cache.keys(pattern), "the report outlived the worker"


@pytest.fixture(scope="module")
def wsproto(artifacts: Path, test_db: str) -> Iterator[Server]:
    """uvicorn with its wsproto WebSocket implementation.

    The matrix in test_node_client.py runs on `websockets-sansio`, what `--ws auto` picks
    when `websockets` is installed (as with uvicorn[standard]); wsproto is the other
    maintained one. (`--ws websockets`, the legacy implementation, is deprecated by
    uvicorn and will point at websockets-sansio.)
    """
    env = {"SIGNALR_TEST_DB": test_db}
    with uvicorn(ASGI, "tests.settings", artifacts, env, "uvicorn-wsproto", ws="wsproto") as srv:
        yield srv


@pytest.mark.parametrize(
    ("name", "transport"),
    [
        ("invokeAndSend", "WebSockets/json"),
        ("invokeAndSend", "WebSockets/messagepack"),
        ("streaming", "WebSockets/json"),
        ("serverClose", "WebSockets/json"),
        ("messageTooLarge", "WebSockets/json"),
        ("statefulReconnect", "WebSockets/json"),
    ],
)
def test_websocket_scenarios_on_wsproto(wsproto: Server, name: str, transport: str) -> None:
    """The official client's WebSocket scenarios on uvicorn's wsproto implementation."""
    kind, _, protocol = transport.partition("/")
    env = {"SIGNALR_TRANSPORT": kind, "SIGNALR_PROTOCOL": protocol}
    run_node("run.mjs", name, wsproto.url, env=env)


def test_connection_limit_refuses_websocket_upgrades_with_503(
    artifacts: Path, test_db: str, redis: str
) -> None:
    """uvicorn supports ASGI's WebSocket denial responses: past MAX_CONNECTIONS an upgrade
    gets 503 with Retry-After (Daphne can only answer 403)."""
    env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis, "SIGNALR_TEST_MAX_CONNECTIONS": "2"}
    with uvicorn(ASGI, "tests.settings_redis", artifacts, env, "limited") as server:
        out = run_node("run.mjs", "connectionLimit", server.url)
        assert out["third"] == {"status": 503, "retryAfter": "5"}
        assert out["upgradeRefused"] is True
        assert out["afterLeaving"] == "ok"
        held = [RawWebSocket(server.port) for _ in range(2)]
        for ws in held:
            ws.send_text(HANDSHAKE)
            assert ws.recv_text() == "{}\x1e"
        refused = RawWebSocket(server.port)
        assert refused.status == 503
        for ws in [*held, refused]:
            ws.close()
