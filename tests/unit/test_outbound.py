"""Per-connection outbound queues: senders never wait, a client over its cap is closed.

These drive real HubConnections, the lifetime manager's fan-out and the heartbeat against
outbounds that stand for clients of every speed, including one that never reads.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from signalr_django.conf import DEFAULTS
from signalr_django.core.connection import DRAIN_THRESHOLD, HubConnection
from signalr_django.core.heartbeat import Heartbeat
from signalr_django.lifetime.manager import HubLifetimeManager
from signalr_django.protocol import Completion, JsonHubProtocol, StreamItem
from signalr_django.server import Outbound, QueuedOutbound

LIMIT = 64 * 1024 * 4


class Client(Outbound):
    """A client that reads everything (`stuck=False`) or nothing (`stuck=True`)."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.waiting = 0
        self.received: list[Any] = []
        self.paused = False

    def write(self, payload: Any) -> int:
        if self.stuck:
            self.waiting += len(payload)
        else:
            self.received.extend(json.loads(p) for p in payload.split("\x1e") if p)
        return self.waiting

    def pending(self) -> int:
        return self.waiting

    def pause_reading(self) -> bool:
        self.paused = True
        return True

    def resume_reading(self) -> None:
        self.paused = False


def connection(cid: str, outbound: Outbound, **options: Any) -> HubConnection:
    opts = DEFAULTS.with_overrides({"OUTBOUND_BUFFER_LIMIT": LIMIT, **options}, "test")
    return HubConnection(cid, object, opts, JsonHubProtocol(), {}, "WebSockets", outbound)


async def test_fan_out_never_waits_for_a_client_that_does_not_read() -> None:
    """A broadcast reaches every reader at once; the stuck client is closed at its cap."""
    manager = HubLifetimeManager("unit.outbound")
    readers = [Client() for _ in range(50)]
    stuck = Client(stuck=True)
    connections = [connection(f"r{i}", c) for i, c in enumerate(readers)]
    blocked = connection("stuck", stuck)
    for c in [*connections[:25], blocked, *connections[25:]]:
        await manager.on_connected(c)
    payload = "x" * 8000
    for i in range(100):
        # Each send returns without the event loop having to run anything for the stuck one.
        await asyncio.wait_for(manager.send_all("M", [i, payload]), timeout=5)
    for reader in readers:
        assert [m["arguments"][0] for m in reader.received] == list(range(100))
    assert blocked.aborted
    assert blocked.close_message is not None and blocked.close_message.allow_reconnect
    assert stuck.waiting <= LIMIT + 8100  # nothing queued after the write that crossed the cap
    assert not any(c.aborted for c in connections)


def test_heartbeat_tick_pings_everyone_whatever_one_client_does() -> None:
    """The tick is synchronous: a stuck client gets closed, the others all get a Ping."""
    heartbeat = Heartbeat()
    readers = [Client() for _ in range(20)]
    stuck = Client(stuck=True)
    stuck.waiting = LIMIT  # already at its cap
    conns = [connection(f"p{i}", c, KEEP_ALIVE_INTERVAL=1.0) for i, c in enumerate(readers)]
    blocked = connection("stuck", stuck, KEEP_ALIVE_INTERVAL=1.0)
    for c in [blocked, *conns]:
        heartbeat.watch(c, 0.0)
    now = conns[0].last_ping_sent + 2.0
    heartbeat.tick(now)
    assert all(r.received == [{"type": 6}] for r in readers)
    assert blocked.aborted


def test_a_write_over_the_cap_closes_only_that_connection() -> None:
    """Past OUTBOUND_BUFFER_LIMIT the connection aborts with a reconnectable Close."""
    stuck = Client(stuck=True)
    conn = connection("c", stuck)
    while not conn.aborted:
        conn.send_nowait(Completion("1", result="x" * 10_000))
    assert stuck.waiting > LIMIT
    before = stuck.waiting
    conn.send_nowait(Completion("2", result="late"))
    assert stuck.waiting == before  # nothing more is queued once aborted


async def test_a_stream_waits_for_its_own_client_only() -> None:
    """Stream items wait while their client is behind and go on once it catches up."""
    client = Client(stuck=True)
    conn = connection("s", client)
    client.waiting = DRAIN_THRESHOLD + 1
    item = asyncio.ensure_future(conn.send_stream_item(StreamItem("1", 1)))
    await asyncio.sleep(0.05)
    assert not item.done()
    client.waiting = 0
    await asyncio.wait_for(item, timeout=5)


async def test_queued_outbound_keeps_order_and_counts_pending() -> None:
    """The generic ASGI outbound sends in order and counts what the server has not taken."""
    sent: list[Any] = []
    gate = asyncio.Event()

    async def emit(payload: Any) -> None:
        await gate.wait()
        sent.append(payload)

    outbound = QueuedOutbound(emit)
    assert outbound.write("a" * 10) == 10
    assert outbound.write(b"b" * 5) == 15
    await asyncio.sleep(0)
    assert outbound.pending() == 15  # the one being sent still counts
    gate.set()
    await asyncio.wait_for(outbound.flush(), timeout=5)
    assert sent == ["a" * 10, b"b" * 5] and outbound.pending() == 0
    outbound.close()
    assert outbound.write("c") == 0 and outbound.closed


async def test_queued_outbound_closes_when_the_server_refuses() -> None:
    """A failing send (client gone) closes the outbound; later writes are dropped."""

    async def emit(payload: Any) -> None:
        raise OSError("gone")

    outbound = QueuedOutbound(emit)
    outbound.write("a")
    await asyncio.wait_for(outbound.flush(), timeout=5)
    assert outbound.closed and outbound.pending() == 0


@pytest.mark.parametrize("count", [1, 3])
async def test_queued_invocations_pause_reading_until_they_run(count: int) -> None:
    """Invocations over the parallel limit wait in order while reading is paused."""
    client = Client()
    conn = connection("q", client)
    assert conn.try_take_slot()
    started: list[int] = []
    for i in range(count):
        await conn.queue_invocation(lambda i=i: started.append(i))
    assert client.paused and started == []
    for _ in range(count):
        conn.release_slot()
    assert started == list(range(count)) and not client.paused


async def test_a_hub_method_waits_for_its_own_caller_only() -> None:
    """A send from a hub method waits while its caller is behind, never for anyone else."""
    from signalr_django.core.results import InvocationScope, current_scope

    manager = HubLifetimeManager("unit.outbound.caller")
    caller_out = Client(stuck=True)
    caller = connection("caller", caller_out)
    other_out = Client(stuck=True)
    other = connection("other", other_out)
    reader = Client()
    for c in (caller, other, connection("reader", reader)):
        await manager.on_connected(c)
    token = current_scope.set(InvocationScope(caller))
    try:
        first = asyncio.ensure_future(manager.send_all("M", ["x" * (DRAIN_THRESHOLD + 10)]))
        await asyncio.sleep(0.05)
        assert not first.done()  # the caller is behind: the method waits for it
        assert len(reader.received) == 1  # ...but everyone else already has the message
        caller_out.waiting = 0  # the caller reads
        await asyncio.wait_for(first, timeout=5)
        # The other slow client is never waited for: it is closed at its cap instead.
        for _ in range(10):
            caller_out.waiting = 0
            await asyncio.wait_for(manager.send_all("M", ["y" * 40_000]), timeout=5)
        assert other.aborted and not caller.aborted
    finally:
        current_scope.reset(token)


async def test_write_reports_what_waits_for_the_client() -> None:
    """`HubConnection.write` returns the transport's backlog after the write (what `send`
    compares with DRAIN_THRESHOLD), and 0 when it wrote nothing."""
    client = Client(stuck=True)
    conn = connection("w", client)
    assert conn.write('{"type":6}\x1e') == client.pending() == 11
    client.waiting = DRAIN_THRESHOLD
    assert conn.write('{"type":6}\x1e') == DRAIN_THRESHOLD + 11
    await conn.send(Completion("1", result=None))  # over the threshold: yields, then returns
    conn.abort()
    assert conn.write('{"type":6}\x1e') == 0  # dropped: only the Close goes out now
    conn.mark_closed()
    assert conn.write('{"type":7}\x1e', trackable=False) == 0
