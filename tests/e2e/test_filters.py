"""Hub filters end to end: the official client (Node) against a real Daphne.

`FilterTestHub` (tests/testapp/hubs.py) has a `RateLimitFilter` allowing three calls per
connection and a `LanguageFilter` that replaces banned words in an argument before the
hub method sees it. Over each transport: the filter rewrites the argument, the fourth and
fifth calls are refused with the filter's message while the connection stays open, and a
second connection has its own allowance.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_node
from tests.servers import Server

pytestmark = pytest.mark.e2e

REFUSED = "HubException: Slow down: three calls per connection."


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "LongPolling"])
def test_rate_limit_and_argument_replacement(server: Server, transport: str) -> None:
    logged_before = len(server.output())
    result = run_node("filters.mjs", server.url, env={"SIGNALR_TRANSPORT": transport})
    assert result["said"] == "ann: what the ****, **** it"
    assert result["echoed"] == [1, 2]
    assert result["refused"] == [
        f"An unexpected error occurred invoking 'Echo' on the server. {REFUSED}",
        f"An unexpected error occurred invoking 'Say' on the server. {REFUSED}",
    ]
    assert result["fresh"] == "own bucket"
    assert result["transport"] == transport.replace("WebSockets", "WebSocket") + "Transport"
    # A refused call is the filter's deliberate answer, not a server error.
    assert "Traceback" not in server.output()[logged_before:]
