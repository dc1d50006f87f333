"""No silent loss around backplane reconnects, end to end.

Two Daphne workers and gunicorn on Redis (the pub/sub layer, each worker reaching Redis
through its own fault proxy). Senders on both workers and on the WSGI site send to a group,
a user and everyone in a steady stream while Redis is killed and restarted, stalled, or one
worker's connections are cut. Every send acknowledged OK must reach both receivers (one on
each worker), in order per sender; the others got an error (and may or may not arrive).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.e2e.test_faults import RS, Client, RedisProcess
from tests.faultproxy import FaultProxy
from tests.servers import Server, daphne, gunicorn

pytestmark = pytest.mark.e2e

RUN_SECONDS = 7.0
FAULT_AT = 1.5
FAULT_FOR = 3.0


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def cluster(redis: RedisProcess, artifacts: Path, test_db: str) -> Iterator[dict[str, Any]]:
    proxies = {"a": FaultProxy(redis.port), "b": FaultProxy(redis.port)}
    settings = "tests.settings_redis"

    def env(proxy: FaultProxy | None) -> dict[str, str]:
        port = proxy.port if proxy is not None else redis.port
        return {"SIGNALR_TEST_DB": test_db, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}

    try:
        with (
            daphne(
                "tests.asgi:application", settings, artifacts, env(proxies["a"]), name="dl-a"
            ) as a,
            daphne(
                "tests.asgi:application", settings, artifacts, env(proxies["b"]), name="dl-b"
            ) as b,
            gunicorn("tests.wsgi:application", settings, artifacts, env(None)) as web,
        ):
            yield {"a": a, "b": b, "web": web, "proxies": proxies}
    finally:
        for proxy in proxies.values():
            proxy.close()


async def open_client(server: Server, token: str) -> Client:
    query = urllib.parse.urlencode({"access_token": token})
    ws = await websockets.connect(
        f"ws://127.0.0.1:{server.port}/hubs/test?{query}", ping_interval=None
    )
    await ws.send('{"protocol":"json","version":1}' + RS)
    assert await ws.recv() == "{}" + RS
    return Client(ws)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Ledger:
    """What each sender sent, and which of its sends were acknowledged OK."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[str, bool]]] = {}
        self.lock = threading.Lock()

    def record(self, sender: str, message: str, ok: bool) -> None:
        with self.lock:
            self.sent.setdefault(sender, []).append((message, ok))

    def acknowledged(self, sender: str) -> list[str]:
        return [m for m, ok in self.sent.get(sender, []) if ok]

    def failed(self) -> int:
        return sum(not ok for sends in self.sent.values() for _, ok in sends)


KINDS = ("group", "user", "all")


async def hub_sender(client: Client, name: str, ledger: Ledger, group: str, user: str) -> None:
    i = 0
    start = time.monotonic()
    while time.monotonic() - start < RUN_SECONDS:
        kind = KINDS[i % 3]
        message = f"{name}:{i}"
        if kind == "group":
            result = await client.invoke("SendToGroup", group, message, timeout=30)
        elif kind == "user":
            result = await client.invoke("SendToUser", user, message, timeout=30)
        else:
            result = await client.invoke("SendToAll", message, timeout=30)
        ledger.record(name, message, result.get("error") is None)
        i += 1
        await asyncio.sleep(0.05)


def wsgi_sender(base: str, ledger: Ledger, group: str, user: str) -> None:
    i = 0
    start = time.monotonic()
    while time.monotonic() - start < RUN_SECONDS:
        kind = KINDS[i % 3]
        message = f"web:{i}"
        query = {"target": kind, "message": message, "group": group, "user": user}
        status, _ = get(f"{base}/broadcast?{urllib.parse.urlencode(query)}")
        ledger.record("web", message, status == 200)
        i += 1
        time.sleep(0.05)


def received_from(client: Client, sender: str) -> list[str]:
    return [m for m in client.received if m.startswith(sender + ":")]


def in_order_subsequence(wanted: list[str], got: list[str]) -> list[str]:
    """The acknowledged messages missing from `got`, or out of order in it."""
    position = {m: i for i, m in enumerate(got)}
    missing = [m for m in wanted if m not in position]
    order = [position[m] for m in wanted if m in position]
    if order != sorted(order):
        return ["<out of order>", *missing]
    return missing


FAULTS = [*(f"restart-{n}" for n in range(5)), "stall-0", "stall-1", "cut-b-0", "cut-b-1"]


@pytest.mark.parametrize("fault", FAULTS)
async def test_acknowledged_sends_are_delivered(
    cluster: dict[str, Any], redis: RedisProcess, fault: str
) -> None:
    """Every send acknowledged OK during a backplane fault reaches every receiver, in order."""
    proxies: dict[str, FaultProxy] = cluster["proxies"]
    web = cluster["web"].url
    status, body = get(f"{web}/make-user?name=delivery")
    assert status == 200
    user = json.loads(body)
    group = f"dl-{fault}"
    receivers = {
        "a": await open_client(cluster["a"], user["token"]),
        "b": await open_client(cluster["b"], user["token"]),
    }
    senders = {
        "a": await open_client(cluster["a"], user["token"]),
        "b": await open_client(cluster["b"], user["token"]),
    }
    for client in receivers.values():
        assert (await client.invoke("Join", group, timeout=30)).get("error") is None
    for client in senders.values():  # senders are the user too: keep them out of the count
        client.received.clear()
    await asyncio.sleep(0.3)

    ledger = Ledger()
    loop = asyncio.get_running_loop()
    tasks = [
        asyncio.create_task(hub_sender(senders[w], f"hub-{w}", ledger, group, user["id"]))
        for w in ("a", "b")
    ]
    web_task = loop.run_in_executor(None, wsgi_sender, web, ledger, group, user["id"])
    await asyncio.sleep(FAULT_AT)
    if fault.startswith("restart"):
        redis.kill()
        await asyncio.sleep(FAULT_FOR)
        redis.start()
    elif fault.startswith("stall"):
        for proxy in proxies.values():
            proxy.stall()
        await asyncio.sleep(FAULT_FOR)
        for proxy in proxies.values():
            proxy.restore()
    else:
        proxies["b"].cut()
    await asyncio.gather(*tasks)
    await web_task

    problems: dict[str, list[str]] = {}
    deadline = time.monotonic() + 20
    while True:
        problems = {}
        for where, client in receivers.items():
            for sender in ("hub-a", "hub-b", "web"):
                missing = in_order_subsequence(
                    ledger.acknowledged(sender), received_from(client, sender)
                )
                if missing:
                    problems[f"{sender} -> receiver on {where}"] = missing[:8]
        if not problems or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    acknowledged = sum(len(ledger.acknowledged(s)) for s in ("hub-a", "hub-b", "web"))
    print(
        f"\n{fault}: {acknowledged} sends acknowledged, {ledger.failed()} failed, "
        f"problems: {problems or 'none'}"
    )
    assert not problems, "acknowledged sends were lost or reordered"
    assert acknowledged > 0
    if fault.startswith("restart"):
        assert ledger.failed(), "sends that need Redis must fail while it is gone"
    for client in (*receivers.values(), *senders.values()):
        assert client.closed is None
        await client.close()
