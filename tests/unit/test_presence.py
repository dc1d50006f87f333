"""Presence queries: the merge rules, and exact in-process answers without a backplane."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest

from signalr_django import Hub, get_hub_context, get_sync_hub_context
from signalr_django.conf import hub_options
from signalr_django.core.connection import HubConnection
from signalr_django.hub import HubCallerContext
from signalr_django.lifetime.manager import get_lifetime_manager
from signalr_django.presence.answer import (
    CONNECTION_GROUPS,
    CONNECTIONS,
    COUNT,
    GROUPS,
    USER_CONNECTIONS,
    Answer,
    expected_workers,
    merge,
    missing_workers,
)
from signalr_django.presence.hooks import tracker_for
from signalr_django.protocol import JsonHubProtocol


def test_counts_add_up_and_ignore_malformed_parts() -> None:
    """Counts are summed; parts of the wrong type (another version's) are skipped."""
    assert merge(COUNT, [2, 3, None, "7", True]) == 5
    assert merge(COUNT, []) == 0


def test_connection_lists_concatenate_within_the_limit() -> None:
    """A user's ids are merged sorted; connection rows are capped at `limit`."""
    assert merge(USER_CONNECTIONS, [["b"], None, ["a", "c"]]) == ["a", "b", "c"]
    rows = merge(CONNECTIONS, [[{"id": 1}, {"id": 2}], [{"id": 3}]], limit=2)
    assert rows == [{"id": 1}, {"id": 2}]


def test_groups_sum_per_name() -> None:
    """A group with members on two workers counts both workers' members."""
    assert merge(GROUPS, [{"x": 1, "y": 2}, {"x": 3}, None, {"z": "bad"}]) == {"x": 4, "y": 2}


def test_connection_groups_come_from_the_owner() -> None:
    """Only the worker holding the connection answers a list; None when nobody does."""
    assert merge(CONNECTION_GROUPS, [None, ["b", "a"], None]) == ["a", "b"]
    assert merge(CONNECTION_GROUPS, [None, None]) is None


def test_unknown_kind_is_a_clear_error() -> None:
    """A query kind nobody knows names the known ones."""
    with pytest.raises(ValueError, match="Unknown query kind 'nope'"):
        merge("nope", [])


def test_missing_workers_are_the_expected_ones_that_did_not_reply() -> None:
    """Registered and configured workers are expected; repliers are subtracted."""
    expected = expected_workers(["http://a/"], ["http://b", ""])
    assert expected == {"http://a", "http://b"}
    assert missing_workers(expected, ["http://a", "http://c"]) == ("http://b",)
    answer = Answer(3, ("http://a",), ("http://b",))
    assert not answer.complete
    assert answer.as_dict()["workers_missing"] == ["http://b"]
    assert json.dumps(answer.as_dict())


class PresenceHub(Hub):
    """A hub whose connections the tests register directly."""


def make_connection(cid: str, user: str | None) -> HubConnection:
    async def write(payload: Any) -> None:
        return None

    return HubConnection(
        cid,
        PresenceHub,
        hub_options(PresenceHub),
        JsonHubProtocol(),
        {},
        "WebSockets",
        write,
        None,
        user,
    )


@pytest.fixture
async def connected() -> Any:
    manager = get_lifetime_manager(PresenceHub)
    connections = [
        make_connection("c1", "alice"),
        make_connection("c2", "alice"),
        make_connection("c3", "bob"),
        make_connection("c4", None),
    ]
    for connection in connections:
        await manager.on_connected(connection)
    await manager.add_to_group("c1", "room")
    await manager.add_to_group("c3", "room")
    await manager.add_to_group("c3", "other")
    yield connections
    for connection in connections:
        await manager.on_disconnected(connection)


async def test_one_process_answers_exactly(connected: list[HubConnection]) -> None:
    """Without a backplane every query is answered from this process's memory."""
    presence = get_hub_context(PresenceHub).presence
    count = await presence.connection_count()
    assert count.value == 4 and count.complete and len(count.workers_replied) == 1
    assert (await presence.user_connection_count("alice")).value == 2
    assert (await presence.user_online("bob")).value is True
    assert (await presence.user_online("carol")).value is False
    assert (await presence.user_connections("alice")).value == ["c1", "c2"]
    assert (await presence.group_member_count("room")).value == 2
    assert (await presence.group_member_count("nobody")).value == 0
    assert (await presence.connection_groups("c3")).value == ["other", "room"]
    assert (await presence.connection_groups("gone")).value is None
    assert (await presence.groups()).value == {"other": 1, "room": 2}
    rows = (await presence.connections(limit=3)).value
    assert len(rows) == 3 and rows[0]["id"] == "c1" and rows[0]["user"] == "alice"


async def test_bad_names_are_clear_errors(connected: list[HubConnection]) -> None:
    """Empty or non-string ids fail before anything is sent."""
    presence = get_hub_context(PresenceHub).presence
    with pytest.raises(ValueError, match="A user id must be a non-empty string"):
        await presence.user_online("")
    with pytest.raises(ValueError, match="A group name"):
        await presence.group_member_count(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="The limit must be a whole number >= 1"):
        await presence.connections(limit=0)


async def test_close_connection_sends_close_with_reason(connected: list[HubConnection]) -> None:
    """Closing a local connection aborts it with the reason and allowReconnect."""
    ctx = get_hub_context(PresenceHub)
    assert await ctx.close_connection("c2", reason="maintenance", allow_reconnect=True)
    close = connected[1].close_message
    assert close is not None and close.error == "maintenance" and close.allow_reconnect
    assert not await ctx.close_connection("unknown")


def test_sync_context_mirrors_the_async_one() -> None:
    """The sync context answers from a thread without an event loop."""
    presence = get_sync_hub_context(PresenceHub).presence
    answer = presence.connection_count()
    assert answer.value == 0 and answer.complete
    assert presence.groups().value == {}
    assert get_sync_hub_context(PresenceHub).close_connection("nobody") is False


class HookedHub(Hub):
    """Records the presence hooks it receives."""

    events: ClassVar[list[str]] = []

    async def on_user_first_connected(self, user_id: str) -> None:
        self.events.append(f"first:{user_id}:{self.context.connection_id}")

    async def on_user_last_disconnected(self, user_id: str) -> None:
        self.events.append(f"last:{user_id}:{self.context.connection_id}")


async def test_hooks_fire_on_first_and_last_connection_of_a_user() -> None:
    """One process: the first connection of a user and the end of their last one."""
    tracker = tracker_for(HookedHub)
    assert tracker is not None and tracker_for(PresenceHub) is None
    first, second = make_connection("h1", "zoe"), make_connection("h2", "zoe")
    anonymous = make_connection("h3", None)
    for connection in (first, second, anonymous):
        connection.hub_cls = HookedHub
        connection.caller_context = HubCallerContext(connection)
        tracker.connected(connection)
    tracker.disconnected(first)
    tracker.disconnected(anonymous)
    tracker.disconnected(second)
    tracker.disconnected(second)  # twice: counted once
    while tracker._tasks:
        await asyncio.gather(*tracker._tasks)
    assert HookedHub.events == ["first:zoe:h1", "last:zoe:h2"]
    assert tracker.local == {} and not tracker._locks


async def test_registry_roster_keeps_live_workers_and_forgets_dead_ones() -> None:
    """A report adds this worker; names whose entry expired are dropped on the next report."""
    from django.core.cache import cache

    from signalr_django.presence import registry

    await cache.aset(registry.ROSTER_KEY, {"dead:1": 0.0, "alive:2": 0.0})
    await cache.aset(registry.entry_key("alive:2"), {"name": "alive:2"})
    try:
        await registry.report_once()
        me = registry.worker_name()
        roster = await cache.aget(registry.ROSTER_KEY)
        assert set(roster) == {me, "alive:2"}
        entries = await registry.entries()
        assert set(entries) == {me, "alive:2"}
        assert entries[me]["pid"] > 0 and "hubs" in entries[me]
    finally:
        await cache.adelete_many([registry.ROSTER_KEY, registry.entry_key("alive:2")])
        await cache.adelete(registry.entry_key(registry.worker_name()))


def test_management_command_needs_a_backplane() -> None:
    """With the in-memory layer the command says it cannot reach the workers."""
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="cannot reach the workers: there is no backplane"):
        call_command("signalr", "status")
