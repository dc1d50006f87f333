"""The pure parts of moving a stateful connection between workers (see `handoff`)."""

from __future__ import annotations

import pathlib

import pytest

from signalr_django.core.reconnect import MessageBuffer
from signalr_django.exceptions import ProtocolError
from signalr_django.transports.handoff import _portable


def test_restore_keeps_the_owners_numbering_and_continues_it() -> None:
    owner = MessageBuffer()
    for text in ("a", "b", "c", "d"):
        owner.track(text)
    owner.ack(2)
    for _ in range(3):
        assert owner.should_process()
    assert owner.ack_due() == 3
    state = owner.export()
    later = MessageBuffer()  # what the new worker buffered while the state was on its way
    later.track("e")
    later.track("f")

    moved = MessageBuffer.restore(state, later)

    assert list(moved.buffer) == [(3, "c"), (4, "d"), (5, "e"), (6, "f")]
    assert moved.total_sent == 6
    assert moved.buffered_bytes == 4
    assert moved.replay_start() == 3
    assert moved.latest_received == 3
    assert moved.ack_due() is None  # 3 was acknowledged by the owner already
    # The client resends from 3: one duplicate skipped, then a new message processed.
    moved.sequence(3)
    assert not moved.should_process()
    assert moved.should_process()
    assert moved.ack_due() == 4
    with pytest.raises(ProtocolError):
        moved.ack(7)


def test_restore_with_nothing_unacknowledged() -> None:
    owner = MessageBuffer()
    owner.track(b"\x01")
    owner.ack(1)
    moved = MessageBuffer.restore(owner.export(), MessageBuffer())
    assert moved.replay_start() == 2
    assert not moved.buffer and moved.buffered_bytes == 0


def test_only_json_items_with_string_keys_move() -> None:
    items = {
        "name": "x",
        "nested": {"a": [1, 2.5, None, True]},
        "path": pathlib.Path("/tmp"),
        1: "not a string key",
        "lock": object(),
    }
    portable, dropped = _portable(items)
    assert portable == {"name": "x", "nested": {"a": [1, 2.5, None, True]}}
    assert dropped == 3


def test_a_move_request_needs_a_proof_for_its_connection_and_channel() -> None:
    from django.core import signing

    from signalr_django.transports.handoff import SALT, _proven

    proof = signing.dumps({"c": "conn", "o": "worker.1"}, salt=SALT)
    assert _proven(proof, "conn", "worker.1")
    assert not _proven(proof, "other", "worker.1")  # another connection
    assert not _proven(proof, "conn", "worker.2")  # state sent to another channel
    assert not _proven(signing.dumps({"c": "conn", "o": "worker.1"}), "conn", "worker.1")
    assert not _proven(proof + "x", "conn", "worker.1")
    assert not _proven(None, "conn", "worker.1")
    assert not _proven("x" * 5000, "conn", "worker.1")


class _Recipient:
    """A connection stand-in that records what the lifetime manager delivers to it."""

    def __init__(self, connection_id: str) -> None:
        self.connection_id = connection_id
        self.received: list[object] = []

    def deliver(self, message: object) -> bool:
        self.received.append(message)
        return False


async def test_an_arriving_connection_takes_its_new_workers_sends_from_the_publication() -> None:
    """Held back locally while arriving; delivered from the worker's own publication only
    if that comes after the move's marker (the old worker has the earlier ones)."""
    from signalr_django.lifetime.manager import HubLifetimeManager

    manager = HubLifetimeManager("tests.handoff")
    here, moving = _Recipient("here"), _Recipient("moving")
    manager.groups["g"] = {"here": here, "moving": moving}
    manager.connections.update(manager.groups["g"])
    manager.arriving.add("moving")

    targets, held = manager._hold_arriving(list(manager.groups["g"].values()))
    assert [t.connection_id for t in targets] == ["here"]
    assert held == ["moving"]

    publication = {"type": "signalr.send", "k": "group", "n": "g", "p": {}, "ar": held}
    await manager._on_send(publication, own=True)  # before the marker: the old worker's
    assert moving.received == [] and here.received == []
    manager.arriving.discard("moving")  # the marker came
    await manager._on_send(publication, own=True)
    assert len(moving.received) == 1 and here.received == []
    # Another worker's send while arriving is the old worker's to deliver.
    manager.arriving.add("moving")
    await manager._on_send({"type": "signalr.send", "k": "group", "n": "g", "p": {}}, own=False)
    assert len(moving.received) == 1 and len(here.received) == 1
