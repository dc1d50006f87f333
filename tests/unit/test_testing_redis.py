"""`HubCommunicator` with a Redis channel layer: sends cross the backplane."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from signalr_django import Hub
from signalr_django.conf import hub_options
from signalr_django.core.connection import HubConnection
from signalr_django.lifetime.backplane import Backplane
from signalr_django.lifetime.manager import HubLifetimeManager, get_lifetime_manager
from signalr_django.protocol import JsonHubProtocol
from signalr_django.server.outbound import ListOutbound
from signalr_django.testing import ClientInvocation, HubCommunicator, reset_hub_state
from tests.redis_server import redis_url


class ScaledHub(Hub):
    async def join(self, room: str) -> None:
        await self.groups.add_to_group(self.context.connection_id, room)

    async def say(self, room: str, text: str) -> None:
        await self.clients.group(room).send("ReceiveMessage", text)


@pytest.fixture(scope="module")
def redis() -> Iterator[str]:
    with redis_url() as url:
        yield url


@pytest.fixture
async def redis_layer(redis: str, settings: Any) -> AsyncIterator[dict[str, Any]]:
    """Settings with a Redis pub/sub layer under a prefix of this test's own."""
    config = {"hosts": [redis], "prefix": f"testing{uuid.uuid4().hex[:8]}"}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": config}
    }
    await reset_hub_state()
    yield config
    await reset_hub_state()


async def test_the_communicator_uses_the_redis_backplane(redis_layer: dict[str, Any]) -> None:
    """A group send made on another worker reaches the communicator through Redis, and
    the communicator's sends reach a connection held by that worker."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    other_layer = RedisPubSubChannelLayer(**redis_layer)
    other = HubLifetimeManager(
        f"{ScaledHub.__module__}.{ScaledHub.__qualname__}", Backplane(other_layer)
    )
    await other.start()
    try:
        async with HubCommunicator(ScaledHub) as alice, HubCommunicator(ScaledHub) as bob:
            assert get_lifetime_manager(ScaledHub).backplane is not None
            await alice.invoke("Join", "lobby")
            await other.send_group("lobby", "ReceiveMessage", ["from the other worker"])
            assert await alice.receive() == ClientInvocation(
                "ReceiveMessage", ["from the other worker"]
            )
            await bob.invoke("Say", "lobby", "local")
            assert await alice.receive() == ClientInvocation("ReceiveMessage", ["local"])
            await bob.assert_nothing_received()
            await alice.assert_nothing_received()  # delivered once, not again from Redis
            remote = ListOutbound()
            carol = HubConnection(
                "carol",
                ScaledHub,
                hub_options(ScaledHub),
                JsonHubProtocol(),
                {},
                "WebSockets",
                remote,
            )
            await other.on_connected(carol)
            await other.add_to_group("carol", "lobby")
            await bob.invoke("Say", "lobby", "across")
            assert await alice.receive() == ClientInvocation("ReceiveMessage", ["across"])
            for _ in range(500):  # generous: Redis delivers asynchronously
                if remote.records:
                    break
                await asyncio.sleep(0.01)
            assert [json.loads(r.rstrip("\x1e")) for r in remote.records] == [
                {"type": 1, "target": "ReceiveMessage", "arguments": ["across"]}
            ]
            await other.on_disconnected(carol)
    finally:
        assert other.backplane is not None
        await other.backplane.stop()
