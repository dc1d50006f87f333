"""Hubs for the sync-method and typed-client end-to-end tests (tests/e2e/test_sync_hub.py)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from signalr_django import Hub, Sent, client_method, hub_method


class SyncTestHub(Hub):
    """Plain `def` methods that send, change groups and ask the caller for a result."""

    options = {"ENABLE_DETAILED_ERRORS": True, "MAXIMUM_GROUPS_PER_CLIENT": 3}

    def join(self, group: str) -> str:
        self.groups.add_to_group(self.context.connection_id, group)
        self.clients.group(group).send("Receive", "joined", self.context.connection_id)
        return group

    def leave(self, group: str) -> None:
        self.groups.remove_from_group(self.context.connection_id, group)

    def say(self, group: str, text: str) -> str:
        self.clients.group(group).send("Receive", "group", text)
        self.clients.caller.send("Receive", "caller", text)
        self.clients.others.send("Receive", "others", text)
        return "said"

    @hub_method(thread_sensitive=False)  # waiting for a client must not hold the sync thread
    def ask_caller(self, question: str) -> object:
        return self.clients.caller.invoke("GetAnswer", question, timeout=30).result()

    def ask_on_sync_thread(self, question: str) -> object:
        return self.clients.caller.invoke("GetAnswer", question, timeout=30).result()


class TestClient(Protocol):
    """The client methods TypedTestHub calls."""

    def receive_message(self, user: str, text: str) -> Awaitable[None]: ...

    @client_method(name="notify")
    def notice(self, text: str) -> Awaitable[None]: ...

    def get_answer(self, question: str) -> Sent[str]: ...


class TypedTestHub(Hub[TestClient]):
    """Sends through the typed clients, from async and def methods."""

    async def send_message(self, user: str, text: str) -> None:
        await self.clients.all.receive_message(user, text)

    def send_message_sync(self, user: str, text: str) -> None:
        self.clients.others.receive_message(user, text)
        self.clients.caller.notice(f"sent {text}")

    async def ask(self, question: str) -> str:
        return await self.clients.caller.get_answer(question)

    @hub_method(thread_sensitive=False)
    def ask_sync(self, question: str) -> str:
        return self.clients.caller.get_answer(question).result()
