"""Bounded memory against clients that misbehave, with a healthy control connection."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rawws import RawWebSocket
from tests.servers import Server, daphne, uvicorn

pytestmark = pytest.mark.e2e

RS = "\x1e"
HANDSHAKE = '{"protocol":"json","version":1}' + RS


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def lone(request: pytest.FixtureRequest, artifacts: Path, test_db: str) -> Iterator[Server]:
    """A server of its own, so memory figures are not mixed with other tests.

    Daphne holds what a client does not read in Twisted's socket buffer and stops reading
    the socket itself; uvicorn (the generic path) holds it in `QueuedOutbound`, and stops
    reading because the application stops calling `receive`.
    """
    serve = daphne if request.param == "daphne" else uvicorn
    with serve(
        "tests.asgi:application",
        "tests.settings",
        artifacts,
        {"SIGNALR_TEST_DB": test_db},
        name=f"resources-{request.param}",
    ) as server:
        yield server


def rss_kib(server: Server) -> int:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def connect(server: Server, rcvbuf: int | None = None) -> RawWebSocket:
    ws = RawWebSocket(server.port, rcvbuf=rcvbuf)
    assert ws.status == 101
    ws.send_text(HANDSHAKE)
    assert ws.recv_text() == "{}" + RS
    return ws


def invoke(ws: RawWebSocket, target: str, *args: object, invocation_id: str = "1") -> object:
    ws.send_text(
        json.dumps(
            {"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(args)}
        )
        + RS
    )
    while True:
        for record in ws.recv_text().split(RS):
            if record:
                message = json.loads(record)
                if message.get("type") == 7:
                    raise AssertionError(f"closed by the server: {message}")
                if message.get("type") == 3 and message.get("invocationId") == invocation_id:
                    return message.get("result", message.get("error"))


def control_echo_time(server: Server) -> float:
    ws = connect(server)
    start = time.monotonic()
    assert invoke(ws, "Echo", "still fine") == "still fine"
    elapsed = time.monotonic() - start
    ws.close()
    return elapsed


def test_a_client_that_never_reads_is_closed_and_memory_stays_bounded(lone: Server) -> None:
    """20 MB broadcast at a client that stopped reading: it is closed at the 1 MiB cap.

    The sender receives the flood too: its hub method runs at the sender's reading speed
    (a method waits for its own caller), never at the slow client's. The deadlines are
    generous because the machine may be busy.
    """
    slow = connect(lone, rcvbuf=4096)
    sender = connect(lone)
    sender.sock.settimeout(60)
    before = rss_kib(lone)
    # 320 messages of 64 KB to everyone; the slow client reads none of them.
    assert invoke(sender, "Flood", 320, 64 * 1024, invocation_id="f") == 320
    grown = rss_kib(lone) - before
    count = invoke(sender, "ConnectionCount", invocation_id="c")
    deadline = time.monotonic() + 30
    while count != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        count = invoke(sender, "ConnectionCount", invocation_id="c")
    echo = control_echo_time(lone)
    print(
        f"\nslow consumer: RSS grew {grown} KiB for 20 MB sent; slow client closed; "
        f"control echo {echo * 1000:.1f} ms"
    )
    assert count == 1, "the slow client was not closed"
    assert grown < 12 * 1024
    assert echo < 1.0
    slow.close()
    sender.close()


def test_an_invocation_flood_is_held_back_by_tcp(lone: Server) -> None:
    """5,000 invocations of a slow method sent at once: reading pauses, memory stays flat."""
    flooder = connect(lone)
    before = rss_kib(lone)
    frame = "".join(
        json.dumps({"type": 1, "invocationId": str(i), "target": "Slow", "arguments": [0.01]}) + RS
        for i in range(100)
    )
    flooder.sock.settimeout(5)
    sent = 0
    try:
        for _ in range(50):
            flooder.send_text(frame)
            sent += 100
    except TimeoutError:
        pass  # TCP pushed back: the server stopped reading
    grown = rss_kib(lone) - before
    echo = control_echo_time(lone)
    print(
        f"\ninvocation flood: {sent} invocations written before TCP pushed back; "
        f"RSS grew {grown} KiB; control echo {echo * 1000:.1f} ms"
    )
    assert grown < 16 * 1024
    assert echo < 1.0
    flooder.close()


def test_a_connection_flood_without_handshakes_is_reclaimed(lone: Server) -> None:
    """300 sockets that never handshake: each is closed at the handshake timeout."""
    before = rss_kib(lone)
    idle = [RawWebSocket(lone.port, path="/hubs/watch") for _ in range(300)]
    assert all(ws.status == 101 for ws in idle)
    grown = rss_kib(lone) - before
    closed = 0
    deadline = time.monotonic() + 10  # WatchHub's handshake timeout is 2 s
    for ws in idle:
        ws.sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            text = ws.recv_text()
            assert text == '{"error":"Handshake was canceled."}' + RS
            ws.recv_text()
        except (ConnectionError, TimeoutError, OSError):
            pass
        else:
            continue
        closed += 1
    echo = control_echo_time(lone)
    print(
        f"\nconnection flood: 300 idle sockets took {grown} KiB; {closed} closed by the "
        f"handshake timeout; control echo {echo * 1000:.1f} ms"
    )
    assert closed == 300
    assert echo < 1.0
    for ws in idle:
        ws.close()
