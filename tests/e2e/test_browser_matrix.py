"""The official client in headless Chromium over all three transports (and MessagePack)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.servers import Server

from .conftest import run_node

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))


def test_browser_client_over_every_transport(server: Server) -> None:
    """Invoke, stream both ways, receive and errors, as a browser page does them."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    out = run_node("browser_matrix.mjs", server.url, timeout=120)
    assert out.pop("problems") == []
    assert set(out) == {
        "WebSockets/json",
        "ServerSentEvents/json",
        "LongPolling/json",
        "WebSockets/messagepack",
        "LongPolling/messagepack",
    }
    for combo, seen in out.items():
        transport, protocol = combo.split("/")
        assert (seen["transport"], seen["protocol"]) == (transport, protocol), combo
        assert seen["echo"] == {"text": "héllo", "n": [1, 2]}, combo
        assert seen["items"] == [0, 1, 2], combo
        assert seen["uploaded"] == "up:a,b", combo
        assert seen["received"] == [["caller", "pushed"]], combo
        assert seen["error"] == (
            "An unexpected error occurred invoking 'FailHub' on the server. "
            "HubException: told the client"
        ), combo
