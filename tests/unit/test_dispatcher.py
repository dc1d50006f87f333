"""The dispatcher and lifetime manager, driven without a network."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from signalr_django import Hub, HubException
from signalr_django.conf import hub_options
from signalr_django.core.connection import HubConnection
from signalr_django.dispatch.dispatcher import ClientClosed, get_dispatcher
from signalr_django.dispatch.handler import get_handler
from signalr_django.hub import HubCallerContext
from signalr_django.lifetime.manager import get_lifetime_manager
from signalr_django.protocol import (
    CancelInvocation,
    Close,
    Completion,
    Invocation,
    JsonHubProtocol,
    Ping,
    StreamInvocation,
    StreamItem,
)
from signalr_django.server import Outbound


class UnitHub(Hub):
    async def echo(self, value: Any) -> Any:
        return value

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def boom(self) -> None:
        raise RuntimeError("hidden")

    async def refuse(self) -> None:
        raise HubException("visible")

    async def wait(self, event_name: str) -> str:
        await EVENTS[event_name].wait()
        return event_name

    async def numbers(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
            await asyncio.sleep(0)

    async def forever(self) -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            await asyncio.sleep(0.01)

    async def total(self, items: AsyncIterator[int]) -> int:
        return sum([i async for i in items])

    async def join(self, group: str) -> None:
        await self.groups.add_to_group(self.context.connection_id, group)

    async def shout(self, group: str) -> None:
        await self.clients.group(group).send("Shout", group)


EVENTS: dict[str, asyncio.Event] = {}


class FakeClient:
    """A connection whose writes land in a list."""

    def __init__(self, connection_id: str, user: str | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.raw: list[Any] = []
        client = self

        class Recording(Outbound):
            """Parses every record at once and keeps the payload objects."""

            def write(self, payload: Any) -> int:
                client.raw.append(payload)
                client.sent.extend(json.loads(p) for p in payload.split("\x1e") if p)
                return 0

            def pending(self) -> int:
                return 0

        write = Recording()
        self.connection = HubConnection(
            connection_id,
            UnitHub,
            hub_options(UnitHub),
            JsonHubProtocol(),
            {},
            "WebSockets",
            write,
            None,
            user,
        )
        self.connection.caller_context = HubCallerContext(self.connection)

    async def send(self, message: Any) -> None:
        await get_dispatcher(UnitHub).dispatch(self.connection, message)

    async def until(self, count: int) -> list[dict[str, Any]]:
        for _ in range(200):
            if len(self.sent) >= count:
                return self.sent
            await asyncio.sleep(0.005)
        raise AssertionError(f"only {self.sent}")


@pytest.fixture
async def client() -> Any:
    fake = FakeClient("c1")
    await get_lifetime_manager(UnitHub).on_connected(fake.connection)
    yield fake
    await get_handler(UnitHub).disconnected(fake.connection, None)


async def test_invocation_results_and_errors(client: FakeClient) -> None:
    """Results, binding failures and exceptions each produce one Completion."""
    await client.send(Invocation("Add", [1, 2], "1"))
    await client.send(Invocation("add", ["x", 2], "2"))
    await client.send(Invocation("Boom", [], "3"))
    await client.send(Invocation("Refuse", [], "4"))
    await client.send(Invocation("Missing", [], "5"))
    await client.send(Invocation("Boom", []))  # fire and forget: nothing comes back
    await client.send(Invocation("Echo", [None], "6"))
    await client.until(6)
    await asyncio.sleep(0.02)
    # Binding failures are answered from the read loop, results from the invocation task,
    # so completions of different invocations may arrive in either order.
    sent = sorted(client.sent, key=lambda m: m["invocationId"])
    assert sent == [
        {"type": 3, "invocationId": "1", "result": 3},
        {
            "type": 3,
            "invocationId": "2",
            "error": "Failed to invoke 'add' due to an error on the server.",
        },
        {
            "type": 3,
            "invocationId": "3",
            "error": "An unexpected error occurred invoking 'Boom' on the server.",
        },
        {
            "type": 3,
            "invocationId": "4",
            "error": "An unexpected error occurred invoking 'Refuse' on the server. "
            "HubException: visible",
        },
        {
            "type": 3,
            "invocationId": "5",
            "error": "Failed to invoke 'Missing' due to an error on the server. "
            "HubException: Method does not exist.",
        },
        {"type": 3, "invocationId": "6", "result": None},
    ]


async def test_one_slot_per_client_queues_the_second_invocation(client: FakeClient) -> None:
    """With one slot, a second invocation waits in the queue (not the read loop) until the
    first completes; Pings and client results are still read meanwhile."""
    EVENTS["first"] = asyncio.Event()
    await client.send(Invocation("Wait", ["first"], "1"))
    await client.send(Invocation("Echo", ["second"], "2"))  # returns: the read loop goes on
    assert client.connection.queued_invocations is not None
    assert len(client.connection.queued_invocations) == 1
    await client.send(Ping())
    assert client.connection.client_pinged and client.sent == []
    EVENTS["first"].set()
    sent = await client.until(2)
    assert [m["invocationId"] for m in sent] == ["1", "2"]
    assert not client.connection.queued_invocations


async def test_the_read_loop_waits_past_the_invocation_queue_bound(client: FakeClient) -> None:
    """Past MAX_QUEUED_INVOCATIONS waiting invocations the read loop itself waits."""
    from signalr_django.core.connection import MAX_QUEUED_INVOCATIONS

    EVENTS["first"] = asyncio.Event()
    await client.send(Invocation("Wait", ["first"], "w"))
    for i in range(MAX_QUEUED_INVOCATIONS):
        await client.send(Invocation("Echo", [i], str(i)))
    blocked = asyncio.create_task(client.send(Invocation("Echo", ["last"], "last")))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    EVENTS["first"].set()
    await blocked
    sent = await client.until(MAX_QUEUED_INVOCATIONS + 2)
    assert [m["invocationId"] for m in sent][-1] == "last"


async def test_streams_and_cancellation(client: FakeClient) -> None:
    """Stream items then a Completion; CancelInvocation stops the generator."""
    await client.send(StreamInvocation("s1", "Numbers", [3]))
    sent = await client.until(4)
    assert sent == [
        {"type": 2, "invocationId": "s1", "item": 0},
        {"type": 2, "invocationId": "s1", "item": 1},
        {"type": 2, "invocationId": "s1", "item": 2},
        {"type": 3, "invocationId": "s1"},
    ]
    client.sent.clear()
    await client.send(StreamInvocation("s2", "Forever", []))
    await client.until(2)
    await client.send(CancelInvocation("s2"))
    await asyncio.sleep(0.05)
    assert client.sent[-1] == {"type": 3, "invocationId": "s2"}
    count = len(client.sent)
    await asyncio.sleep(0.05)
    assert len(client.sent) == count
    assert not client.connection.streams_out


async def test_client_to_server_stream(client: FakeClient) -> None:
    """StreamItems with the stream id feed the parameter; the Completion ends it."""
    await client.send(Invocation("Total", [], "1", ["7"]))
    for n in (1, 2, 3):
        await client.send(StreamItem("7", n))
    await client.send(Completion("7"))
    assert await client.until(1) == [{"type": 3, "invocationId": "1", "result": 6}]


async def test_client_close_raises(client: FakeClient) -> None:
    """A Close from the client ends the read loop."""
    with pytest.raises(ClientClosed):
        await client.send(Close())


async def test_groups_fan_out_serialises_once() -> None:
    """A group send writes the same record object to every member."""
    manager = get_lifetime_manager(UnitHub)
    clients = [FakeClient(f"g{i}") for i in range(3)]
    payloads: list[Any] = []
    for fake in clients:
        await manager.on_connected(fake.connection)
        fake.raw = payloads
    try:
        for fake in clients[:2]:
            await fake.send(Invocation("Join", ["room"], "j"))
        await clients[0].until(1)
        await clients[1].until(1)
        payloads.clear()
        await clients[2].send(Invocation("Shout", ["room"], "s"))
        await clients[2].until(1)
        shouts = [p for p in payloads if "Shout" in p]
        assert len(shouts) == 2 and shouts[0] is shouts[1]
        assert clients[0].sent[-1] == {"type": 1, "target": "Shout", "arguments": ["room"]}
    finally:
        for fake in clients:
            await get_handler(UnitHub).disconnected(fake.connection, None)
    assert "room" not in manager.groups


async def test_targets_are_looked_up_as_spelled_within_a_bound(
    client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spellings of existing methods are remembered (up to a bound); unknown ones never."""
    from signalr_django.dispatch import dispatcher as module

    dispatcher = get_dispatcher(UnitHub)
    monkeypatch.setattr(dispatcher, "_targets", {})
    monkeypatch.setattr(module, "MAX_CACHED_TARGETS", 2)
    for index, target in enumerate(["Add", "ADD", "a_d_d", "Missing", "add"]):
        await client.send(Invocation(target, [1, 2], str(index)))
    sent = await client.until(5)
    assert sorted(dispatcher._targets) == ["ADD", "Add"]
    results = {m["invocationId"]: m.get("result", m.get("error")) for m in sent}
    assert results["0"] == results["1"] == results["2"] == results["4"] == 3
    assert "Method does not exist" in results["3"]


async def test_finished_invocations_leave_nothing_behind(client: FakeClient) -> None:
    """Each invocation's task is held while it runs and let go when it ends."""
    from signalr_django.dispatch.dispatcher import _background

    before = set(_background)
    await client.send(Invocation("Add", [1, 2], "1"))
    await client.send(Invocation("Boom", [], "2"))
    await client.send(Invocation("Add", [2, 2]))  # no reply wanted
    assert len(set(_background) - before) >= 1  # running or queued behind the slot
    await client.until(2)
    for _ in range(100):
        if not set(_background) - before:
            break
        await asyncio.sleep(0.005)
    assert not set(_background) - before
