"""Liveness and readiness ASGI apps: status, reasons, and what each depends on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signalr_django import health
from signalr_django.core import load, shutdown
from signalr_django.lifetime import default


async def call(app: Any) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    """Run an ASGI app for one GET; its status, JSON body and headers."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
    start, body = sent
    return start["status"], json.loads(body["body"]), dict(start["headers"])


class FakeBackplane:
    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.request_timeout = 5.0
        self.timeouts: list[float | None] = []

    async def probe(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return self.answers


@pytest.fixture
def backplane(monkeypatch: pytest.MonkeyPatch) -> FakeBackplane:
    fake = FakeBackplane(True)
    monkeypatch.setattr(default, "default_backplane", lambda: fake)
    return fake


async def test_ready_when_nothing_is_wrong(backplane: FakeBackplane) -> None:
    """200 and the backplane was asked, within the probe's own bound."""
    assert (await call(health.ready))[:2] == (200, {"status": "ready"})
    assert backplane.timeouts == [health.BACKPLANE_PROBE_TIMEOUT]


async def test_not_ready_while_draining_at_the_limit_and_without_backplane(
    backplane: FakeBackplane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every reason is listed; Retry-After tells balancers when to look again."""
    monkeypatch.setattr(shutdown, "_draining", True)
    monkeypatch.setattr(load, "over_limit", lambda: True)
    backplane.answers = False
    status, body, headers = await call(health.ready)
    assert status == 503
    assert body == {
        "status": "unavailable",
        "reasons": ["draining", "connection_limit", "backplane"],
    }
    assert headers[b"retry-after"] == b"5"


async def test_live_depends_on_nothing(
    backplane: FakeBackplane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A draining worker whose Redis is down is still alive: restarting it helps nobody."""
    monkeypatch.setattr(shutdown, "_draining", True)
    backplane.answers = False
    assert (await call(health.live))[:2] == (200, {"status": "live"})
    assert backplane.timeouts == []
