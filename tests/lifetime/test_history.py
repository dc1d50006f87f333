"""The backplane history (lifetime/history.py) against a real Redis.

Pins what it relies on in channels_redis and redis-py (the pub/sub layer's shard, its
msgpack serializer, the group channel names, the pub/sub connection's connect callbacks),
and checks the promise itself: a Redis restarted under two backplanes while one of them
keeps sending loses none of the sends acknowledged to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer

from signalr_django.exceptions import BackplaneError
from signalr_django.lifetime import history as history_module
from signalr_django.lifetime.backplane import Backplane
from signalr_django.lifetime.history import RedisHistory, attach, id_after
from signalr_django.lifetime.manager import HubLifetimeManager
from tests.lifetime.test_conformance import Client
from tests.servers import free_port, wait_for_port


class RestartableRedis:
    """A private redis-server without persistence, killed and restarted on one port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
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
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis() -> Iterator[RestartableRedis]:
    server = RestartableRedis()
    server.start()
    yield server
    server.kill()


def layer(url: str, **kwargs: Any) -> RedisPubSubChannelLayer:
    return RedisPubSubChannelLayer(hosts=[url], prefix=f"h{uuid.uuid4().hex[:6]}", **kwargs)


@pytest.fixture
async def pair(redis: RestartableRedis) -> AsyncIterator[list[HubLifetimeManager]]:
    prefix = f"h{uuid.uuid4().hex[:6]}"
    managers = []
    for _ in range(2):
        backplane = Backplane(
            RedisPubSubChannelLayer(hosts=[redis.url], prefix=prefix), request_timeout=1.0
        )
        backplane.history = attach(backplane.layer, 1000)
        assert backplane.history is not None
        manager = HubLifetimeManager("tests.HistoryHub", backplane)
        await manager.start()
        managers.append(manager)
    yield managers
    for manager in managers:
        assert manager.backplane is not None
        await manager.backplane.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(manager.backplane.layer.flush(), 5)


async def eventually(check: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


def test_attach_only_to_the_plain_pubsub_layer(redis: RestartableRedis) -> None:
    """History needs the pub/sub layer on one Redis with the plain msgpack serializer."""
    from channels_redis.core import RedisChannelLayer

    assert isinstance(attach(layer(redis.url), 100), RedisHistory)
    assert attach(layer(redis.url), 0) is None
    assert attach(RedisChannelLayer(hosts=[redis.url]), 100) is None
    assert attach(layer(redis.url, serializer_format="json"), 100) is None
    assert attach(layer(redis.url, symmetric_encryption_keys=["k"]), 100) is None
    sharded = RedisPubSubChannelLayer(hosts=[redis.url, redis.url])
    assert attach(sharded, 100) is None


def test_stream_ids_compare_numerically() -> None:
    """Ids order by milliseconds, then sequence, as numbers."""
    assert id_after("10-0", "9-5")
    assert id_after("10-10", "10-9")
    assert not id_after("10-1", "10-1")
    assert id_after("1-0", None)


async def test_publish_stamps_the_id_and_keeps_the_message(redis: RestartableRedis) -> None:
    """A layer subscriber gets the message with its stream id; the stream keeps it."""
    receiver, sender = layer(redis.url), None
    sender = RedisPubSubChannelLayer(hosts=[redis.url], prefix=receiver._get_layer().prefix)
    channel = await receiver.new_channel()
    await receiver.group_add("g", channel)
    history = attach(sender, 100)
    assert history is not None
    message = {"type": "signalr.send", "h": "hub", "p": {"json": "x", "messagepack": b"\x00\xff"}}
    sid = await history.publish("hub", history.group_channel("g"), dict(message))
    got = await asyncio.wait_for(receiver.receive(channel), 5)
    assert got == {**message, "s": sid}
    entries, trimmed = await history.read("hub", "0-0", "99999999999999-0")
    assert entries == [(sid, message)] and not trimmed
    await receiver.flush()
    await sender.flush()


async def test_trimmed_history_is_reported(redis: RestartableRedis) -> None:
    """A reader whose last id was trimmed away learns that sends were lost."""
    sender = layer(redis.url)
    history = RedisHistory(sender, 1)
    first = await history.publish("hub", "nobody", {"type": "signalr.send", "n": 0})
    for i in range(300):  # MAXLEN ~ trims whole nodes of 100 entries
        last = await history.publish("hub", "nobody", {"type": "signalr.send", "n": i})
    _, trimmed = await history.read("hub", first, last)
    assert trimmed
    _, trimmed = await history.read("hub", last, "99999999999999-0")
    assert not trimmed
    await sender.flush()


async def test_reconnect_callback_fires(redis: RestartableRedis) -> None:
    """redis-py calls the watcher after the subscriber connection reconnects."""
    receiver = layer(redis.url)
    history = attach(receiver, 100)
    assert history is not None
    await receiver.new_channel()

    class Watcher:
        calls = 0

        def on_connect(self, connection: Any) -> None:
            self.calls += 1

    watcher = Watcher()
    assert history.watch(watcher.on_connect)
    redis.kill()
    redis.start()
    await eventually(lambda: _at_least(watcher.calls, 1))
    await receiver.flush()


def _at_least(value: int, minimum: int) -> None:
    assert value >= minimum


async def test_redis_restart_loses_no_acknowledged_send(
    pair: list[HubLifetimeManager], redis: RestartableRedis
) -> None:
    """Sends acknowledged during and after a Redis restart all reach the other worker."""
    sender_side, receiver_side = pair
    member = Client("member")
    everyone = Client("everyone", user="u1")
    await receiver_side.on_connected(member.connection)
    await receiver_side.on_connected(everyone.connection)
    await receiver_side.add_to_group("member", "room")
    await asyncio.sleep(0.3)
    history_module.counters["recovered"] = 0

    acknowledged: list[str] = []
    failed = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    i = 0
    restarted = False
    last_failure = 0.0
    while loop.time() - start < 6.0:
        if not restarted and loop.time() - start > 1.0:
            redis.kill()
            await asyncio.sleep(1.0)
            redis.start()
            restarted = True
        for kind in ("group", "user", "all"):
            text = f"{kind}{i}"
            try:
                if kind == "group":
                    await sender_side.send_group("room", "M", [text])
                elif kind == "user":
                    await sender_side.send_user("u1", "M", [text])
                else:
                    await sender_side.send_all("M", [text])
                acknowledged.append(text)
            except BackplaneError:
                failed += 1
                last_failure = loop.time()
        i += 1
        await asyncio.sleep(0.02)

    def delivered(client: Client, kinds: tuple[str, ...]) -> list[str]:
        return [a[0] for a in client.messages() if a[0].rstrip("0123456789") in kinds]

    want_member = [t for t in acknowledged if t.rstrip("0123456789") in ("group", "all")]
    want_everyone = [t for t in acknowledged if t.rstrip("0123456789") in ("user", "all")]
    await eventually(lambda: _same(delivered(member, ("group", "all")), want_member))
    await eventually(lambda: _same(delivered(everyone, ("user", "all")), want_everyone))
    print(
        f"\n{len(acknowledged)} sends acknowledged, {failed} failed, "
        f"{history_module.counters['recovered']} recovered from the history"
    )
    assert failed, "sends must fail while Redis is gone"
    assert loop.time() - last_failure > 1.0, "sends must succeed again once Redis is back"


def _same(got: list[str], want: list[str]) -> None:
    assert got == want, json.dumps({"missing": sorted(set(want) - set(got))[:10]})


async def test_long_stream_ids_are_spliced_as_str8(redis: RestartableRedis) -> None:
    """An id over 31 characters still reaches subscribers intact."""
    receiver = layer(redis.url)
    sender = RedisPubSubChannelLayer(hosts=[redis.url], prefix=receiver._get_layer().prefix)
    channel = await receiver.new_channel()
    history = attach(sender, 100)
    assert history is not None
    # A last id far in the future makes Redis number the next entry after it.
    await history._shard()._redis.xadd(
        history.key("hub"), {"m": b"x"}, id="99999999999999-999999999999999999"
    )
    sid = await history.publish("hub", channel, {"type": "signalr.send", "h": "hub"})
    assert len(sid) > 31
    got = await asyncio.wait_for(receiver.receive(channel), 5)
    assert got == {"type": "signalr.send", "h": "hub", "s": sid}
    await receiver.flush()
    await sender.flush()
