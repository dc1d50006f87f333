"""Endpoint options, the answers ASP.NET Core gives, authentication expiry and the negotiate
hook, against a real Daphne with raw HTTP and WebSocket frames and the official client."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

import pytest
import websockets

from tests.rawws import RawWebSocket
from tests.servers import Server

from .conftest import run_node

pytestmark = pytest.mark.e2e

RS = "\x1e"
HANDSHAKE = b'{"protocol":"json","version":1}\x1e'


def http(
    server: Server,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(
        server.url + path, method=method, data=body, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def login(server: Server, name: str, ttl: float = 3600) -> dict[str, Any]:
    """A user with a session cookie and an embedded token, both valid for `ttl` seconds."""
    status, headers, body = http(server, "GET", f"/short-login?name={name}&ttl={ttl}")
    assert status == 200
    cookie = "; ".join(c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or [])
    return {**json.loads(body), "cookie": cookie}


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


def negotiate(server: Server, hub: str, headers: dict[str, str] | None = None) -> Any:
    status, _, body = http(server, "POST", f"{hub}/negotiate?negotiateVersion=1", headers)
    assert status == 200, body
    return json.loads(body)


def transports(body: dict[str, Any]) -> list[str]:
    return [t["transport"] for t in body["availableTransports"]]


def test_one_hub_two_urls_each_with_its_transports_and_authorization(server: Server) -> None:
    """/hubs/ep/ws: WebSockets, anyone; /hubs/ep/lp: long polling, signed-in users only."""
    assert transports(negotiate(server, "/hubs/ep/ws")) == ["WebSockets"]
    status, headers, body = http(server, "POST", "/hubs/ep/lp/negotiate?negotiateVersion=1")
    assert (status, body, headers["WWW-Authenticate"]) == (401, b"Unauthorized", "Bearer")
    ada = login(server, "ep-ada")
    assert transports(negotiate(server, "/hubs/ep/lp", bearer(ada))) == ["LongPolling"]
    # Each URL refuses the transports it does not offer.
    token = negotiate(server, "/hubs/ep/ws")["connectionToken"]
    status, _, body = http(server, "GET", f"/hubs/ep/ws?id={token}")
    assert (status, body) == (404, b"LongPolling transport not supported by this end point type")


def test_endpoint_permissions(server: Server) -> None:
    """AUTHORIZE={"permissions": [...]}: 401 anonymous, 403 without, 200 with."""
    status, _, _ = http(server, "POST", "/hubs/ep/admin/negotiate")
    assert status == 401
    plain = login(server, "ep-plain")
    status, _, body = http(server, "POST", "/hubs/ep/admin/negotiate", bearer(plain))
    assert (status, body) == (403, b"Forbidden")
    status, _, body = http(server, "GET", "/make-user?name=ep-admin&perm=1")
    admin = json.loads(body)
    status, _, _ = http(server, "POST", "/hubs/ep/admin/negotiate", bearer(admin))
    assert status == 200


@pytest.mark.parametrize("hub", ["/hubs/auth", "/hubs/ep/lp"])
def test_transport_requests_without_the_credentials_get_401(server: Server, hub: str) -> None:
    """After an authorized negotiate, GET/POST/DELETE without them: 401, as ASP.NET Core."""
    user = login(server, "ep-carol")
    token = negotiate(server, hub, bearer(user))["connectionToken"]
    url = f"{hub}?id={token}"
    for method, body in (("GET", None), ("POST", HANDSHAKE), ("DELETE", None)):
        status, headers, text = http(server, method, url, body=body)
        assert (status, text) == (401, b"Unauthorized"), method
        assert headers["WWW-Authenticate"] == "Bearer"
    # With them, the connection starts and works.
    assert http(server, "GET", url, bearer(user))[0] == 200
    assert http(server, "POST", url, bearer(user), HANDSHAKE)[0] == 200
    assert http(server, "GET", url, bearer(user))[2] == b"{}\x1e"
    assert http(server, "DELETE", url, bearer(user))[0] == 202


def test_polls_after_delete_get_404(server: Server) -> None:
    """DELETE ends a long-polling connection; its id is gone at once (ASP.NET Core)."""
    token = negotiate(server, "/hubs/test")["connectionToken"]
    url = f"/hubs/test?id={token}"
    assert http(server, "GET", url)[0] == 200
    assert http(server, "POST", url, body=HANDSHAKE)[0] == 200
    assert http(server, "GET", url)[2] == b"{}\x1e"
    assert http(server, "DELETE", url)[0] == 202
    for method in ("GET", "GET", "POST", "DELETE"):
        status, _, body = http(server, method, url, body=b"{}\x1e" if method == "POST" else None)
        assert (status, body) == (404, b"No Connection with that ID"), method


async def test_a_poll_waiting_when_delete_arrives_gets_204(server: Server) -> None:
    """The poll in flight ends with 204; the next one finds no connection."""
    token = negotiate(server, "/hubs/test")["connectionToken"]
    url = f"/hubs/test?id={token}"
    http(server, "GET", url)
    http(server, "POST", url, body=HANDSHAKE)
    assert http(server, "GET", url)[2] == b"{}\x1e"
    loop = asyncio.get_running_loop()
    waiting = loop.run_in_executor(None, http, server, "GET", url)
    await asyncio.sleep(0.3)  # let it start waiting (if it has not, it gets 404: also ended)
    assert http(server, "DELETE", url)[0] == 202
    assert (await asyncio.wait_for(waiting, 30))[0] in (204, 404)
    assert http(server, "GET", url)[0] == 404


def test_negotiate_hook_adds_headers_and_cookies(server: Server) -> None:
    """Both Set-Cookie headers and the custom header arrive; failures do not leak."""
    user = login(server, "ep-dora")
    status, headers, body = http(server, "POST", "/hubs/ep/hooked/negotiate", bearer(user))
    assert status == 200 and json.loads(body)["availableTransports"]
    assert headers.get_all("Set-Cookie") == [
        "affinity=worker-1; Path=/; HttpOnly",
        "csrftoken=abc123; Path=/; SameSite=Lax",
    ]
    assert headers["X-Negotiated-For"] == "ep-dora"
    assert http(server, "POST", "/hubs/ep/async-hook/negotiate")[1]["X-Hook"] == "async"
    # A hook that tries to inject a header fails the negotiate without sending it.
    status, headers, body = http(server, "POST", "/hubs/ep/broken-hook/negotiate")
    assert (status, body) == (500, b"Internal Server Error")
    assert headers.get_all("Set-Cookie") is None
    # Refused negotiates are not hooked.
    status, headers, _ = http(server, "POST", "/hubs/ep/lp/negotiate")
    assert status == 401 and headers.get_all("Set-Cookie") is None


async def ws_records(ws: Any, until_type: int, timeout: float = 30) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            for part in str(await ws.recv()).split(RS):
                if part:
                    seen.append(json.loads(part))
                    if seen[-1].get("type") == until_type:
                        return seen


@pytest.mark.parametrize("how", ["token", "session"])
async def test_websocket_closed_when_its_authentication_expires(server: Server, how: str) -> None:
    """CLOSE_ON_AUTHENTICATION_EXPIRATION: a Close without an error, reconnect allowed."""
    user = login(server, f"ep-expiring-{how}", ttl=4)
    url = f"ws://127.0.0.1:{server.port}/hubs/ep/expiring"
    extra: dict[str, str] = {}
    if how == "token":
        url += f"?access_token={user['token']}"
    else:
        extra = {"Cookie": user["cookie"]}
    opened = time.time()
    async with websockets.connect(url, additional_headers=extra) as ws:
        await ws.send(HANDSHAKE.decode())
        assert await asyncio.wait_for(ws.recv(), 10) == "{}" + RS
        await ws.send('{"type":1,"invocationId":"1","target":"ConnectionInfo","arguments":[]}' + RS)
        records = await ws_records(ws, 7)
        closed = time.time()
        assert records[-1] == {"type": 7, "allowReconnect": True}
        completion = next(r for r in records if r.get("type") == 3)
        assert completion["result"]["user"] == user["id"]
    assert closed - opened >= 1.0  # not before the authentication expired


async def test_long_polling_closed_when_its_token_expires(server: Server) -> None:
    """The same over long polling: the Close arrives in a poll, then the id ends."""
    user = login(server, "ep-expiring-lp", ttl=5)
    token = negotiate(server, "/hubs/ep/expiring", bearer(user))["connectionToken"]
    url = f"/hubs/ep/expiring?id={token}"
    assert http(server, "GET", url, bearer(user))[0] == 200
    assert http(server, "POST", url, bearer(user), HANDSHAKE)[0] == 200
    received = b""
    deadline = time.monotonic() + 60
    while b'"type":7' not in received and time.monotonic() < deadline:
        # The token has expired by now for later polls: they are refused as any would be.
        status, _, body = http(server, "GET", url, bearer(user))
        if status != 200:
            break
        received += body
    assert b'{"type":7,"allowReconnect":true}\x1e' in received


def test_each_poll_renews_the_expiry_with_its_own_credentials(server: Server) -> None:
    """A poll with a fresh token moves the connection's expiry (ASP.NET Core reads each
    poll's authentication): it outlives the token it started with."""
    short = login(server, "ep-renewing", ttl=4)
    fresh = login(server, "ep-renewing", ttl=3600)  # the same user, a new token
    token = negotiate(server, "/hubs/ep/expiring", bearer(short))["connectionToken"]
    url = f"/hubs/ep/expiring?id={token}"
    assert http(server, "GET", url, bearer(short))[0] == 200
    assert http(server, "POST", url, bearer(short), HANDSHAKE)[0] == 200
    assert http(server, "GET", url, bearer(fresh))[2] == b"{}\x1e"
    time.sleep(7)  # the first token has expired, and the heartbeat has looked several times
    echo = b'{"type":1,"invocationId":"1","target":"Echo","arguments":["alive"]}\x1e'
    assert http(server, "POST", url, bearer(fresh), echo)[0] == 200
    status, _, body = http(server, "GET", url, bearer(fresh))
    assert (status, body) == (200, b'{"type":3,"invocationId":"1","result":"alive"}\x1e')
    assert http(server, "DELETE", url, bearer(fresh))[0] == 202


def test_a_resumed_stateful_connection_expires_with_the_resuming_credentials(
    server: Server,
) -> None:
    """Stateful reconnect with a fresh token moves the expiry, as a new request does."""
    hub = "/hubs/ep/stateful-expiring"
    short = login(server, "ep-resuming", ttl=4)
    fresh = login(server, "ep-resuming", ttl=3600)
    status, _, body = http(
        server,
        "POST",
        f"{hub}/negotiate?negotiateVersion=1&useStatefulReconnect=true",
        bearer(short),
    )
    assert status == 200 and json.loads(body)["useStatefulReconnect"] is True
    token = json.loads(body)["connectionToken"]
    old = RawWebSocket(server.port, f"{hub}?id={token}&access_token={short['token']}")
    old.send_text('{"protocol":"json","version":2}' + RS)
    assert old.recv_text() == "{}" + RS
    # The client resumes on a new socket with a fresh token (the old one looks alive).
    new = RawWebSocket(server.port, f"{hub}?id={token}&access_token={fresh['token']}")
    assert new.status == 101
    assert json.loads(new.recv_text().split(RS)[0]) == {"type": 9, "sequenceId": 1}
    new.send_text('{"type":9,"sequenceId":1}' + RS)
    time.sleep(7)  # the first token has expired, and the heartbeat has looked several times
    new.send_text('{"type":1,"invocationId":"1","target":"Echo","arguments":["alive"]}' + RS)
    seen = ""
    while '"invocationId":"1"' not in seen:
        seen += new.recv_text()
    assert '{"type":3,"invocationId":"1","result":"alive"}' in seen
    assert '"type":7' not in seen
    old.close()
    new.close()


def test_official_client_same_hub_on_two_urls(server: Server) -> None:
    """A WebSockets-only client and a long-polling one on two URLs of one hub: sends to
    all, to a group that spans both URLs, and to one connection reach the right clients."""
    out = run_node("endpoints.mjs", "twoUrls", server.url)
    assert out["wsTransport"] == "WebSockets"
    assert out["lpTransport"] == "LongPolling"
    assert out["ws"] == [["all", "from lp"], ["group", "to both"], ["client", "to ws"]]
    assert out["lp"] == [["all", "from lp"], ["group", "to both"]]
    assert "Status code '401'" in out["lpRefusedAnonymous"]


def test_official_client_is_closed_when_its_token_expires(server: Server) -> None:
    """onclose fires (without an error, as ASP.NET Core's Close has none); the expired token
    no longer starts a connection."""
    out = run_node("endpoints.mjs", "expiry", server.url)
    assert out["closedAfter"] >= 1.0
    assert out["error"] is None
    assert "Status code '401'" in out["restart"]
