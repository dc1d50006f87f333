"""Two Daphne workers on Redis: a connection token is owned by one worker, and a forwarded
request is served only with the identity its first worker signed.

The official client with session and bearer auth through round-robin routing is in
`test_scaleout.py`; these tests use raw HTTP and WebSocket requests to try what a client
of the official library never does: reuse a token on the other worker, while its connection
is open and after it ended, and inject forwarded requests on the channel layer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.core import signing

from signalr_django.lifetime.names import hub_key
from signalr_django.transports.identity import SALT, sign_identity
from tests.faultproxy import FaultProxy
from tests.redis_server import redis_url
from tests.servers import Server, daphne

pytestmark = pytest.mark.e2e

RS = "\x1e"
HANDSHAKE = '{"protocol":"json","version":1}' + RS
# Forwarded requests name the endpoint: the hub's key and the route it is mapped at.
TEST_HUB = hub_key("tests.testapp.hubs.TestHub") + "@hubs/test"


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    with redis_url() as url:
        yield url


@pytest.fixture(scope="module")
def cluster(redis: str, artifacts: Path, test_db: str) -> Iterator[dict[str, Any]]:
    """Two workers; their cache (the connection registry) is behind a proxy we control."""
    host, port = redis.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    assert host == "127.0.0.1"
    proxy = FaultProxy(int(port))
    env = {
        "SIGNALR_TEST_DB": test_db,
        "REDIS_URL": redis,
        "SIGNALR_TEST_CACHE_URL": f"redis://127.0.0.1:{proxy.port}/1",
    }
    settings = "tests.settings_redis"
    try:
        with (
            daphne("tests.asgi:application", settings, artifacts, env, name="own-a") as a,
            daphne("tests.asgi:application", settings, artifacts, env, name="own-b") as b,
        ):
            yield {"a": a, "b": b, "proxy": proxy, "redis": redis}
    finally:
        proxy.close()


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return (
                response.status,
                response.read(),
                {k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()}


async def ahttp(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    return await asyncio.to_thread(http, method, url, body, headers)


async def negotiate(server: Server, headers: dict[str, str] | None = None) -> str:
    status, body, _ = await ahttp(
        "POST", f"{server.url}/hubs/test/negotiate?negotiateVersion=1", b"", headers
    )
    assert status == 200, body
    token: str = json.loads(body)["connectionToken"]
    return token


def ws_url(server: Server, token: str | None) -> str:
    query = f"?id={token}" if token else ""
    return f"ws://127.0.0.1:{server.port}/hubs/test{query}"


@contextlib.asynccontextmanager
async def ws_open(server: Server, token: str | None) -> AsyncIterator[Any]:
    async with websockets.connect(ws_url(server, token), ping_interval=None) as ws:
        await ws.send(HANDSHAKE)
        assert await asyncio.wait_for(ws.recv(), 15) == "{}" + RS
        yield ws


async def ws_refused(server: Server, token: str) -> bool:
    try:
        async with websockets.connect(ws_url(server, token), ping_interval=None):
            return False
    except websockets.InvalidStatus as exc:
        return bool(exc.response.status_code in (403, 503))


async def lp_start(server: Server, token: str) -> int:
    status, _, _ = await ahttp("GET", f"{server.url}/hubs/test?id={token}")
    return status


async def invoke(ws: Any, target: str, *args: Any) -> Any:
    await ws.send(
        json.dumps({"type": 1, "invocationId": "1", "target": target, "arguments": args}) + RS
    )
    while True:
        for record in str(await asyncio.wait_for(ws.recv(), 15)).split(RS):
            if record and json.loads(record).get("type") == 3:
                return json.loads(record).get("result")


async def test_a_websocket_token_is_refused_on_the_other_worker_while_open_and_after(
    cluster: dict[str, Any],
) -> None:
    a, b = cluster["a"], cluster["b"]
    token = await negotiate(b)  # negotiated on b; the WebSocket lands on a
    async with ws_open(a, token) as ws:
        assert await ws_refused(b, token)
        assert await ws_refused(a, token)
        # b named itself owner for SSE/long polling; it must not start the id a holds.
        status, body, _ = await ahttp("GET", f"{b.url}/hubs/test?id={token}")
        assert status == 404, body
        assert await invoke(ws, "Echo", "still mine") == "still mine"
    for server in (a, b):
        assert await ws_refused(server, token)
        status, _, _ = await ahttp("GET", f"{server.url}/hubs/test?id={token}")
        assert status in (204, 404)  # 204: the owner says the connection ended


async def test_a_long_polling_token_is_refused_elsewhere_while_open_and_after(
    cluster: dict[str, Any],
) -> None:
    a, b = cluster["a"], cluster["b"]
    token = await negotiate(a)
    assert await lp_start(a, token) == 200
    assert await ws_refused(b, token)
    assert await ws_refused(a, token)
    # The same client's requests through b are forwarded to a, which holds the connection.
    status, _, _ = await ahttp("POST", f"{b.url}/hubs/test?id={token}", HANDSHAKE.encode())
    assert status == 200
    status, _, _ = await ahttp("DELETE", f"{b.url}/hubs/test?id={token}")
    assert status == 202
    for server in (a, b):
        assert await ws_refused(server, token)
        status, _, _ = await ahttp("GET", f"{server.url}/hubs/test?id={token}")
        assert status == 404  # forwarded to the owner: ended by DELETE, the id is gone


async def test_each_negotiated_token_starts_once_across_transports_and_workers(
    cluster: dict[str, Any],
) -> None:
    """Race the four ways to start one token: exactly one wins."""
    a, b = cluster["a"], cluster["b"]
    for _ in range(5):
        token = await negotiate(a)

        async def websocket(server: Server, token: str = token) -> bool:
            try:
                async with ws_open(server, token):
                    await asyncio.sleep(0.5)
                    return True
            except (websockets.InvalidStatus, websockets.ConnectionClosed):
                return False

        async def poll(server: Server, token: str = token) -> bool:
            return await lp_start(server, token) == 200

        won = await asyncio.gather(websocket(a), websocket(b), poll(a), poll(b))
        assert sum(won) == 1, won


async def forwarded(
    cluster: dict[str, Any], owner: str, token: str, method: str, body: bytes, identity: Any
) -> int:
    """Inject a forwarded request on the owner's channel; the status it answers."""
    layer = RedisPubSubChannelLayer(hosts=[cluster["redis"]])
    try:
        reply_to = await layer.new_channel("test.")
        rid = uuid.uuid4().hex
        request = {
            "type": "signalr.http",
            "h": TEST_HUB,
            "i": rid,
            "o": reply_to,
            "m": method,
            "p": "/hubs/test",
            "q": f"id={token}".encode(),
            "hd": [],
            "c": None,
            "b": body,
        }
        if identity is not None:
            request["id"] = identity(rid) if callable(identity) else identity
        await layer.send(owner, request)
        while True:
            reply = await asyncio.wait_for(layer.receive(reply_to), 15)
            if reply.get("i") == rid and reply["m"]["type"] == "http.response.start":
                status: int = reply["m"]["status"]
                return status
    finally:
        await layer.flush()


async def test_forwarded_requests_need_a_valid_signed_identity(cluster: dict[str, Any]) -> None:
    a = cluster["a"]
    token = await negotiate(a)
    owner_part = token.split(".")[3]
    owner = base64.urlsafe_b64decode(owner_part + "=" * (-len(owner_part) % 4)).decode()
    assert await lp_start(a, token) == 200
    handshake = HANDSHAKE.encode()
    anonymous = {"k": "a"}

    def signed(payload: dict[str, Any], key: str | None = None) -> Any:
        def make(rid: str) -> str:
            data = {**payload, "r": rid, "h": TEST_HUB}
            if key is None:
                return signing.dumps(data, salt=SALT, compress=True)
            return signing.dumps(data, key=key, salt=SALT, compress=True)

        return make

    refused = {
        "unsigned": None,
        "garbage": "not-an-identity",
        "forged key": signed(anonymous, key="not-the-secret-key-0123456789"),
        "other request": sign_identity(None, "another-request-id", TEST_HUB),
        "other salt": lambda rid: signing.dumps({**anonymous, "r": rid, "h": TEST_HUB}),
    }
    for name, identity in refused.items():
        status = await forwarded(cluster, owner, token, "POST", handshake, identity)
        assert status == 401, name
    # Correctly signed, but for another user than the token's: the token does not verify.
    other_user = signed({"k": "t", "d": {"u": "999", "n": "mallory"}})
    assert await forwarded(cluster, owner, token, "POST", handshake, other_user) == 404
    # The control: a valid identity (the anonymous user the token is bound to) is served.
    assert await forwarded(cluster, owner, token, "POST", handshake, signed(anonymous)) == 200
    assert (await ahttp("DELETE", f"{a.url}/hubs/test?id={token}"))[0] == 202
    assert "Refused a forwarded request without a valid identity" in a.output()


async def test_an_unreachable_registry_refuses_new_tokens_clearly(
    cluster: dict[str, Any],
) -> None:
    """Cache stalled: starts with a token get 503 + Retry-After (Daphne: 403 for upgrades)
    within BACKPLANE_TIMEOUT; open connections and token-less WebSockets carry on."""
    a, b = cluster["a"], cluster["b"]
    proxy: FaultProxy = cluster["proxy"]
    async with ws_open(a, await negotiate(a)) as open_ws:
        before_lp = await negotiate(b)
        ws_token = await negotiate(a)
        proxy.stall()
        try:
            started = time.monotonic()
            status, body, headers = await ahttp("GET", f"{b.url}/hubs/test?id={before_lp}")
            took = time.monotonic() - started
            assert status == 503, body
            assert b"registry is unreachable" in body
            assert headers.get("retry-after") == "5"
            assert took < 2.0 + 5.0  # BACKPLANE_TIMEOUT (2 s in these settings), loosely
            assert await ws_refused(a, ws_token)
            assert await invoke(open_ws, "Echo", "open ones carry on") == "open ones carry on"
            async with ws_open(b, None) as fresh:  # skipNegotiation: a server-made id
                assert await invoke(fresh, "Echo", "no token") == "no token"
        finally:
            proxy.restore()
    assert any(
        "Connection registry (cache) unreachable" in line for line in b.output().splitlines()
    )
    deadline = time.monotonic() + 30
    while True:  # the cache answers again: new connections start
        token = await negotiate(b)
        if await lp_start(b, token) == 200:
            break
        assert time.monotonic() < deadline, "connections did not start after the cache returned"
        await asyncio.sleep(0.5)
