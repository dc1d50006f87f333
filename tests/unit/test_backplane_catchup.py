"""The backplane's catch-up after a resubscription, on a scripted history (no Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signalr_django.lifetime import history as history_module
from signalr_django.lifetime.backplane import Backplane


class ScriptedHistory:
    """Records marks; `read` answers from a list of (id, message) entries."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.marks: list[dict[str, Any]] = []
        self.reads: list[tuple[str, str]] = []
        self.trimmed = False

    async def publish(self, hub_key: str, channel: str, message: dict[str, Any]) -> str:
        self.marks.append(dict(message))
        return "0-0"

    async def read(
        self, hub_key: str, after: str, before: str
    ) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        self.reads.append((after, before))
        low = tuple(map(int, after.split("-")))
        high = tuple(map(int, before.split("-")))
        inside = [
            (i, dict(m)) for i, m in self.entries if low < tuple(map(int, i.split("-"))) < high
        ]
        return inside, self.trimmed

    def watch(self, callback: Any) -> bool:
        return True

    def group_channel(self, group: str) -> str:
        return group


class Layer:
    async def new_channel(self, prefix: str = "") -> str:
        return prefix + "me"

    async def receive(self, channel: str) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError


async def make() -> tuple[Backplane, ScriptedHistory, list[str]]:
    backplane = Backplane(Layer(), request_timeout=1.0)
    history = ScriptedHistory()
    backplane.history = history  # type: ignore[assignment]
    delivered: list[str] = []

    async def on_send(message: dict[str, Any]) -> None:
        delivered.append(message["n"])

    backplane.on("signalr.send", on_send)
    backplane.hubs["hub"] = object()
    await backplane.start()
    return backplane, history, delivered


def send(sid: str, name: str, origin: str = "other") -> dict[str, Any]:
    return {"type": "signalr.send", "h": "hub", "n": name, "s": sid, "o": origin}


def mark(backplane: Backplane, sid: str, token: str | None = None) -> dict[str, Any]:
    if token is None:
        token = backplane._syncing.get("hub") or backplane._baselines.get("hub")
    return {"type": "signalr.mark", "h": "hub", "t": token, "s": sid, "o": backplane.channel}


async def test_live_sends_are_delivered_once_in_order() -> None:
    """A send seen twice (live and from the history) is delivered once."""
    backplane, _, delivered = await make()
    backplane.track("hub")
    await backplane._handle(mark(backplane, "5-0"))
    for message in (send("6-0", "a"), send("7-0", "b"), send("7-0", "b"), send("6-5", "x")):
        await backplane._handle(message)
    assert delivered == ["a", "b"]
    await backplane.stop()


async def test_resubscribing_worker_catches_up_then_goes_live() -> None:
    """After a reconnect live sends wait for the mark; the gap comes from the history."""
    backplane, history, delivered = await make()
    backplane.track("hub")
    await backplane._handle(mark(backplane, "5-0"))
    await backplane._handle(send("6-0", "a"))
    backplane._on_reconnect(None)
    history.entries = [
        ("6-0", send("6-0", "a")),
        ("7-0", send("7-0", "b")),
        ("8-0", send("8-0", "own", origin=str(backplane.channel))),
        ("9-0", {"type": "signalr.mark", "h": "hub"}),
        ("10-0", send("10-0", "c")),
    ]
    await backplane._handle(send("10-0", "c"))  # live, before the mark: from the history
    await backplane._handle(mark(backplane, "11-0"))
    await backplane._handle(send("10-0", "c"))  # a late duplicate
    await backplane._handle(send("12-0", "d"))
    assert delivered == ["a", "b", "c", "d"]
    assert history.reads == [("6-0", "11-0")]
    await backplane.stop()


async def test_marks_of_an_earlier_round_are_ignored() -> None:
    """Only the current round's mark ends a resynchronisation."""
    backplane, _, delivered = await make()
    backplane.track("hub")
    await backplane._handle(mark(backplane, "5-0"))
    backplane._on_reconnect(None)
    await backplane._handle(mark(backplane, "6-0", token="stale"))
    await backplane._handle(send("7-0", "a"))
    assert delivered == [] and "hub" in backplane._syncing
    await backplane.stop()


async def test_history_ids_going_backwards_read_it_all() -> None:
    """A history recreated with lower ids (Redis clock behind) is read from its start."""
    backplane, history, delivered = await make()
    backplane.track("hub")
    await backplane._handle(mark(backplane, "500-0"))
    backplane._on_reconnect(None)
    history.entries = [("3-0", send("3-0", "a")), ("4-0", send("4-0", "b"))]
    await backplane._handle(mark(backplane, "5-0"))
    await backplane._handle(send("6-0", "c"))
    assert delivered == ["a", "b", "c"]
    assert history.reads == [("0-0", "5-0")]
    await backplane.stop()


async def test_a_trimmed_history_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """Sends trimmed before a worker could read them are reported, the rest delivered."""
    backplane, history, delivered = await make()
    backplane.track("hub")
    await backplane._handle(mark(backplane, "5-0"))
    backplane._on_reconnect(None)
    history.entries = [("90-0", send("90-0", "late"))]
    history.trimmed = True
    gaps = history_module.counters["gaps"]
    await backplane._handle(mark(backplane, "100-0"))
    assert delivered == ["late"]
    assert history_module.counters["gaps"] == gaps + 1
    assert "history too short" in caplog.text
    await backplane.stop()
