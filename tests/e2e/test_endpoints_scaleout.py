"""Two URLs of one hub across two workers without sticky sessions: requests that reach the
wrong worker are forwarded to the right endpoint of the owner, and sends span both URLs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.redis_server import redis_url
from tests.servers import Server, daphne

from .test_endpoints import HANDSHAKE, RS, http, login

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(artifacts: Path, test_db: str) -> Iterator[dict[str, Server]]:
    with redis_url() as redis:
        env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis}
        settings = "tests.settings_redis"
        with (
            daphne("tests.asgi:application", settings, artifacts, env, name="ep-a") as a,
            daphne("tests.asgi:application", settings, artifacts, env, name="ep-b") as b,
        ):
            yield {"a": a, "b": b}


def call(target: str, *args: Any) -> bytes:
    message = {"type": 1, "invocationId": target, "target": target, "arguments": list(args)}
    return (json.dumps(message) + RS).encode()


def poll_until(server: Server, url: str, headers: dict[str, str], want: str) -> list[Any]:
    """Poll (through `server`) until a record of `want` arrives; all records seen."""
    seen: list[Any] = []
    for _ in range(20):
        status, _, body = http(server, "GET", url, headers)
        assert status == 200, body
        seen += [json.loads(r) for r in body.decode().split(RS) if r]
        if any(want in json.dumps(r) for r in seen):
            return seen
    raise AssertionError(f"{want} never arrived: {seen}")


async def test_forwarding_reaches_the_right_endpoint_and_sends_span_both(
    cluster: dict[str, Server],
) -> None:
    a, b = cluster["a"], cluster["b"]
    user = login(a, "ep-scaleout")
    auth = {"Authorization": f"Bearer {user['token']}"}
    status, _, body = http(a, "POST", "/hubs/ep/lp/negotiate?negotiateVersion=1", auth)
    assert status == 200
    token = json.loads(body)["connectionToken"]
    url = f"/hubs/ep/lp?id={token}"
    # Without the credentials, b answers 401 itself before looking anything up.
    assert http(b, "GET", url)[0] == 401
    # Every request goes through b; b forwards each to a's /hubs/ep/lp endpoint.
    assert http(b, "GET", url, auth)[0] == 200
    assert http(b, "POST", url, auth, HANDSHAKE)[0] == 200
    assert http(b, "GET", url, auth)[2] == b"{}\x1e"
    assert http(b, "POST", url, auth, call("ConnectionInfo"))[0] == 200
    info = poll_until(b, url, auth, "ConnectionInfo")[-1]["result"]
    assert (info["transport"], info["user"]) == ("LongPolling", user["id"])
    # A WebSockets-only client of the same hub on the other URL, on worker b.
    async with websockets.connect(f"ws://127.0.0.1:{b.port}/hubs/ep/ws") as ws:
        await ws.send(HANDSHAKE.decode())
        assert await asyncio.wait_for(ws.recv(), 15) == "{}" + RS
        await ws.send(call("Join", "spanning").decode())
        await ws.send(call("SendToAll", "hello both").decode())
        await ws.send(call("SendToGroup", "spanning", "to the group").decode())
        got: list[Any] = []
        async with asyncio.timeout(30):
            while len([r for r in got if r.get("target") == "Receive"]) < 2:
                got += [json.loads(r) for r in str(await ws.recv()).split(RS) if r]
        assert [r["arguments"] for r in got if r.get("target") == "Receive"] == [
            ["all", "hello both"],
            ["group", "to the group"],
        ]
        seen = poll_until(b, url, auth, "hello both")
        assert ["all", "hello both"] in [r.get("arguments") for r in seen]
    assert http(b, "DELETE", url, auth)[0] == 202
    assert http(b, "GET", url, auth)[:3:2] == (404, b"No Connection with that ID")
