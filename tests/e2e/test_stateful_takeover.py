"""Stateful reconnect when the old socket still looks open (a half-open TCP connection).

The client has given up on its socket and resumes on a new one with its connection token;
the server has not seen the old socket close. The new socket must take the connection
over: the stale one is closed, the connection keeps its id, and every unacknowledged
message is replayed exactly once. A different user's or an unknown token cannot do that.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.rawws import RawWebSocket
from tests.servers import Server

pytestmark = pytest.mark.e2e

RS = "\x1e"


def negotiate(server: Server) -> str:
    request = urllib.request.Request(
        server.url + "/hubs/stateful/negotiate?negotiateVersion=1&useStatefulReconnect=true",
        method="POST",
        data=b"",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert body["useStatefulReconnect"] is True
    token: str = body["connectionToken"]
    return token


def records(ws: RawWebSocket, count: int) -> list[dict[str, Any]]:
    """The next `count` hub messages, Pings skipped."""
    out: list[dict[str, Any]] = []
    pending = ""
    while len(out) < count:
        pending += ws.recv_text()
        *whole, pending = pending.split(RS)
        for text in whole:
            message = json.loads(text)
            if message != {} and message.get("type") != 6:
                out.append(message)
    return out


def test_a_resumed_socket_takes_over_from_a_stale_one(server: Server) -> None:
    """The new socket gets Sequence and the replay; the stale socket is closed."""
    token = negotiate(server)
    old = RawWebSocket(server.port, f"/hubs/stateful?id={token}")
    old.send_text('{"protocol":"json","version":2}' + RS)
    old.send_text(
        json.dumps({"type": 1, "invocationId": "1", "target": "ConnectionId", "arguments": []}) + RS
    )
    first = records(old, 1)[0]
    assert first["type"] == 3 and first["invocationId"] == "1"
    connection_id = first["result"]
    # The client stops using the old socket without closing it (the network path died).
    new = RawWebSocket(server.port, f"/hubs/stateful?id={token}")
    assert new.status == 101
    replay = records(new, 2)
    assert replay[0] == {"type": 9, "sequenceId": 1}  # nothing was acknowledged
    assert replay[1] == first  # the Completion, replayed once
    new.send_text('{"type":9,"sequenceId":1}' + RS)
    new.send_text(
        json.dumps({"type": 1, "invocationId": "1", "target": "ConnectionId", "arguments": []}) + RS
    )
    new.send_text(
        json.dumps({"type": 1, "invocationId": "2", "target": "Echo", "arguments": ["after"]}) + RS
    )
    answers = records(new, 1)
    # Invocation 1 was processed before: the replayed copy is skipped, only 2 answers.
    assert answers == [{"type": 3, "invocationId": "2", "result": "after"}]
    new.send_text(
        json.dumps({"type": 1, "invocationId": "3", "target": "ConnectionId", "arguments": []}) + RS
    )
    assert records(new, 1)[0]["result"] == connection_id
    # The stale socket was closed by the server.
    with pytest.raises(ConnectionError):
        for _ in range(100):
            old.recv_text()
    old.close()
    new.close()


def test_a_live_connection_is_not_taken_over_without_stateful_reconnect(server: Server) -> None:
    """A plain (non-stateful) token in use on a live connection is refused, as before."""
    request = urllib.request.Request(
        server.url + "/hubs/test/negotiate?negotiateVersion=1", method="POST", data=b""
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token = json.loads(response.read())["connectionToken"]
    first = RawWebSocket(server.port, f"/hubs/test?id={token}")
    first.send_text('{"protocol":"json","version":1}' + RS)
    first.recv_text()
    second = RawWebSocket(server.port, f"/hubs/test?id={token}")
    assert second.status == 403
    first.close()
    second.close()
