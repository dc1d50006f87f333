"""Isolation: no client can slow, stall or exhaust a worker for the others.

Each scenario runs a fresh Daphne serving `IsolationHub` (stateful reconnect allowed, Pings
every KEEP_ALIVE s) and attacks it with raw hostile clients (tests/hostile.py) while a
well-behaved control, the official JavaScript client (tests/e2e/js/control.mjs), echoes,
listens for Pings and counts broadcasts. While the hostile clients are active the control's
echo p99 stays under 100 ms, its gaps between Pings stay under twice the keep-alive
interval, it receives every broadcast and is never disconnected; the server's RSS grows by
at most the outbound cap per hostile connection (plus slack for the broadcasts in flight),
and the hostile connections end up closed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import Acker, Control, PeakRss, Reader, invoke, open_hub, read_to_end
from tests.redis_server import redis_url
from tests.servers import Server, daphne, free_port

from .conftest import node_available, run_node

pytestmark = pytest.mark.e2e

HUB = "/hubs/isolation"
KEEP_ALIVE = 2.0  # IsolationHub's KEEP_ALIVE_INTERVAL
CAP_KIB = 1024  # OUTBOUND_BUFFER_LIMIT's default: what one connection may hold
# Broadcast frames in flight, Python's allocator and the control's traffic: what the server
# may grow by on top of the per-connection caps. Generous, and far below the unbounded
# growth each attack caused (tens of MiB within seconds).
SLACK_KIB = 16 * 1024
ECHO_P99_MS = 100.0


@pytest.fixture
def isolated(artifacts: Path, test_db: str) -> Iterator[Server]:
    """A Daphne of its own per scenario: memory and keep-alive figures belong to one attack."""
    node_available()
    with daphne(
        "tests.asgi_isolation:application",
        "tests.settings",
        artifacts,
        {"SIGNALR_TEST_DB": test_db},
        name="isolation",
    ) as server:
        yield server


@pytest.fixture
def split(artifacts: Path, test_db: str) -> Iterator[dict[str, Server]]:
    """Two Daphne workers serving `IsolationHub` with a Redis backplane (pub/sub layer)."""
    node_available()
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    with redis_url() as redis:
        env = {
            "SIGNALR_TEST_DB": test_db,
            "REDIS_URL": redis,
            "SIGNALR_TEST_LAYER": "pubsub",
            "SIGNALR_TEST_WORKERS": ",".join(urls),
        }
        app, settings = "tests.asgi_isolation:application", "tests.settings_redis"
        env_a = {**env, "SIGNALR_WORKER_URL": urls[0]}
        env_b = {**env, "SIGNALR_WORKER_URL": urls[1]}
        with (
            daphne(app, settings, artifacts, env_a, "isolation-a", ports[0]) as a,
            daphne(app, settings, artifacts, env_b, "isolation-b", ports[1]) as b,
        ):
            yield {"a": a, "b": b}


def harm(out: dict[str, Any], expected_broadcasts: int) -> list[str]:
    """Everything the control client noticed of the attack (empty: nothing)."""
    problems = []
    if out["closedWith"] is not None:
        problems.append(f"the control was disconnected: {out['closedWith']}")
    if out["senderClosedWith"] is not None:
        problems.append(f"the control's sender was disconnected: {out['senderClosedWith']}")
    echo = out["echo"]
    if echo["errors"]:
        problems.append(f"echo failed: {echo['errors']}")
    if echo["p99"] is None or echo["p99"] >= ECHO_P99_MS:
        problems.append(f"echo p99 {echo['p99']} ms (max {echo['max']} ms, n={echo['count']})")
    if out["maxPingGap"] >= 2 * KEEP_ALIVE:
        problems.append(f"a gap of {out['maxPingGap']} s between Pings (all: {out['pingGaps']})")
    got = out["broadcasts"]
    if got["received"] != expected_broadcasts or got["wrongSize"]:
        problems.append(f"received {got['received']} of {expected_broadcasts} broadcasts: {got}")
    return problems


def connections_left(server: Server, expected: int, timeout: float = 15) -> int:
    """Hub connections on `server` once the count reaches `expected` (or after `timeout` s,
    which covers a dropped stateful connection's DISCONNECT_TIMEOUT): the probe itself is
    one of them."""
    deadline = time.monotonic() + timeout
    count = invoke(server, HUB, "ConnectionCount")
    while count != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        count = invoke(server, HUB, "ConnectionCount")
    return int(count)


def report(name: str, out: dict[str, Any], **figures: Any) -> None:
    extra = " ".join(f"{k}={v}" for k, v in figures.items())
    print(
        f"\n{name}: echo p99 {out['echo']['p99']} ms, max Ping gap {out['maxPingGap']} s, "
        f"broadcasts {out['broadcasts']['received']}/{out['broadcasts']['expected']}, "
        f"control closed: {out['closedWith']}; {extra}"
    )


def test_a_stateful_client_that_never_acks_is_closed_and_broadcasts_flow(
    isolated: Server,
) -> None:
    """Issue item 1: reads everything, never sends Ack, while 4 MiB of broadcasts flow.

    Its replay buffer counts toward the outbound cap: past 1 MiB it is closed with an error,
    and nobody else (connected after it, so later in every fan-out) waits for it.
    """
    hostile = open_hub(isolated, HUB, stateful=True)
    reader = Reader(hostile)
    reader.start()
    rss = PeakRss(isolated.proc.pid)
    count = 64
    control = Control(
        isolated,
        keepAlive=KEEP_ALIVE,
        duration=3,
        settle=10,
        broadcast={"count": count, "size": 64 * 1024, "delay": 0.01},
    )
    try:
        out = control.result()
    finally:
        control.kill()
    growth = rss.stop()
    end = reader.finish(timeout=10)
    left = connections_left(isolated, 1)
    hostile.close()
    report("never acks", out, rss_growth_kib=growth, hostile=end, connections_left=left)

    problems = harm(out, count)
    if growth > CAP_KIB + SLACK_KIB:
        problems.append(f"server RSS grew {growth} KiB")
    if not (end["ended"] and end["close"] and end["close"].get("error")):
        problems.append(f"the hostile client was not closed with an error: {end}")
    if left != 1:
        problems.append(f"{left - 1} connections besides the probe are still open")
    assert not problems, "\n".join(problems)


def test_acks_for_messages_never_sent_close_the_connection_and_memory_stays_bounded(
    isolated: Server,
) -> None:
    """Issue item 2: never reads, sends Ack with a sequence id it was never sent.

    Such an Ack is a protocol violation: the connection is closed, and what was queued for
    it counts toward the outbound cap in any case, so 32 MiB of broadcasts cannot pile up.
    """
    hostile = open_hub(isolated, HUB, stateful=True, rcvbuf=4096)
    acker = Acker(hostile, sequence_id=10**9, interval=0.002)
    acker.start()
    rss = PeakRss(isolated.proc.pid)
    count = 256
    control = Control(
        isolated,
        keepAlive=KEEP_ALIVE,
        duration=3,
        settle=30,
        broadcast={"count": count, "size": 128 * 1024, "delay": 0.01},
    )
    try:
        out = control.result()
    finally:
        control.kill()
    growth = rss.stop()
    acker.stop()
    end = read_to_end(hostile, timeout=10)
    left = connections_left(isolated, 1)
    hostile.close()
    report("acks beyond sent", out, rss_growth_kib=growth, acks=acker.sent, hostile=end, left=left)

    problems = harm(out, count)
    if growth > CAP_KIB + SLACK_KIB:
        problems.append(f"server RSS grew {growth} KiB")
    if not end["ended"]:
        problems.append(f"the hostile client was not closed: {end}")
    if left != 1:
        problems.append(f"{left - 1} connections besides the probe are still open")
    assert not problems, "\n".join(problems)


def test_slow_readers_delay_nobody_elses_pings(isolated: Server) -> None:
    """Issue item 3: five readers taking 256 B/s fall behind at staggered times while 12 MiB
    of broadcasts flow. The control keeps its Pings (it would time out after twice the
    keep-alive without them), its echo and every broadcast; the readers are closed."""
    rss = PeakRss(isolated.proc.pid)
    count = 48
    control = Control(
        isolated,
        keepAlive=KEEP_ALIVE,
        duration=6,
        settle=30,
        broadcast={"count": count, "size": 256 * 1024, "delay": 0.2},
    )
    readers: list[Reader] = []
    try:
        for _ in range(5):
            reader = Reader(open_hub(isolated, HUB, rcvbuf=4096), rate=256)
            reader.start()
            readers.append(reader)
            time.sleep(0.5)  # the scenario's shape: each one falls behind at its own time
        out = control.result()
    finally:
        control.kill()
    growth = rss.stop()
    ends = [reader.finish(timeout=30) for reader in readers]
    left = connections_left(isolated, 1)
    for reader in readers:
        reader.ws.close()
    report(
        "slow readers",
        out,
        rss_growth_kib=growth,
        readers_ended=sum(e["ended"] for e in ends),
        connections_left=left,
    )

    problems = harm(out, count)
    if growth > 5 * CAP_KIB + SLACK_KIB:
        problems.append(f"server RSS grew {growth} KiB")
    if not all(e["ended"] for e in ends):
        problems.append(f"slow readers not closed: {[e['how'] for e in ends]}")
    if left != 1:
        problems.append(f"{left - 1} connections besides the probe are still open")
    assert not problems, "\n".join(problems)


def test_stateful_reconnect_with_invocations_queued(isolated: Server) -> None:
    """Issue item 9: the official client with stateful reconnect, one invocation at a time on
    the server (the default), four DelayedEcho calls in flight, then the socket drops: the
    read loop sees the drop though invocations wait for a slot, the client resumes the same
    connection and every call completes with its result."""
    out = run_node("queued_reconnect.mjs", isolated.url, timeout=60)
    print(f"\nqueued reconnect: {out}")
    assert out["closedWith"] is None, out
    assert out["results"] == [{"status": "fulfilled", "value": i} for i in range(out["calls"])], out
    assert out["sameConnection"] is True, out


def test_a_stateful_client_that_never_acks_stalls_no_backplane(split: dict[str, Server]) -> None:
    """Issue item 1, split deployment: the hostile client and the control are on worker A,
    the broadcasts come from worker B over Redis. A's backplane delivers them to the control
    while the hostile client is closed at the cap, instead of stopping at it."""
    a, b = split["a"], split["b"]
    hostile = open_hub(a, HUB, stateful=True)
    reader = Reader(hostile)
    reader.start()
    rss = PeakRss(a.proc.pid)
    count = 64
    control = Control(
        a,
        keepAlive=KEEP_ALIVE,
        duration=3,
        settle=10,
        senderBase=b.url,
        broadcast={"count": count, "size": 64 * 1024, "delay": 0.01},
    )
    try:
        out = control.result()
    finally:
        control.kill()
    growth = rss.stop()
    end = reader.finish(timeout=10)
    left = connections_left(a, 1)
    hostile.close()
    report("never acks, split", out, rss_growth_kib=growth, hostile=end, connections_left=left)

    problems = harm(out, count)
    if growth > CAP_KIB + SLACK_KIB:
        problems.append(f"worker A's RSS grew {growth} KiB")
    if not (end["ended"] and end["close"] and end["close"].get("error")):
        problems.append(f"the hostile client was not closed with an error: {end}")
    if left != 1:
        problems.append(f"{left - 1} connections besides the probe are still open on A")
    assert not problems, "\n".join(problems)
