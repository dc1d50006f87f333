"""Exact wire behaviour against a real Daphne, with raw HTTP and WebSocket frames."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import websockets

from tests.servers import Server, daphne

pytestmark = pytest.mark.e2e

RS = "\x1e"


def http(
    server: Server,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        server.url + path, method=method, data=body, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def negotiate(server: Server, query: str = "?negotiateVersion=1", hub: str = "/hubs/test") -> Any:
    status, _, body = http(server, "POST", f"{hub}/negotiate{query}")
    assert status == 200
    return json.loads(body)


def ws_url(server: Server, hub: str = "/hubs/test", query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}{hub}{query}"


async def handshake(ws: Any, request: str = '{"protocol":"json","version":1}') -> str:
    await ws.send(request + RS)
    reply: str = await asyncio.wait_for(ws.recv(), 5)
    return reply


def records(frame: str) -> list[dict[str, Any]]:
    return [json.loads(part) for part in frame.split(RS) if part]


async def recv_non_ping(ws: Any) -> dict[str, Any]:
    while True:
        for message in records(await asyncio.wait_for(ws.recv(), 5)):
            if message.get("type") != 6:
                return message


def test_negotiate_v1_body(server: Server) -> None:
    """Version 1 returns a public id, a secret token and the transports in server order."""
    body = negotiate(server)
    assert list(body) == [
        "negotiateVersion",
        "connectionId",
        "connectionToken",
        "availableTransports",
    ]
    assert body["negotiateVersion"] == 1
    assert len(body["connectionId"]) == 22
    assert body["connectionToken"] != body["connectionId"]
    assert body["availableTransports"] == [
        {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
        {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
        {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
    ]


def test_negotiate_versions_and_methods(server: Server) -> None:
    """v0 has no token, bad versions get 200 + error, other methods 405."""
    v0 = negotiate(server, "")
    assert v0["negotiateVersion"] == 0 and "connectionToken" not in v0
    assert negotiate(server, "?negotiateVersion=7")["negotiateVersion"] == 1
    assert negotiate(server, "?negotiateVersion=abc") == {
        "error": "The client requested a non-integer protocol version."
    }
    status, headers, _ = http(server, "GET", "/hubs/test/negotiate")
    assert status == 405
    assert headers["Allow"] == "POST"


def test_http_transport_status_codes(server: Server) -> None:
    """Missing, forged and unknown ids, and methods the transport does not allow."""
    status, _, body = http(server, "POST", "/hubs/test", body=b"x")
    assert (status, body) == (400, b"Connection ID required")
    status, _, body = http(server, "GET", "/hubs/test?id=forged.1.x")
    assert (status, body) == (404, b"No Connection with that ID")
    token = negotiate(server)["connectionToken"]
    status, _, body = http(server, "POST", f"/hubs/test?id={token}", body=b"x")
    assert (status, body) == (404, b"No Connection with that ID")
    status, _, _ = http(server, "PUT", f"/hubs/test?id={token}", body=b"x")
    assert status == 405


def test_long_polling_lifecycle(server: Server) -> None:
    """First poll 200 empty, handshake by POST, batched poll bodies, DELETE 202, then 404."""
    token = negotiate(server)["connectionToken"]
    url = f"/hubs/test?id={token}"
    status, headers, body = http(server, "GET", url + "&_=1")
    assert (status, body) == (200, b"")
    assert headers["Content-Type"] == "application/octet-stream"
    handshake_and_calls = (
        '{"protocol":"json","version":1}\x1e'
        '{"type":1,"invocationId":"1","target":"Echo","arguments":["a"]}\x1e'
        '{"type":1,"invocationId":"2","target":"Echo","arguments":["b"]}\x1e'
    )
    assert http(server, "POST", url, body=handshake_and_calls.encode())[0] == 200
    collected = b""
    for _ in range(3):
        status, headers, body = http(server, "GET", url)
        assert status == 200
        collected += body
        if collected.count(b"\x1e") >= 3:
            break
    assert headers["Cache-Control"] == "no-cache, no-store"
    assert records(collected.decode()) == [
        {},
        {"type": 3, "invocationId": "1", "result": "a"},
        {"type": 3, "invocationId": "2", "result": "b"},
    ]
    # A transport change and an SSE request on a polling connection are refused.
    status, _, body = http(server, "GET", url, headers={"Accept": "text/event-stream"})
    assert (status, body) == (400, b"Cannot change transports mid-connection")
    assert http(server, "DELETE", url)[0] == 202
    assert http(server, "GET", url)[:3:2] == (404, b"No Connection with that ID")


async def test_second_poll_ends_the_first_with_204(server: Server) -> None:
    """A newer poll supersedes the one waiting."""
    token = negotiate(server)["connectionToken"]
    url = f"/hubs/test?id={token}"
    http(server, "GET", url)
    http(server, "POST", url, body=b'{"protocol":"json","version":1}\x1e')
    assert http(server, "GET", url)[2] == b"{}\x1e"
    loop = asyncio.get_running_loop()
    first = loop.run_in_executor(None, http, server, "GET", url)
    await asyncio.sleep(0.3)
    second = loop.run_in_executor(None, http, server, "GET", url)
    assert (await asyncio.wait_for(first, 5))[0] == 204
    http(server, "DELETE", url)
    assert (await asyncio.wait_for(second, 5))[0] == 204


async def test_server_sent_events_framing(server: Server) -> None:
    """The stream opens with a comment line and carries one event per hub message."""
    token = negotiate(server)["connectionToken"]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"GET /hubs/test?id={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"200" in head.split(b"\r\n")[0]
    assert b"Content-Type: text/event-stream" in head
    body = b""
    while b":\r\n" not in body:
        body += await asyncio.wait_for(reader.read(100), 5)
    url = f"/hubs/test?id={token}"
    status, _, _ = http(server, "POST", url, body=b'{"protocol":"json","version":1}\x1e')
    assert status == 200
    data = b""
    while b"data: {}\x1e\r\n\r\n" not in data:
        data += await asyncio.wait_for(reader.read(1000), 5)
    assert (
        http(server, "DELETE", url)[2]
        == b"Cannot terminate this connection using the DELETE endpoint."
    )
    writer.close()


async def test_post_on_a_websocket_connection_is_405(server: Server) -> None:
    """Sends for WebSocket connections must come over the socket."""
    token = negotiate(server)["connectionToken"]
    async with websockets.connect(ws_url(server, query=f"?id={token}")) as ws:
        assert await handshake(ws) == "{}" + RS
        status, _, body = http(server, "POST", f"/hubs/test?id={token}", body=b"x")
        assert (status, body) == (405, b"POST requests are not allowed for WebSocket connections.")
        status, _, body = http(server, "GET", f"/hubs/test?id={token}")
        assert (status, body) == (400, b"Cannot change transports mid-connection")


def test_cors_preflight_and_headers(server: Server) -> None:
    """Listed origins get credentialed CORS headers; others get none."""
    status, headers, _ = http(
        server,
        "OPTIONS",
        "/hubs/test/negotiate",
        headers={"Origin": "http://cors.example", "Access-Control-Request-Method": "POST"},
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://cors.example"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    status, headers, _ = http(
        server, "POST", "/hubs/test/negotiate", headers={"Origin": "http://evil.example"}
    )
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


async def test_handshake_and_several_messages_per_frame(server: Server) -> None:
    """Handshake plus invocations in one frame; replies are one message per frame."""
    token = negotiate(server)["connectionToken"]
    async with websockets.connect(ws_url(server, query=f"?id={token}")) as ws:
        frame = (
            '{"protocol":"json","version":1}'
            + RS
            + '{"type":1,"invocationId":"1","target":"Echo","arguments":["a"]}'
            + RS
            + '{"type":1,"invocationId":"2","target":"echo","arguments":["b"]}'
            + RS
            + '{"type":1,"invocationId":"3","target":"ech'
        )
        await ws.send(frame)
        assert await ws.recv() == "{}" + RS
        await ws.send('o","arguments":["c"]}' + RS)
        got = [await recv_non_ping(ws) for _ in range(3)]
        assert got == [
            {"type": 3, "invocationId": "1", "result": "a"},
            {"type": 3, "invocationId": "2", "result": "b"},
            {"type": 3, "invocationId": "3", "result": "c"},
        ]
        # Fire-and-forget invocations get no reply, not even errors.
        await ws.send(
            '{"type":1,"target":"Nope","arguments":[]}'
            + RS
            + '{"type":1,"invocationId":"4","target":"VoidMethod","arguments":[]}'
            + RS
        )
        assert await recv_non_ping(ws) == {"type": 3, "invocationId": "4", "result": None}
        # Unknown message types and unknown properties are ignored.
        await ws.send(
            '{"type":99}'
            + RS
            + '{"type":1,"invocationId":"5","target":"Echo","arguments":[1],"x":2}'
            + RS
        )
        assert await recv_non_ping(ws) == {"type": 3, "invocationId": "5", "result": 1}
        await ws.send('{"type":7}' + RS)
        assert await recv_non_ping(ws) == {"type": 7}


@pytest.mark.parametrize(
    ("request_text", "error"),
    [
        ('{"protocol":"xml","version":1}', "The protocol 'xml' is not supported."),
        (
            '{"protocol":"json","version":3}',
            "The server does not support version 3 of the 'json' protocol.",
        ),
        ('{"protocol":"json"}', "An unexpected error occurred during connection handshake."),
        ("not json", "An unexpected error occurred during connection handshake."),
    ],
)
async def test_handshake_errors(server: Server, request_text: str, error: str) -> None:
    """Handshake failures answer with the exact error, then close."""
    async with websockets.connect(ws_url(server)) as ws:
        reply = await handshake(ws, request_text)
        assert reply == json.dumps({"error": error}, separators=(",", ":")) + RS
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_protocol_error_closes_with_reconnect_allowed(server: Server) -> None:
    """Malformed messages close the connection with an error that allows reconnecting."""
    async with websockets.connect(ws_url(server)) as ws:
        assert await handshake(ws) == "{}" + RS
        await ws.send('{"type":1,"invocationId":"1","arguments":[]}' + RS)
        assert await recv_non_ping(ws) == {
            "type": 7,
            "error": "Connection closed with an error.",
            "allowReconnect": True,
        }


async def test_detailed_protocol_error(server: Server) -> None:
    """With detailed errors the Close names what was missing."""
    async with websockets.connect(ws_url(server, "/hubs/detailed")) as ws:
        assert await handshake(ws) == "{}" + RS
        await ws.send('{"type":1,"invocationId":"1","arguments":[]}' + RS)
        close = await recv_non_ping(ws)
        assert close["error"] == (
            "Connection closed with an error. InvalidDataException: "
            "Missing required property 'target'."
        )


async def test_tokens_are_verified(server: Server) -> None:
    """A forged token, or a token used twice at once, is refused."""
    token = negotiate(server)["connectionToken"]
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(ws_url(server, query=f"?id={token}x")):
            pass
    assert info.value.response.status_code == 403
    async with websockets.connect(ws_url(server, query=f"?id={token}")) as ws:
        assert await handshake(ws) == "{}" + RS
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(ws_url(server, query=f"?id={token}")) as second:
                await handshake(second)


async def test_negotiate_v0_id_is_usable(server: Server) -> None:
    """Version 0 clients connect with the connectionId as `id`."""
    connection_id = negotiate(server, "")["connectionId"]
    async with websockets.connect(ws_url(server, query=f"?id={connection_id}")) as ws:
        assert await handshake(ws) == "{}" + RS
        await ws.send('{"type":1,"invocationId":"1","target":"ConnectionInfo","arguments":[]}' + RS)
        info = await recv_non_ping(ws)
        # The hub knows the connection by the id the client was given.
        assert info["result"]["connectionId"] == connection_id


async def test_cross_site_origin_is_refused(server: Server) -> None:
    """A browser page on another site cannot open a connection (CSWSH)."""
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(ws_url(server), origin="http://evil.example"):
            pass
    async with websockets.connect(ws_url(server), origin=server.url) as ws:
        assert await handshake(ws) == "{}" + RS


async def test_handshake_timeout(server: Server) -> None:
    """A client that never completes the handshake is told so and closed."""
    async with websockets.connect(ws_url(server, "/hubs/watch")) as ws:
        await ws.send('{"protocol":')
        # WatchHub's HANDSHAKE_TIMEOUT is 2 s (the default is 15 s).
        reply = await asyncio.wait_for(ws.recv(), 5)
        assert reply == '{"error":"Handshake was canceled."}' + RS


async def test_server_shutdown_tells_clients_to_reconnect(artifacts: Any, test_db: str) -> None:
    """On SIGTERM, Daphne cancels the hubs; each client gets a Close that allows reconnect."""
    with daphne(
        "tests.asgi:application",
        "tests.settings",
        artifacts,
        {"SIGNALR_TEST_DB": test_db},
        name="shutdown",
    ) as srv:
        async with websockets.connect(ws_url(srv)) as ws:
            assert await handshake(ws) == "{}" + RS
            srv.proc.send_signal(signal.SIGTERM)
            assert await recv_non_ping(ws) == {"type": 7, "allowReconnect": True}


def test_a_long_poller_that_stops_polling_is_reaped(server: Server) -> None:
    """No poll for DISCONNECT_TIMEOUT (2 s on WatchHub): the connection ends."""
    hub = "/hubs/watch"
    token = negotiate(server, hub=hub)["connectionToken"]
    url = f"{hub}?id={token}"
    assert http(server, "GET", url)[0] == 200
    http(server, "POST", url, body=b'{"protocol":"json","version":1}\x1e')
    assert http(server, "GET", url)[2] == b"{}\x1e"
    http(
        server,
        "POST",
        url,
        body=b'{"type":1,"invocationId":"1","target":"ConnectionCount","arguments":[]}\x1e',
    )
    assert records(http(server, "GET", url)[2].decode()) == [
        {"type": 3, "invocationId": "1", "result": 1}
    ]
    time.sleep(4.0)  # no poll meanwhile
    assert http(server, "GET", url)[0] == 204
    assert http(server, "POST", url, body=b"{}\x1e")[0] == 404
