"""Lifetime-manager conformance: the same behaviour on every backend.

Two managers stand for two worker processes. They share a backplane on the in-memory
channel layer, on Redis pub/sub, or on the classic Redis layer (each "worker" with its own
layer instance, as separate processes would have), and every addressing mode must reach the
same connections whichever worker holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from signalr_django.conf import hub_options
from signalr_django.core.connection import HubConnection
from signalr_django.core.results import ClientResultError, ConnectionGoneError
from signalr_django.exceptions import ConnectionNotFoundError
from signalr_django.lifetime.backplane import Backplane
from signalr_django.lifetime.history import attach
from signalr_django.lifetime.manager import HubLifetimeManager
from signalr_django.protocol import Completion, JsonHubProtocol
from tests.redis_server import redis_url

BACKENDS = ["in-memory layer", "redis pub/sub", "redis pub/sub + history", "redis classic"]


class ConformanceHub:
    options: dict[str, Any] = {}


class Client:
    """A connection whose writes are collected (JSON protocol)."""

    def __init__(self, connection_id: str, user: str | None = None) -> None:
        self.received: list[Any] = []

        async def write(payload: Any) -> None:
            for record in payload.split("\x1e"):
                if record:
                    self.received.append(json.loads(record))

        self.connection = HubConnection(
            connection_id,
            ConformanceHub,
            hub_options(ConformanceHub),
            JsonHubProtocol(),
            {},
            "WebSockets",
            write,
            None,
            user,
        )

    def messages(self) -> list[list[Any]]:
        return [m["arguments"] for m in self.received if m.get("type") == 1]


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    with redis_url() as url:
        yield url


def make_layer(backend: str, redis: str, shared: list[Any]) -> Any:
    if backend == "in-memory layer":
        if not shared:
            from channels.layers import InMemoryChannelLayer

            shared.append(InMemoryChannelLayer())
        return shared[0]
    # A prefix per test keeps tests apart without flushing Redis between them.
    prefix = shared[0] if shared else f"conformance{uuid.uuid4().hex[:8]}"
    if not shared:
        shared.append(prefix)
    if backend.startswith("redis pub/sub"):
        from channels_redis.pubsub import RedisPubSubChannelLayer

        return RedisPubSubChannelLayer(hosts=[redis], prefix=prefix)
    from channels_redis.core import RedisChannelLayer

    # redis-py 8 reads with a 5 s socket timeout by default, as long as the classic layer's
    # blocking pop: give the socket more time (see the signalr.W005 check).
    return RedisChannelLayer(hosts=[{"address": redis, "socket_timeout": 10}], prefix=prefix)


@pytest.fixture(params=BACKENDS)
async def workers(
    request: pytest.FixtureRequest, redis: str
) -> AsyncIterator[tuple[HubLifetimeManager, HubLifetimeManager]]:
    shared: list[Any] = []
    backplanes = [
        Backplane(make_layer(request.param, redis, shared), request_timeout=1.0) for _ in range(2)
    ]
    if request.param.endswith("history"):
        for backplane in backplanes:
            backplane.history = attach(backplane.layer, 1000)
            assert backplane.history is not None
    managers = (
        HubLifetimeManager("tests.ConformanceHub", backplanes[0]),
        HubLifetimeManager("tests.ConformanceHub", backplanes[1]),
    )
    for manager in managers:
        await manager.start()
    yield managers
    for backplane in backplanes:
        await backplane.stop()
        close = vars(backplane.layer).get("close_pools") or getattr(
            type(backplane.layer), "close_pools", None
        )
        if close is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(backplane.layer.close_pools(), 5)


async def connect(manager: HubLifetimeManager, cid: str, user: str | None = None) -> Client:
    client = Client(cid, user)
    await manager.on_connected(client.connection)
    return client


async def eventually(check: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.02)


async def test_all_and_all_except(workers: tuple[HubLifetimeManager, HubLifetimeManager]) -> None:
    """`all` reaches connections on both workers, minus the excluded ids."""
    one, two = workers
    a, b, c = await connect(one, "a"), await connect(two, "b"), await connect(two, "c")
    await one.send_all("M", [1])
    await two.send_all("M", [2], exclude=["a", "c"])
    await eventually(lambda: _expect([a, b, c], [[[1]], [[1], [2]], [[1]]]))
    await asyncio.sleep(0.1)
    _expect([a, b, c], [[[1]], [[1], [2]], [[1]]])


async def test_single_and_several_connections(
    workers: tuple[HubLifetimeManager, HubLifetimeManager],
) -> None:
    """`client` and `clients` find connections on the other worker."""
    one, two = workers
    a, b = await connect(one, "a"), await connect(two, "b")
    await one.send_connection("b", "M", ["to b"])
    await two.send_connections(["a", "b", "missing"], "M", ["both"])
    await eventually(lambda: _expect([a, b], [[["both"]], [["to b"], ["both"]]]))


async def test_groups_across_workers(
    workers: tuple[HubLifetimeManager, HubLifetimeManager],
) -> None:
    """Membership changed from the other worker; sends and exclusions from either side."""
    one, two = workers
    a, b, c = await connect(one, "a"), await connect(two, "b"), await connect(two, "c")
    await one.add_to_group("a", "room")
    await one.add_to_group("b", "room")  # b lives on worker two: a remote change
    await two.send_group("room", "M", ["g1"])
    await one.send_group("room", "M", ["g2"], exclude=["b"])
    await two.send_groups(["room", "empty"], "M", ["g3"])
    await eventually(lambda: _expect([a, b, c], [[["g1"], ["g2"], ["g3"]], [["g1"], ["g3"]], []]))
    await one.remove_from_group("b", "room")  # remote removal
    await one.send_group("room", "M", ["g4"])
    await eventually(
        lambda: _expect([a, b, c], [[["g1"], ["g2"], ["g3"], ["g4"]], [["g1"], ["g3"]], []])
    )
    await asyncio.sleep(0.1)
    assert sorted(map(repr, b.messages())) == sorted(map(repr, [["g1"], ["g3"]]))


async def test_group_names_are_exact(
    workers: tuple[HubLifetimeManager, HubLifetimeManager],
) -> None:
    """Case, Unicode and length are preserved; `Room` is not `room`."""
    one, two = workers
    a, b = await connect(one, "a"), await connect(two, "b")
    long_name = "ж" * 500 + " 🎉 / ! ."
    await one.add_to_group("a", long_name)
    await two.add_to_group("b", "Room")
    await two.send_group(long_name, "M", ["long"])
    await one.send_group("room", "M", ["lower"])
    await one.send_group("Room", "M", ["upper"])
    await eventually(lambda: _expect([a, b], [[["long"]], [["upper"]]]))


async def test_users_across_workers(workers: tuple[HubLifetimeManager, HubLifetimeManager]) -> None:
    """Every connection of a user, wherever it is."""
    one, two = workers
    a1, a2 = await connect(one, "a1", "alice"), await connect(two, "a2", "alice")
    b = await connect(two, "b", "bob")
    await one.send_user("alice", "M", ["hi alice"])
    await two.send_users(["alice", "bob"], "M", ["hi all"])
    await eventually(
        lambda: _expect(
            [a1, a2, b], [[["hi alice"], ["hi all"]], [["hi alice"], ["hi all"]], [["hi all"]]]
        )
    )


async def test_disconnect_leaves_groups(
    workers: tuple[HubLifetimeManager, HubLifetimeManager],
) -> None:
    """After a disconnect no message reaches the connection, and others are unaffected."""
    one, two = workers
    a, b = await connect(one, "a"), await connect(two, "b")
    await one.add_to_group("a", "room")
    await two.add_to_group("b", "room")
    await two.on_disconnected(b.connection)
    await one.send_group("room", "M", ["after"])
    await one.send_connection("b", "M", ["direct"])
    await eventually(lambda: _expect([a], [[["after"]]]))
    await asyncio.sleep(0.2)
    assert b.messages() == []


async def test_unknown_remote_connection(
    workers: tuple[HubLifetimeManager, HubLifetimeManager],
) -> None:
    """A group change for a connection no worker holds fails after the backplane timeout."""
    one, _ = workers
    with pytest.raises(ConnectionNotFoundError, match="No worker acknowledged"):
        await one.add_to_group("nobody", "room")
    with pytest.raises(ConnectionGoneError, match="does not exist"):
        await one.invoke_connection("nobody", "M", [], 1.0)


async def test_client_results_across_workers(
    workers: tuple[HubLifetimeManager, HubLifetimeManager],
) -> None:
    """The awaiting hub is on one worker, the answering client on the other."""
    one, two = workers
    b = await connect(two, "b")

    async def answer(result: Any = None, error: str | None = None) -> None:
        await eventually(lambda: _has_invocation(b))
        invocation = next(m for m in b.received if m.get("type") == 1 and "invocationId" in m)
        b.received.remove(invocation)
        pending = b.connection.pending_results
        assert pending is not None
        completion = Completion(invocation["invocationId"], error)
        if error is None:
            completion.result = result
        pending.resolve(completion.invocation_id, completion.error, result)

    responder = asyncio.create_task(answer({"ok": [1, 2]}))
    assert await one.invoke_connection("b", "GetValue", ["q"], 3.0) == {"ok": [1, 2]}
    await responder
    responder = asyncio.create_task(answer(error="no way"))
    with pytest.raises(ClientResultError, match="no way"):
        await one.invoke_connection("b", "GetValue", [], 3.0)
    await responder


def _has_invocation(client: Client) -> None:
    assert any(m.get("type") == 1 and "invocationId" in m for m in client.received)


def _expect(clients: list[Client], expected: list[list[list[Any]]]) -> None:
    # Messages from different senders are not ordered relative to each other (a local
    # delivery overtakes one that crossed Redis); compare each connection's multiset.
    assert [sorted(map(repr, c.messages())) for c in clients] == [
        sorted(map(repr, e)) for e in expected
    ]


async def test_one_senders_messages_arrive_in_order(
    workers: tuple[HubLifetimeManager, HubLifetimeManager],
) -> None:
    """Messages from one sender to one connection keep their order across workers."""
    one, two = workers
    b = await connect(two, "b")
    await two.add_to_group("b", "room")
    for i in range(50):
        if i % 2:
            await one.send_group("room", "M", [i])
        else:
            await one.send_connection("b", "M", [i])
    await eventually(lambda: _count(b, 50))
    assert [m[0] for m in b.messages()] == list(range(50))


def _count(client: Client, n: int) -> None:
    assert len(client.messages()) >= n


class CappedHub:
    options: dict[str, Any] = {"MAXIMUM_GROUPS_PER_CLIENT": 1, "MAXIMUM_GROUP_NAME_LENGTH": 6}


async def test_group_caps_are_enforced_where_the_connection_lives(
    workers: tuple[HubLifetimeManager, HubLifetimeManager],
) -> None:
    """The holding worker refuses a join over its caps; the requesting worker gets the error."""
    from signalr_django.exceptions import LimitExceededError

    one, two = workers

    async def write(payload: Any) -> None:
        pass

    connection = HubConnection(
        "capped", CappedHub, hub_options(CappedHub), JsonHubProtocol(), {}, "WebSockets", write
    )
    await two.on_connected(connection)
    await one.add_to_group("capped", "room")
    with pytest.raises(LimitExceededError, match="MAXIMUM_GROUPS_PER_CLIENT") as info:
        await one.add_to_group("capped", "hall")
    assert info.value.limit == 1
    with pytest.raises(LimitExceededError, match="MAXIMUM_GROUP_NAME_LENGTH"):
        await one.add_to_group("capped", "x" * 7)
    await one.remove_from_group("capped", "room")
    await one.add_to_group("capped", "hall")
    assert connection.group_names == {"hall"}
