"""Plain `def` hub methods and typed clients, with the official client on a real Daphne."""

from __future__ import annotations

import pytest

from tests.servers import Server

from .conftest import run_node

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "LongPolling"])
def test_def_methods_and_typed_clients(server: Server, transport: str) -> None:
    """def methods send to group/caller/others, change groups and get a client result; a
    typed hub sends its Protocol's wire names from async and def methods."""
    out = run_node("synchub.mjs", server.url, env={"SIGNALR_TRANSPORT": transport})
    sync = out["sync"]
    assert sync["a"] == [["caller", "hello"], ["caller", "after leave"]]
    joined, *rest = sync["b"]
    assert joined[0] == "joined"
    assert rest == [["group", "hello"], ["others", "hello"], ["others", "after leave"]]
    assert sync["answer"] == "a answers why?"
    assert "thread_sensitive=False" in sync["refused"]
    typed = out["typed"]
    assert typed["a"] == [["ann", "async hi"]]
    assert typed["b"] == [["ann", "async hi"], ["ann", "def hi"]]
    assert typed["notices"] == [["sent def hi"]]
    assert typed["asked"] == "typed answer to q1"
    assert typed["askedSync"] == "typed answer to q2"
    assert "never awaited" not in server.output()
