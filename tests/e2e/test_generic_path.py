"""The generic ASGI path (`QueuedOutbound`, no Daphne internals) with the official client.

Servers other than Daphne get this path; here Daphne serves it with its adapter switched
off, so the same scenarios that run on the fast path prove the generic outbound queue:
ordering, streams, closes with their Close message, keep-alive, client results and
stateful reconnect.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Server, daphne

from .conftest import run_node

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def generic(artifacts: Path, test_db: str) -> Iterator[Server]:
    """Daphne serving the test project through the generic ASGI path."""
    env = {"SIGNALR_TEST_DB": test_db, "SIGNALR_TEST_GENERIC_PATH": "1"}
    with daphne("tests.asgi:application", "tests.settings", artifacts, env, "generic") as srv:
        yield srv


def scenario(name: str, server: Server, transport: str = "WebSockets/json") -> Any:
    kind, _, protocol = transport.partition("/")
    env = {"SIGNALR_TRANSPORT": kind, "SIGNALR_PROTOCOL": protocol or "json"}
    return run_node("run.mjs", name, server.url, env=env)


@pytest.mark.parametrize(
    "name",
    ["invokeAndSend", "clientTargets", "streaming", "uploadStreams", "clientResults", "keepAlive"],
)
@pytest.mark.parametrize("transport", ["WebSockets/json", "WebSockets/messagepack"])
def test_scenarios_on_the_generic_path(generic: Server, name: str, transport: str) -> None:
    """The official client's scenarios pass with frames going through QueuedOutbound."""
    scenario(name, generic, transport)


def test_server_close_reaches_the_client_on_the_generic_path(generic: Server) -> None:
    """The Close message is flushed before the socket closes."""
    out = scenario("serverClose", generic)
    assert out["abort"] is None
    assert (
        "Connection closed with an error. HubException: refused by on_connected" in (out["refused"])
    )


def test_stateful_reconnect_on_the_generic_path(generic: Server) -> None:
    """A dropped socket resumes and every message arrives once, in order."""
    out = scenario("statefulReconnect", generic)
    assert out["inOrder"] and out["unique"] == out["count"] == out["total"]
