"""Connection handlers (`map_connection`): raw connections driven by the official client.

The official client's `HttpConnection` (what `HubConnection` runs on) talks to the test
project's connection handlers over each transport and transfer format the client allows:
binary over WebSockets and long polling, text over all three (Server-Sent Events carry text
only, and the client does not offer it for binary).
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.redis_server import redis_url
from tests.servers import Server, daphne, free_port

from .conftest import run_node

pytestmark = pytest.mark.e2e

LIMIT = 32 * 1024  # MAXIMUM_RECEIVE_MESSAGE_SIZE of the test project (the default)
TRANSPORTS = ["WebSockets", "ServerSentEvents", "LongPolling"]
COMBINATIONS = [
    ("WebSockets", "Text"),
    ("WebSockets", "Binary"),
    ("ServerSentEvents", "Text"),
    ("LongPolling", "Text"),
    ("LongPolling", "Binary"),
]


def scenario(name: str, base: str, transport: str, fmt: str = "Text", **env: str) -> Any:
    return run_node(
        "connections.mjs",
        name,
        base,
        timeout=90,
        env={"SIGNALR_TRANSPORT": transport, "SIGNALR_FORMAT": fmt, **env},
    )


def negotiate(base: str, path: str, query: str = "negotiateVersion=1") -> dict[str, Any]:
    request = urllib.request.Request(f"{base}/{path}/negotiate?{query}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


@pytest.mark.parametrize(("transport", "fmt"), COMBINATIONS)
def test_echo_keeps_text_and_binary(server: Server, transport: str, fmt: str) -> None:
    """Every payload comes back byte for byte, up to MAXIMUM_RECEIVE_MESSAGE_SIZE."""
    out = scenario("echo", server.url, transport, fmt)
    assert out["equal"] is True, out
    assert out["sentBytes"] > LIMIT
    if transport == "WebSockets":
        # One frame per message, with its type: strings for text, ArrayBuffers for binary.
        assert out["framesMatch"] is True, out
        assert out["types"] == (["ArrayBuffer"] if fmt == "Binary" else ["string"])
    elif fmt == "Binary":
        assert out["types"] == ["ArrayBuffer"]
    else:
        assert out["types"] == ["string"]


@pytest.mark.parametrize(("transport", "fmt"), COMBINATIONS)
def test_message_over_the_limit_closes_the_connection(
    server: Server, transport: str, fmt: str
) -> None:
    """One byte over MAXIMUM_RECEIVE_MESSAGE_SIZE: a clear close, and on_disconnected knows."""
    out = scenario("tooLarge", server.url, transport, fmt)
    assert out["ended"] == (
        f"MessageTooLargeError: The message ({LIMIT + 1} bytes) exceeds "
        f"MAXIMUM_RECEIVE_MESSAGE_SIZE ({LIMIT} bytes)."
    )
    if transport == "WebSockets":
        assert out["closeError"] == "WebSocket closed with status code: 4009 (no reason given)."
    else:
        assert "413" in out["sendError"], out


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_side_of_a_connection(server: Server, transport: str) -> None:
    """on_connected, items, send by id, a server-initiated close, a failing on_message."""
    out = scenario("control", server.url, transport)
    assert out["welcome"] == f"welcome {transport}"
    assert out["echo"] == "got:ping"
    assert out["info"] == {
        "id": out["id"],
        "transport": transport,
        "user": None,
        "count": 2,
        "type": "str",
    }
    assert (out["sent"], out["atB"], out["unknown"]) == ("sent", "hello b", "unknown")
    assert out["bye"] == "bye"
    assert out["closeError"] is None  # a normal close
    assert out["closedEnded"] == "None"
    assert out["boomEnded"] == "RuntimeError: boom"
    if transport == "WebSockets":
        assert out["boomCloseError"] == "WebSocket closed with status code: 4011 (no reason given)."


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refusing_on_connected(server: Server, transport: str) -> None:
    """on_connected raising: over HTTP the starting request fails, so the client's start
    fails; a WebSocket is already accepted, so it closes with 4011."""
    out = scenario("refusing", server.url, transport)
    assert out["received"] == 0
    if transport == "WebSockets":
        assert out["startError"] is None
        assert out["closeError"] == "WebSocket closed with status code: 4011 (no reason given)."
    elif transport == "LongPolling":
        assert (
            "The connection handler refused the connection.: Status code '500'"
            in (out["startError"])
        )
    else:
        assert "ServerSentEvents failed" in out["startError"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fifty_concurrent_connections(server: Server, transport: str) -> None:
    out = scenario("concurrent", server.url, transport, CONNECTIONS="50")
    assert out == {"connections": 50, "distinctIds": 50, "closedCleanly": 50}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_authorized_handler(server: Server, transport: str) -> None:
    """`@authorize` on the handler: negotiate answers 401 to anonymous clients."""
    out = scenario("auth", server.url, transport)
    assert "401" in out["anonymous"], out
    assert out["first"] == "user:raw-user"
    assert out["echo"] == "echo me"


def test_negotiate_offers_the_route_transports_and_no_stateful_reconnect(server: Server) -> None:
    """Per-route options apply, and stateful reconnect (a hub protocol feature) is never on."""
    query = "negotiateVersion=1&useStatefulReconnect=true"
    body = negotiate(server.url, "connections/echo-ws", query)
    assert body["availableTransports"] == [
        {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
    ]
    assert "useStatefulReconnect" not in body
    body = negotiate(server.url, "connections/echo")
    assert [t["transport"] for t in body["availableTransports"]] == TRANSPORTS
    assert body["availableTransports"][1]["transferFormats"] == ["Text"]


@pytest.fixture(scope="module")
def split(artifacts: Path, test_db: str) -> Iterator[tuple[Server, Server]]:
    """Two Daphne workers on one Redis channel layer (no session affinity in front)."""
    with redis_url() as redis:
        ports = [free_port(), free_port()]
        env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis, "SIGNALR_TEST_LAYER": "pubsub"}
        settings = "tests.settings_redis"
        with (
            daphne("tests.asgi:application", settings, artifacts, env, "raw-a", ports[0]) as a,
            daphne("tests.asgi:application", settings, artifacts, env, "raw-b", ports[1]) as b,
        ):
            yield a, b


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_split_deployment_round_robin(split: tuple[Server, Server], transport: str) -> None:
    """Requests alternate between workers; HTTP-transport ones are forwarded to the owner."""
    a, b = split
    try:
        out = scenario("roundRobin", a.url, transport, WORKER_B=b.url)
    except pytest.fail.Exception:
        for server in split:
            print(server.output()[-3000:])
        raise
    assert out["welcome"] == f"welcome {transport}"
    assert out["info"]["transport"] == transport
    assert out["bye"] == "bye"
    assert out["closeError"] is None
    assert min(out["counts"]) >= 1, out["counts"]


@pytest.fixture(scope="module")
def generic(artifacts: Path, test_db: str) -> Iterator[Server]:
    """Daphne serving the test project through the generic ASGI path (QueuedOutbound)."""
    env = {"SIGNALR_TEST_DB": test_db, "SIGNALR_TEST_GENERIC_PATH": "1"}
    with daphne("tests.asgi:application", "tests.settings", artifacts, env, "raw-generic") as srv:
        yield srv


@pytest.mark.parametrize(
    ("transport", "fmt"), [("WebSockets", "Binary"), ("ServerSentEvents", "Text")]
)
def test_generic_asgi_path(generic: Server, transport: str, fmt: str) -> None:
    """What servers other than Daphne get: echo, then a server close that flushes first."""
    out = scenario("echo", generic.url, transport, fmt)
    assert out["equal"] is True, out
    out = scenario("control", generic.url, transport)
    assert (out["bye"], out["closeError"], out["closedEnded"]) == ("bye", None, "None")


async def test_raw_frames_without_negotiate_and_origin_check(server: Server) -> None:
    """skipNegotiation clients get a fresh id; no handshake is expected or answered; a
    browser page on a foreign origin is refused (the hubs' Origin check)."""
    url = f"ws://127.0.0.1:{server.port}/connections/control"
    async with websockets.connect(url) as ws:
        assert await asyncio.wait_for(ws.recv(), 30) == "welcome WebSockets"
        await ws.send('{"protocol":"json","version":1}\x1e')  # just a message here
        assert await asyncio.wait_for(ws.recv(), 30) == 'got:{"protocol":"json","version":1}\x1e'
        await ws.send(b"info")
        info = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert info["type"] == "bytes"
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url, origin=websockets.Origin("http://evil.example")):
            pass


def test_raw_http_answers(server: Server) -> None:
    """A POST to a WebSocket connection, an unknown id, a transport the route does not offer."""
    token = negotiate(server.url, "connections/echo-ws")["connectionToken"]
    request = urllib.request.Request(
        f"{server.url}/connections/echo-ws?id={token}", headers={"Accept": "text/event-stream"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 404
    assert b"ServerSentEvents transport not supported" in refused.value.read()
    request = urllib.request.Request(
        f"{server.url}/connections/echo?id=forged", data=b"x", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(request, timeout=30)
    assert unknown.value.code == 404


async def test_server_shutdown_closes_raw_connections(artifacts: Path, test_db: str) -> None:
    """On SIGTERM each raw WebSocket gets a normal close, and what was sent before arrives."""
    env = {"SIGNALR_TEST_DB": test_db}
    with daphne("tests.asgi:application", "tests.settings", artifacts, env, "raw-stop") as srv:
        url = f"ws://127.0.0.1:{srv.port}/connections/control"
        async with websockets.connect(url) as ws:
            assert await asyncio.wait_for(ws.recv(), 30) == "welcome WebSockets"
            await ws.send("last")
            assert await asyncio.wait_for(ws.recv(), 30) == "got:last"
            srv.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 30)
            assert ws.close_code == 1000


def test_a_client_that_stops_polling_is_closed_at_the_outbound_cap(server: Server) -> None:
    """OUTBOUND_BUFFER_LIMIT (64 KiB on this route) bounds what waits for a long poller."""
    token = negotiate(server.url, "connections/echo-capped")["connectionToken"]
    url = f"{server.url}/connections/echo-capped?id={token}"

    def call(method: str, body: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=body, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()

    assert call("GET") == (200, b"")  # starts the connection
    for _ in range(3):  # echoed into the poll buffer: 90 KB wait, over the cap
        assert call("POST", b"z" * 30_000)[0] == 200
    status, body = call("GET")
    assert (status, len(body)) == (200, 90_000)  # what was queued is still delivered
    assert call("GET")[0] == 204  # then the poller learns the connection ended
