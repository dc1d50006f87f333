"""REST operations over presence answers: partial answers, users' connections, groups."""

from __future__ import annotations

from typing import Any

import pytest

from signalr_django.exceptions import ConnectionNotFoundError
from signalr_django.presence.answer import Answer
from signalr_django.rest import ops

HUB = object  # the fake context ignores the hub class


class FakePresence:
    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        self.missing = missing
        self.users = {"ann": ["c1", "c2"]}
        self.groups: dict[str, list[str]] = {"c1": ["room"], "c2": []}

    def _answer(self, value: Any) -> Answer[Any]:
        return Answer(value, ("w1",), self.missing)

    def user_connections(self, user: str) -> Answer[list[str]]:
        return self._answer(self.users.get(user, []))

    def user_connection_count(self, user: str) -> Answer[int]:
        return self._answer(len(self.users.get(user, [])))

    def group_member_count(self, group: str) -> Answer[int]:
        return self._answer(sum(group in g for g in self.groups.values()))

    def connection_groups(self, connection_id: str) -> Answer[list[str] | None]:
        return self._answer(self.groups.get(connection_id))


class FakeGroups:
    def __init__(self, presence: FakePresence) -> None:
        self.presence = presence
        self.changes: list[tuple[str, str, str]] = []

    def add_to_group(self, connection_id: str, group: str) -> None:
        if connection_id == "gone":
            raise ConnectionNotFoundError("gone")
        self.changes.append(("add", connection_id, group))

    def remove_from_group(self, connection_id: str, group: str) -> None:
        self.changes.append(("remove", connection_id, group))


class FakeContext:
    def __init__(self, presence: FakePresence) -> None:
        self.presence = presence
        self.groups = FakeGroups(presence)
        self.closed: list[tuple[str, str | None]] = []

    def close_connection(self, connection_id: str, reason: str | None = None) -> bool:
        self.closed.append((connection_id, reason))
        return True


@pytest.fixture
def context(monkeypatch: pytest.MonkeyPatch) -> FakeContext:
    fake = FakeContext(FakePresence())
    monkeypatch.setattr(ops, "get_sync_hub_context", lambda hub: fake)
    return fake


def test_existence_answers(context: FakeContext) -> None:
    assert ops.user_exists(HUB, "ann") is True
    assert ops.user_exists(HUB, "bob") is False
    assert ops.group_exists(HUB, "room") is True
    assert ops.group_exists(HUB, "hall") is False
    assert ops.connection_exists(HUB, "c2") is True
    assert ops.connection_exists(HUB, "c9") is False
    assert ops.user_in_group(HUB, "ann", "room") is True
    assert ops.user_in_group(HUB, "ann", "hall") is False


def test_a_missing_worker_makes_no_unknown(context: FakeContext) -> None:
    """Yes stays yes when a worker is missing; no becomes "unknown" (503)."""
    context.presence.missing = ("http://w2",)
    assert ops.user_exists(HUB, "ann") is True
    with pytest.raises(ops.IncompleteAnswer, match="http://w2"):
        ops.user_exists(HUB, "bob")
    with pytest.raises(ops.IncompleteAnswer):
        ops.connection_exists(HUB, "c9")
    with pytest.raises(ops.IncompleteAnswer):
        ops.user_in_group(HUB, "ann", "hall")


def test_user_groups_apply_to_each_connection(context: FakeContext) -> None:
    context.presence.users["ann"].append("gone")  # ended between the query and the change
    ops.add_user_to_group(HUB, "ann", "hall")
    ops.remove_user_from_all_groups(HUB, "ann")
    assert context.groups.changes == [
        ("add", "c1", "hall"),
        ("add", "c2", "hall"),
        ("remove", "c1", "room"),
    ]


def test_leaving_every_group_of_an_unknown_connection(context: FakeContext) -> None:
    with pytest.raises(ConnectionNotFoundError):
        ops.remove_connection_from_all_groups(HUB, "c9")


def test_closing_a_user_spares_the_excluded(context: FakeContext) -> None:
    ops.close_user_connections(HUB, "ann", "bye", ["c2"])
    assert context.closed == [("c1", "bye")]


def test_operations_run_outside_the_callers_context() -> None:
    """The request's context variables (asgiref's thread-sensitive executor) stay behind."""
    import contextvars

    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")

    @ops.detached
    def seen() -> str:
        return marker.get()

    marker.set("request")
    assert seen() == "none"
    assert marker.get() == "request"
