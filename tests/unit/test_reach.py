"""A hub-context send that can reach nobody logs one ERROR; serving processes stay quiet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from signalr_django import Hub, get_hub_context, get_sync_hub_context
from signalr_django.core import reach
from signalr_django.lifetime import manager as lifetime_manager
from signalr_django.lifetime.backplane import Backplane
from signalr_django.lifetime.manager import HubLifetimeManager

NOBODY = "reaches nobody"


class LonelyHub(Hub):
    async def echo(self, value: str) -> str:
        return value


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if this were a new process: nothing served, no connection registered."""
    monkeypatch.setattr(lifetime_manager, "_managers", {})
    monkeypatch.setattr(reach, "serving", False)
    monkeypatch.setattr(reach, "_reported", False)
    yield


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and r.name.startswith("signalr_django")
    ]


def test_a_sync_send_from_a_process_without_connections_logs_once(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    """What a gunicorn worker does with the in-memory layer: one ERROR saying what to do."""
    context = get_sync_hub_context(LonelyHub)
    with caplog.at_level(logging.ERROR, logger="signalr_django"):
        context.clients.all.send("Receive", "one")
        context.clients.group("g").send("Receive", "two")
    logged = errors(caplog)
    assert len(logged) == 1, logged
    assert NOBODY in logged[0]
    assert "LonelyHub" in logged[0]
    assert "channels_redis.pubsub.RedisPubSubChannelLayer" in logged[0]


def test_an_async_send_from_a_process_without_connections_logs_once(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The async hub context (a task queue's asyncio worker) is checked the same way."""

    async def send() -> None:
        context = get_hub_context(LonelyHub)
        await context.clients.all.send("Receive", "one")
        await context.groups.add_to_group("nobody", "g")

    with caplog.at_level(logging.ERROR, logger="signalr_django"):
        asyncio.run(send())
    logged = errors(caplog)
    assert len(logged) == 1 and NOBODY in logged[0], logged


def test_a_process_that_serves_connections_stays_quiet(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Daphne, runserver and in-process tests hold the connections: their sends reach them."""
    reach.mark_serving()  # an endpoint got a request, or the lifespan start-up ran
    with caplog.at_level(logging.ERROR, logger="signalr_django"):
        get_sync_hub_context(LonelyHub).clients.all.send("Receive", "one")
    assert errors(caplog) == []


def test_a_registered_connection_means_serving(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A lifetime manager that registered a connection has a loop: sends may reach it."""
    manager = lifetime_manager.get_lifetime_manager(LonelyHub)
    loop = asyncio.new_event_loop()
    try:
        manager.loop = loop
        with caplog.at_level(logging.ERROR, logger="signalr_django"):
            reach.check_send(manager)
    finally:
        manager.loop = None
        loop.close()
    assert errors(caplog) == []


def test_a_shared_layer_reaches_the_workers(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    """With a layer that leaves the process (Redis), the workers get the send: no error."""

    class SharedLayer:  # not the in-memory layer
        pass

    shared = HubLifetimeManager("shared", Backplane(SharedLayer()))
    memory_layer: Any = type("InMemoryChannelLayer", (), {})()
    local = HubLifetimeManager("local", Backplane(memory_layer))
    with caplog.at_level(logging.ERROR, logger="signalr_django"):
        reach.check_send(shared)
        assert errors(caplog) == []
        reach.check_send(local)
    logged = errors(caplog)
    assert len(logged) == 1 and "is the in-memory one" in logged[0], logged


def test_settings_problems_are_logged_when_serving_starts(
    fresh_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A server started without `manage.py check` (daphne, uvicorn) still says what is wrong."""
    from django.test import override_settings

    from signalr_django.conf import clear_cache

    with override_settings(SIGNALR={"KEEPALIVE": 1}), caplog.at_level(logging.ERROR):
        clear_cache()
        try:
            reach.mark_serving()
        finally:
            clear_cache()
    logged = errors(caplog)
    assert any("KEEPALIVE" in line and "signalr.E001" in line for line in logged), logged
