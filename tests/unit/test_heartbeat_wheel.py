"""The heartbeat's timing wheel: a tick visits only the connections that are due.

These drive `Heartbeat.tick` with an explicit clock over real `HubConnection`s writing to an
in-memory outbound, so every assertion is about what each client would have received.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from signalr_django.conf import DEFAULTS
from signalr_django.core.connection import HubConnection
from signalr_django.core.heartbeat import Heartbeat
from signalr_django.protocol import JsonHubProtocol
from signalr_django.server import Outbound


class Client(Outbound):
    """Records every message written to it."""

    def __init__(self) -> None:
        self.received: list[Any] = []

    def write(self, payload: Any) -> int:
        self.received.extend(json.loads(p) for p in payload.split("\x1e") if p)
        return 0

    def pending(self) -> int:
        return 0

    def pause_reading(self) -> bool:
        return True

    def resume_reading(self) -> None:
        pass


def connection(cid: str, start: float, **options: Any) -> tuple[HubConnection, Client]:
    opts = DEFAULTS.with_overrides(
        {"KEEP_ALIVE_INTERVAL": 15.0, "CLIENT_TIMEOUT_INTERVAL": 30.0, **options}, "test"
    )
    client = Client()
    conn = HubConnection(cid, object, opts, JsonHubProtocol(), {}, "WebSockets", client)
    conn.last_ping_sent = conn.last_received = start
    return conn, client


class CountingHeartbeat(Heartbeat):
    """Counts visits, to show how much work each tick does."""

    def __init__(self) -> None:
        super().__init__()
        self.visits = 0

    def _visit(self, *args: Any) -> float | None:
        self.visits += 1
        return super()._visit(*args)


def test_an_idle_connection_is_visited_once_per_keep_alive_interval() -> None:
    heartbeat = CountingHeartbeat()
    start = 1000.0
    conns = [connection(f"c{i}", start) for i in range(300)]
    for conn, _client in conns:
        heartbeat.watch(conn, start + 1)
    for second in range(1, 61):
        heartbeat.tick(start + second + 0.5)
    # 60 s at a 15 s keep-alive: ~4 Pings each, and about as many visits (not 60).
    for _conn, client in conns:
        assert client.received == [{"type": 6}] * 4
    assert heartbeat.visits <= 300 * 6


def test_pings_go_out_within_a_second_of_their_due_time_for_every_connection() -> None:
    heartbeat = Heartbeat()
    start = 500.25
    conn, client = connection("c", start, KEEP_ALIVE_INTERVAL=2.0)
    heartbeat.watch(conn, start + 1)
    sent_at: list[float] = []
    now = start
    while now < start + 20:
        now += 1.0
        before = len(client.received)
        heartbeat.tick(now)
        if len(client.received) > before:
            sent_at.append(now)
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps and all(2.0 <= gap <= 3.0 for gap in gaps)


def test_a_silent_client_times_out_although_the_wheel_did_not_see_its_messages() -> None:
    """Messages do not refile a connection; the visit reads `last_received` and refiles."""
    heartbeat = Heartbeat()
    start = 2000.0
    conn, _client = connection("c", start)
    conn.client_pinged = True
    heartbeat.watch(conn, start + 1)
    now = start
    # The client keeps talking for a minute, then goes silent at `silent_from`.
    while now < start + 60:
        now += 1.0
        conn.last_received = now
        heartbeat.tick(now)
    silent_from = now
    assert not conn.aborted
    while not conn.aborted:
        now += 1.0
        heartbeat.tick(now)
        assert now - silent_from <= 30 + 2, "the timeout was missed"
    assert now - silent_from > 30
    assert conn.close_message is not None and conn.close_message.allow_reconnect


def test_a_removed_connection_is_forgotten_at_once() -> None:
    heartbeat = Heartbeat()
    conn, client = connection("c", 0.0, KEEP_ALIVE_INTERVAL=1.0)
    heartbeat.watch(conn, 1.0)
    heartbeat.remove(conn)
    assert not heartbeat.connections and not any(heartbeat._wheel.values())
    heartbeat.tick(5.0)
    assert client.received == []


def test_a_connection_busy_with_an_invocation_is_not_timed_out_and_is_looked_at_each_second() -> (
    None
):
    heartbeat = CountingHeartbeat()
    start = 0.0
    conn, _client = connection("c", start)
    conn.client_pinged = True
    conn.active_invocations = 1
    heartbeat.watch(conn, start + 1)
    for second in range(1, 41):
        heartbeat.tick(start + second)
    assert not conn.aborted
    conn.active_invocations = 0
    heartbeat.tick(start + 41)
    assert conn.aborted


def test_a_stalled_loop_catches_up_on_every_second_it_missed() -> None:
    heartbeat = Heartbeat()
    start = 100.0
    conn, client = connection("c", start, KEEP_ALIVE_INTERVAL=5.0)
    heartbeat.watch(conn, start + 1)
    heartbeat.tick(start + 1)
    heartbeat.tick(start + 40)  # the loop was blocked for 39 s
    assert client.received == [{"type": 6}]
    heartbeat.tick(start + 46)
    assert client.received == [{"type": 6}] * 2
