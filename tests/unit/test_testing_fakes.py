"""`signalr_django.testing.make_hub`: one hub method with recording clients and groups."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from signalr_django import ClientResultError, Hub
from signalr_django.testing import (
    FakeClients,
    FakeGroups,
    SentMessage,
    call_method,
    fake_clients,
    fake_groups,
    make_hub,
)
from signalr_django.typed import client_method


class ChatClient(Protocol):
    def receive_message(self, user: str, text: str) -> Awaitable[None]: ...

    @client_method(name="userJoined")
    def user_joined(self, user: str) -> Awaitable[None]: ...

    def get_answer(self, question: str) -> Awaitable[str]: ...


class ChatHub(Hub[ChatClient]):
    async def join(self, room: str) -> None:
        await self.groups.add_to_group(self.context.connection_id, room)
        await self.clients.others_in_group(room).send("UserJoined", self.context.connection_id)

    async def leave(self, room: str) -> None:
        await self.groups.remove_from_group(self.context.connection_id, room)

    async def send_message(self, room: str, text: str) -> None:
        await self.clients.group(room).receive_message(self.context.user_identifier, text)

    async def announce(self, user: str) -> None:
        await self.clients.all.user_joined(user=user)

    async def ask(self, connection_id: str) -> Any:
        return await self.clients.client(connection_id).invoke("GetAnswer", "why?")

    def shout(self, text: str) -> str:
        """A sync method, as written before sends from sync methods were synchronous."""
        async_to_sync(self.clients.all.send)("Shout", text.upper())
        return text.upper()

    def whisper(self, connection_id: str, text: str) -> None:
        """A sync method that sends without awaiting (the proxy's call already happened)."""
        self.clients.client(connection_id).send("Whisper", text)

    def user_name(self) -> str:
        return str(self.context.user.username)

    async def countdown(self, n: int) -> AsyncIterator[int]:
        for i in range(n, 0, -1):
            yield i


class PlainHub(Hub):
    async def notify(self) -> None:
        await self.clients.caller.item_changed(1)


async def test_sends_and_groups_are_recorded_by_address() -> None:
    hub = make_hub(ChatHub, connection_id="c1")
    await hub.join("room")
    await hub.send_message("room", "hi")
    await hub.leave("room")
    clients, groups = fake_clients(hub), fake_groups(hub)
    assert isinstance(clients, FakeClients) and isinstance(groups, FakeGroups)
    assert groups.added == [("c1", "room")]
    assert groups.removed == [("c1", "room")]
    assert clients.others_in_group("room").sent == [("UserJoined", ("c1",))]
    assert clients.group("room").sent == [("ReceiveMessage", (None, "hi"))]
    assert clients.log == [
        SentMessage(("others_in_group", "room"), "UserJoined", ("c1",)),
        SentMessage(("group", "room"), "ReceiveMessage", (None, "hi")),
    ]
    assert clients.all.sent == []


async def test_typed_calls_record_wire_names_and_keyword_arguments() -> None:
    hub = make_hub(ChatHub)
    await hub.announce("ada")
    assert fake_clients(hub).all.sent == [("userJoined", ("ada",))]
    with pytest.raises(AttributeError, match="declares no client method"):
        hub.clients.all.not_declared()


async def test_untyped_hubs_record_pascal_case() -> None:
    hub = make_hub(PlainHub)
    await hub.notify()
    assert fake_clients(hub).caller.sent == [("ItemChanged", (1,))]


async def test_client_results_come_from_results() -> None:
    hub = make_hub(ChatHub)
    with pytest.raises(ClientResultError):
        await hub.ask("c2")
    fake_clients(hub).results["GetAnswer"] = "because"
    assert await hub.ask("c2") == "because"
    fake_clients(hub).results["GetAnswer"] = lambda question: f"{question} because"
    assert await hub.ask("c2") == "why? because"
    assert fake_clients(hub).client("c2").invoked == [("GetAnswer", ("why?",))] * 3


async def test_sync_methods_awaiting_or_not() -> None:
    hub = make_hub(ChatHub)
    assert await call_method(hub.shout, "hey") == "HEY"
    await call_method(hub.whisper, "c9", "psst")
    hub.whisper("c9", "again")  # callable directly too: nothing waits
    assert fake_clients(hub).all.sent == [("Shout", ("HEY",))]
    assert fake_clients(hub).client("c9").sent == [("Whisper", ("psst",)), ("Whisper", ("again",))]


async def test_context_and_streams() -> None:
    ada = User(pk=7, username="ada")
    hub = make_hub(
        ChatHub,
        user=ada,
        headers={"X-Trace": "1"},
        query="room=blue",
        items={"seen": True},
    )
    assert hub.context.user is ada
    assert hub.context.user_identifier == "7"  # USER_ID_PROVIDER: the primary key
    assert hub.context.headers["x-trace"] == "1"
    assert hub.context.query == {"room": "blue"}
    assert hub.context.items == {"seen": True}
    assert await call_method(hub.user_name) == "ada"
    assert await call_method(hub.countdown, 3) == [3, 2, 1]
    anonymous = make_hub(ChatHub)
    assert not anonymous.context.user.is_authenticated


def test_the_accessors_refuse_real_hubs() -> None:
    with pytest.raises(TypeError):
        fake_clients(ChatHub())
