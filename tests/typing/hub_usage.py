"""Usages of the hub API as user code writes them, checked by mypy --strict in a test.

A line ending in `# E: code` must get exactly that error; every other line must be clean.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from signalr_django import Hub, Sent, client_method, get_hub_context, get_sync_hub_context


class ChatClient(Protocol):
    def receive_message(self, user: str, text: str) -> Awaitable[None]: ...

    @client_method(name="notify")
    def notice(self, text: str) -> Awaitable[None]: ...

    def get_name(self, prompt: str) -> Sent[str]: ...


class ChatHub(Hub[ChatClient]):
    async def in_async(self, text: str) -> str:
        await self.clients.all.receive_message("me", text)
        await self.clients.group("room").receive_message("me", text)
        await self.clients.others_in_group("room").notice(text)
        await self.clients.users(["u1", "u2"]).notice(text)
        await self.groups.add_to_group(self.context.connection_id, "room")
        return await self.clients.caller.get_name("who?")

    def in_def(self, text: str) -> str:
        self.clients.all.receive_message("me", text)
        self.clients.client("id").notice(text)
        self.groups.remove_from_group(self.context.connection_id, "room")
        return self.clients.caller.get_name("who?").result()

    async def mistakes(self) -> None:
        await self.clients.all.receive_message("me", 1)  # E: arg-type
        await self.clients.all.send("ReceiveMessage", "me", "x")  # E: attr-defined
        await self.clients.caller.recieve_message("me", "x")  # E: attr-defined
        _count: int = await self.clients.caller.get_name("who?")  # E: assignment
        print(self.context.user.no_such_field)  # E: union-attr

    def user_is_typed(self) -> bool:
        return self.context.user.is_authenticated


class PlainHub(Hub):
    async def in_async(self) -> object:
        await self.clients.all.send("Notice", 1, "two")
        await self.clients.group_except("room", ["id"]).send("Notice")
        return await self.clients.caller.invoke("GetName", timeout=5)

    def in_def(self) -> object:
        self.clients.others.send("Notice")
        self.groups.add_to_group(self.context.connection_id, "room")
        return self.clients.caller.invoke("GetName", timeout=5).result()

    async def mistakes(self) -> None:
        await self.clients.all.invoke("GetName")  # E: attr-defined
        await self.clients.all.receive_message("me", "x")  # E: attr-defined
        await self.clients.all.send(1)  # E: arg-type


def outside_hubs() -> None:
    get_sync_hub_context(ChatHub).clients.all.receive_message("me", "x")
    get_sync_hub_context(ChatHub).clients.user("u1").notice("x")
    get_sync_hub_context(PlainHub).clients.group("room").send("Notice")
    _name: str = get_sync_hub_context(PlainHub).clients.client("id").invoke("GetName")
    get_sync_hub_context(PlainHub).clients.all.receive_message("me", "x")  # E: attr-defined
    get_hub_context(object)  # E: arg-type


async def outside_async() -> None:
    await get_hub_context(ChatHub).clients.all.notice("x")
    await get_hub_context(PlainHub).clients.all.send("Notice")
