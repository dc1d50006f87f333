"""Redis and worker faults with two Daphne workers: what is lost, how fast things recover.

Each test prints its figures (messages lost while Redis was away, time to recover after it
returned, time a WSGI-side send takes to fail) and asserts the promises of the README's
"Guarantees and limits": sends fail fast, local deliveries continue, delivery resumes by
itself, no connection is closed because Redis blinked, and a dead worker hurts nobody else.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.faultproxy import FaultProxy
from tests.servers import Server, daphne, free_port, gunicorn, wait_for_port

pytestmark = pytest.mark.e2e

RS = "\x1e"


class RedisProcess:
    """A private redis-server the test can kill and restart on the same port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (the README's test command installs it)")
        self.binary = binary
        self.port = free_port()
        self.folder = tempfile.mkdtemp()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def cluster(redis: RedisProcess, artifacts: Path, test_db: str) -> Iterator[dict[str, Server]]:
    env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis.url}
    settings = "tests.settings_redis"
    with (
        daphne("tests.asgi:application", settings, artifacts, env, name="fault-a") as a,
        daphne("tests.asgi:application", settings, artifacts, env, name="fault-b") as b,
        gunicorn("tests.wsgi:application", settings, artifacts, env) as web,
    ):
        yield {"a": a, "b": b, "web": web}


class Client:
    """A JSON-protocol client recording every `Receive` it gets."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.received: list[str] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.closed: str | None = None
        self._next = 0
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, server: Server) -> Client:
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/hubs/test", ping_interval=None)
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await ws.recv() == "{}" + RS
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                for record in frame.split(RS):
                    if not record:
                        continue
                    message = json.loads(record)
                    if message.get("type") == 1 and message.get("target") == "Receive":
                        self.received.append(message["arguments"][1])
                    elif message.get("type") == 3:
                        self.results[message["invocationId"]] = message
                    elif message.get("type") == 7:
                        self.closed = json.dumps(message)
        except websockets.ConnectionClosed:
            self.closed = self.closed or "socket closed"

    async def invoke(self, target: str, *args: Any, timeout: float = 15) -> dict[str, Any]:
        self._next += 1
        iid = str(self._next)
        await self.ws.send(
            json.dumps({"type": 1, "invocationId": iid, "target": target, "arguments": list(args)})
            + RS
        )
        deadline = time.monotonic() + timeout
        while iid not in self.results:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no completion for {target}")
            await asyncio.sleep(0.005)
        return self.results.pop(iid)

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()


def http_get(url: str) -> tuple[int, float]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.monotonic() - start


async def test_redis_killed_and_restarted_mid_broadcast(
    cluster: dict[str, Server], redis: RedisProcess
) -> None:
    """Sends fail fast while Redis is gone, local delivery goes on, and it all comes back."""
    sender = await Client.open(cluster["a"])
    local = await Client.open(cluster["a"])
    remote = await Client.open(cluster["b"])
    for client in (local, remote):
        assert (await client.invoke("Join", "faults")).get("error") is None
    await asyncio.sleep(0.2)

    sent: list[tuple[str, float, bool, float]] = []  # (message, sent at, ok, took)
    killed_at = restarted_at = 0.0
    wsgi_status, wsgi_took = 0, 0.0
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < 9:
        now = time.monotonic() - start
        if not killed_at and now > 1.5:
            redis.kill()
            killed_at = time.monotonic()
            loop = asyncio.get_running_loop()
            wsgi = loop.run_in_executor(
                None, http_get, f"{cluster['web'].url}/broadcast?message=during-outage"
            )
        if killed_at and not restarted_at and time.monotonic() - killed_at > 3:
            wsgi_status, wsgi_took = await wsgi
            redis.start()
            restarted_at = time.monotonic()
        message = f"m{i}"
        before = time.monotonic()
        result = await sender.invoke("SendToGroup", "faults", message)
        sent.append((message, before, result.get("error") is None, time.monotonic() - before))
        i += 1
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)

    failed = [m for m in sent if not m[2]]
    fail_time = max((m[3] for m in failed), default=0.0)
    local_missing = [m for m, *_ in sent if m not in local.received]
    remote_missing = [m for m, *_ in sent if m not in remote.received]
    after = [m for m, at, ok, _ in sent if at > restarted_at]
    first_back = next((m for m in after if m in remote.received), None)
    recovered_after = (
        next(at for m, at, *_ in sent if m == first_back) - restarted_at if first_back else None
    )
    print(
        f"\nredis outage {restarted_at - killed_at:.1f} s: {len(sent)} sends, "
        f"{len(failed)} failed (slowest failure {fail_time:.2f} s), "
        f"{len(remote_missing)} lost on the other worker, {len(local_missing)} lost locally; "
        f"delivery resumed {recovered_after} s "
        f"after Redis returned; WSGI send during outage -> {wsgi_status} in {wsgi_took:.2f} s"
    )
    assert not local_missing, "local deliveries must not depend on Redis"
    assert failed, "sends that need Redis must fail while it is gone"
    assert fail_time < 2.0 + 1.5  # BACKPLANE_TIMEOUT is 2 s in the test settings
    assert wsgi_status == 503 and wsgi_took < 2.0 + 2.0
    assert recovered_after is not None and recovered_after < 5.0
    lost_after_recovery = [m for m in after if m not in remote.received]
    assert lost_after_recovery == [] or all(
        at < restarted_at + 5 for m, at, *_ in sent if m in lost_after_recovery
    )
    for client in (sender, local, remote):
        assert client.closed is None, "no connection may close because Redis blinked"
        await client.close()


async def test_a_killed_worker_hurts_nobody_else(
    cluster: dict[str, Server], artifacts: Path, test_db: str, redis: RedisProcess
) -> None:
    """SIGKILL one of three workers under load: the others' clients see nothing."""
    env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis.url}
    with daphne(
        "tests.asgi:application", "tests.settings_redis", artifacts, env, name="doomed"
    ) as doomed:
        survivors = [await Client.open(cluster["a"]), await Client.open(cluster["b"])]
        victims = [await Client.open(doomed) for _ in range(3)]
        for client in (*survivors, *victims):
            await client.invoke("Join", "kill")
        sender = await Client.open(cluster["a"])
        for i in range(20):
            await sender.invoke("SendToGroup", "kill", f"before{i}")
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait(5)
        killed = time.monotonic()
        for i in range(20):
            result = await sender.invoke("SendToGroup", "kill", f"after{i}")
            assert result.get("error") is None
        await asyncio.sleep(0.5)
        took = time.monotonic() - killed
        for client in survivors:
            assert client.closed is None
            assert [m for m in client.received if m.startswith("after")] == [
                f"after{i}" for i in range(20)
            ]
        assert all(v.closed for v in victims)
        print(
            f"\nworker killed: survivors got 20/20 messages sent after it in {took:.2f} s, "
            f"0 of their connections closed"
        )
        for client in (*survivors, sender):
            await client.close()


@pytest.fixture(scope="module")
def stalled(redis: RedisProcess, artifacts: Path, test_db: str) -> Iterator[dict[str, Any]]:
    """Two workers and gunicorn reaching Redis through a proxy the test controls."""
    proxy = FaultProxy(redis.port)
    url = f"redis://127.0.0.1:{proxy.port}/0"
    env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": url}
    settings = "tests.settings_redis"
    try:
        with (
            daphne("tests.asgi:application", settings, artifacts, env, name="stall-a") as a,
            daphne("tests.asgi:application", settings, artifacts, env, name="stall-b") as b,
            gunicorn("tests.wsgi:application", settings, artifacts, env) as web,
        ):
            yield {"a": a, "b": b, "web": web, "proxy": proxy}
    finally:
        proxy.close()


async def test_redis_unreachable_sends_fail_fast_and_recover(stalled: dict[str, Any]) -> None:
    """Redis hangs (a stalled network): sends fail within BACKPLANE_TIMEOUT, then recover."""
    proxy: FaultProxy = stalled["proxy"]
    sender = await Client.open(stalled["a"])
    local = await Client.open(stalled["a"])
    remote = await Client.open(stalled["b"])
    for client in (local, remote):
        await client.invoke("Join", "stall")
    assert (await sender.invoke("SendToGroup", "stall", "before")).get("error") is None
    await asyncio.sleep(0.3)
    proxy.stall()
    start = time.monotonic()
    result = await sender.invoke("SendToGroup", "stall", "during")
    hub_fail = time.monotonic() - start
    status, wsgi_fail = await asyncio.get_running_loop().run_in_executor(
        None, http_get, f"{stalled['web'].url}/broadcast?message=stalled"
    )
    echo = await sender.invoke("Echo", "local work goes on")
    proxy.restore()
    restored = time.monotonic()
    back_after = None
    for i in range(100):
        marker = f"after{i}"
        if (await sender.invoke("SendToGroup", "stall", marker)).get("error") is None:
            await asyncio.sleep(0.2)
            if marker in remote.received:
                back_after = time.monotonic() - restored
                break
        await asyncio.sleep(0.1)
    print(
        f"\nredis stalled: hub send failed after {hub_fail:.2f} s, WSGI send -> {status} after "
        f"{wsgi_fail:.2f} s; delivery back {back_after} s after the network recovered"
    )
    assert result.get("error", "").startswith("An unexpected error occurred invoking")
    assert hub_fail < 2.0 + 1.5
    assert status == 503 and wsgi_fail < 2.0 + 2.5
    assert echo.get("result") == "local work goes on"
    assert "during" in local.received, "local delivery must not wait for Redis"
    assert back_after is not None and back_after < 5.0
    for client in (sender, local, remote):
        assert client.closed is None
        await client.close()
