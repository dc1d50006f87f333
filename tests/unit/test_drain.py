"""What reaches a draining process is refused, in process (no server).

The rolling restart on real Daphne workers is in tests/e2e/test_drain.py; here each door a
new connection could come through is pinned: negotiate, the WebSocket upgrade (403 under
Daphne, 503 where the server can send denial responses) and a new SSE or long-polling
connection. Requests of connections already open are still served while they are moved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from signalr_django import Hub
from signalr_django.core import shutdown
from signalr_django.endpoint import HubEndpoint
from signalr_django.transports.negotiate import make_connection_token, new_connection_id


class DrainHub(Hub):
    async def echo(self, value: Any) -> Any:
        return value


@pytest.fixture
def draining() -> Iterator[None]:
    shutdown._draining = True
    try:
        yield
    finally:
        shutdown._draining = False


async def call(
    scope: dict[str, Any], events: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Run the endpoint on one request; what it sent."""
    endpoint = HubEndpoint(DrainHub, route="drain")
    inbox = list(events or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(endpoint(scope, receive, send), 10)
    return sent


def http(method: str, path: str, query: bytes = b"", accept: bytes = b"*/*") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(b"accept", accept), (b"host", b"testserver")],
    }


def status(sent: list[dict[str, Any]]) -> tuple[int, dict[bytes, bytes], bytes]:
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


async def test_negotiate_answers_503_with_retry_after(draining: None) -> None:
    code, headers, body = status(await call(http("POST", "/hubs/drain/negotiate")))
    assert code == 503
    assert headers[b"retry-after"] == b"5"
    assert body == shutdown.DRAINING


async def test_negotiate_is_served_when_not_draining() -> None:
    code, _, _ = status(await call(http("POST", "/hubs/drain/negotiate", b"negotiateVersion=1")))
    assert code == 200


@pytest.mark.parametrize("accept", [b"text/event-stream", b"*/*"])
async def test_new_sse_and_long_polling_connections_are_refused(
    draining: None, accept: bytes
) -> None:
    connection_id = new_connection_id()
    token = make_connection_token(connection_id, "")
    scope = http("GET", "/hubs/drain", b"id=" + token.encode(), accept)
    code, headers, body = status(await call(scope))
    assert code == 503
    assert headers[b"retry-after"] == b"5"
    assert body == shutdown.DRAINING


async def test_websocket_upgrade_is_refused_with_403_under_daphne(draining: None) -> None:
    scope = {"type": "websocket", "path": "/hubs/drain", "query_string": b"", "headers": []}
    sent = await call(scope, [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_websocket_upgrade_gets_503_where_denial_responses_exist(draining: None) -> None:
    scope = {
        "type": "websocket",
        "path": "/hubs/drain",
        "query_string": b"",
        "headers": [],
        "extensions": {"websocket.http.response": {}},
    }
    sent = await call(scope, [{"type": "websocket.connect"}])
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 503
    assert (b"retry-after", b"5") in sent[0]["headers"]
    assert sent[1] == {"type": "websocket.http.response.body", "body": shutdown.DRAINING}


async def test_drain_returns_once_the_last_connection_is_gone() -> None:
    """No connection: the drain does not wait for its timeout."""
    try:
        assert await asyncio.wait_for(shutdown.drain(timeout=3600), 120) == 0
        assert shutdown.is_draining()
    finally:
        shutdown._draining = False
