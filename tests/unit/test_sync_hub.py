"""Sends, group changes and client results from `def` hub methods; typed client proxies."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any, Protocol

import pytest

import signalr_django
from signalr_django import (
    Hub,
    HubConfigurationError,
    LimitExceededError,
    Sent,
    client_method,
    get_hub_context,
    get_sync_hub_context,
    hub_method,
    map_hub,
)
from signalr_django.conf import hub_options
from signalr_django.core.connection import HubConnection
from signalr_django.dispatch.dispatcher import get_dispatcher
from signalr_django.dispatch.handler import get_handler
from signalr_django.hub import HubCallerContext
from signalr_django.lifetime.manager import get_lifetime_manager
from signalr_django.protocol import Completion, Invocation, JsonHubProtocol
from signalr_django.server import Outbound
from signalr_django.typed import returns_value


class ChatClient(Protocol):
    def receive_message(self, user: str, text: str) -> Awaitable[None]: ...

    @client_method(name="notify")
    def notice(self, text: str) -> Awaitable[None]: ...

    def get_name(self, prompt: str) -> Sent[str]: ...


class SyncHub(Hub):
    options = {"MAXIMUM_GROUPS_PER_CLIENT": 2, "ENABLE_DETAILED_ERRORS": True}

    def join_and_shout(self, group: str) -> str:
        cid = self.context.connection_id
        self.groups.add_to_group(cid, group)
        self.clients.group(group).send("Shout", group)
        self.clients.caller.send("Caller", 1)
        self.clients.others.send("Others", 2)
        self.clients.others_in_group(group).send("OthersInGroup", 3)
        self.groups.remove_from_group(cid, group)
        self.clients.group(group).send("Shout", "after leaving")
        return "done"

    @hub_method(thread_sensitive=False)
    def ask(self) -> Any:
        return self.clients.caller.invoke("GetName", "who?", timeout=60).result()

    def ask_on_sync_thread(self) -> Any:
        return self.clients.caller.invoke("GetName", "who?", timeout=60).result()

    def join(self, group: str) -> None:
        self.groups.add_to_group(self.context.connection_id, group)

    async def forget(self) -> None:
        self.clients.caller.send("Forgotten")  # no await: nothing is sent

    async def awaited_twice(self) -> str:
        sent = self.clients.caller.send("Once")
        await sent
        try:
            await sent
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    async def result_on_loop(self) -> str:
        sent = self.clients.caller.send("Never")
        try:
            sent.result()
        except RuntimeError as exc:
            return str(exc)
        finally:
            await sent
        return "no error"


class TypedHub(Hub[ChatClient]):
    options = {"ENABLE_DETAILED_ERRORS": True}

    async def speak(self, text: str) -> None:
        await self.clients.all.receive_message("async", text)
        await self.clients.caller.notice(text)

    def speak_sync(self, text: str) -> None:
        self.clients.all.receive_message("def", text)
        self.clients.group("nobody").receive_message("def", text)
        self.clients.client(self.context.connection_id).notice(text)

    async def name(self) -> str:
        return await self.clients.caller.get_name("async?")

    @hub_method(thread_sensitive=False)
    def name_sync(self) -> str:
        return self.clients.caller.get_name("def?").result()

    def result_from_many(self) -> None:
        self.clients.all.get_name("x")


class FakeClient:
    """A connection of `hub` whose writes land in a list; answers client results."""

    def __init__(self, hub: type[Hub[Any]], connection_id: str, answer: Any = None) -> None:
        self.hub = hub
        self.sent: list[dict[str, Any]] = []
        self.answer = answer
        client = self

        class Recording(Outbound):
            def write(self, payload: Any) -> int:
                for record in payload.split("\x1e"):
                    if record:
                        client.received(json.loads(record))
                return 0

            def pending(self) -> int:
                return 0

        self.connection = HubConnection(
            connection_id,
            hub,
            hub_options(hub),
            JsonHubProtocol(),
            {},
            "WebSockets",
            Recording(),
            None,
            None,
        )
        self.connection.caller_context = HubCallerContext(self.connection)

    def received(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message.get("type") == 1 and message.get("invocationId"):
            reply = Completion(message["invocationId"], result=self.answer(*message["arguments"]))
            asyncio.get_running_loop().create_task(self.send(reply))

    async def send(self, message: Any) -> None:
        await get_dispatcher(self.hub).dispatch(self.connection, message)

    async def completion(self, invocation_id: str) -> dict[str, Any]:
        for _ in range(2000):
            for message in self.sent:
                if message.get("type") == 3 and message.get("invocationId") == invocation_id:
                    return message
            await asyncio.sleep(0.01)
        raise AssertionError(f"no completion {invocation_id} in {self.sent}")

    def calls(self) -> list[tuple[str, list[Any]]]:
        return [(m["target"], m["arguments"]) for m in self.sent if m.get("type") == 1]


@pytest.fixture
async def pair() -> Any:
    """Two connected clients of each hub."""
    clients = {
        hub: (FakeClient(hub, f"{hub.__name__}-a", lambda p: f"name for {p}"),
              FakeClient(hub, f"{hub.__name__}-b"))
        for hub in (SyncHub, TypedHub)
    }  # fmt: skip
    for hub, (a, b) in clients.items():
        await get_lifetime_manager(hub).on_connected(a.connection)
        await get_lifetime_manager(hub).on_connected(b.connection)
    yield clients
    for hub, (a, b) in clients.items():
        await get_handler(hub).disconnected(a.connection, None)
        await get_handler(hub).disconnected(b.connection, None)


async def test_def_method_sends_and_group_changes_take_effect(pair: Any) -> None:
    """A def method's sends and group changes all happen, before its Completion."""
    a, b = pair[SyncHub]
    await b.send(Invocation("Join", ["room"], "0"))
    await b.completion("0")
    await a.send(Invocation("JoinAndShout", ["room"], "1"))
    done = await a.completion("1")
    assert done.get("result") == "done"
    assert a.calls() == [("Shout", ["room"]), ("Caller", [1])]
    assert b.calls() == [("Shout", ["room"]), ("Others", [2]), ("OthersInGroup", [3]),
                         ("Shout", ["after leaving"])]  # fmt: skip
    assert a.sent.index(done) > max(i for i, m in enumerate(a.sent) if m.get("type") == 1)


async def test_def_method_gets_a_client_result(pair: Any) -> None:
    """`invoke(...).result()` in a def method waits for the caller's answer."""
    a, _ = pair[SyncHub]
    await a.send(Invocation("Ask", [], "1"))
    assert (await a.completion("1")).get("result") == "name for who?"


async def test_client_result_on_the_sync_thread_is_refused(pair: Any) -> None:
    """A thread-sensitive def method asking for a client result fails at once, with the fix."""
    a, _ = pair[SyncHub]
    await a.send(Invocation("AskOnSyncThread", [], "1"))
    error = (await a.completion("1"))["error"]
    assert "thread_sensitive=False" in error
    assert a.calls() == []


async def test_def_method_sees_a_cap_as_an_exception(pair: Any) -> None:
    """A group change over the cap raises LimitExceededError inside the def method."""
    a, _ = pair[SyncHub]
    for i, group in enumerate(["g1", "g2", "g3"]):
        await a.send(Invocation("Join", [group], str(i)))
    assert "error" not in await a.completion("1")
    error = (await a.completion("2"))["error"]
    assert "MAXIMUM_GROUPS_PER_CLIENT" in error


async def test_forgotten_await_logs_an_error(pair: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A send made in async code and never awaited sends nothing and logs an ERROR naming it."""
    a, _ = pair[SyncHub]
    with caplog.at_level(logging.ERROR, logger="signalr_django"):
        await a.send(Invocation("Forget", [], "1"))
        await a.completion("1")
    assert a.calls() == []
    assert any("'Forgotten'" in r.getMessage() and "never awaited" in r.getMessage()
               for r in caplog.records)  # fmt: skip


async def test_sent_misuse_is_reported(pair: Any) -> None:
    """Awaiting twice, or `.result()` on the loop, raise a RuntimeError that says why."""
    a, _ = pair[SyncHub]
    await a.send(Invocation("AwaitedTwice", [], "1"))
    await a.send(Invocation("ResultOnLoop", [], "2"))
    assert "await it once" in (await a.completion("1"))["result"]
    assert "use `await`" in (await a.completion("2"))["result"]


async def test_typed_clients_send_wire_names(pair: Any) -> None:
    """Protocol methods send their PascalCase (or @client_method) names, async and def."""
    a, b = pair[TypedHub]
    await a.send(Invocation("Speak", ["hi"], "1"))
    await a.completion("1")
    await a.send(Invocation("SpeakSync", ["yo"], "2"))
    await a.completion("2")
    assert a.calls() == [("ReceiveMessage", ["async", "hi"]), ("notify", ["hi"]),
                         ("ReceiveMessage", ["def", "yo"]), ("notify", ["yo"])]  # fmt: skip
    assert b.calls() == [("ReceiveMessage", ["async", "hi"]), ("ReceiveMessage", ["def", "yo"])]


async def test_typed_client_results(pair: Any) -> None:
    """A value-returning Protocol method is a client result on one client, not on many."""
    a, _ = pair[TypedHub]
    await a.send(Invocation("Name", [], "1"))
    await a.send(Invocation("NameSync", [], "2"))
    await a.send(Invocation("ResultFromMany", [], "3"))
    assert (await a.completion("1")).get("result") == "name for async?"
    assert (await a.completion("2")).get("result") == "name for def?"
    error = (await a.completion("3"))["error"]
    assert "clients.caller" in error


async def test_sync_hub_context_is_typed_and_refuses_the_loop(pair: Any) -> None:
    """The sync context sends typed calls from a thread and refuses the server's loop."""
    a, _ = pair[TypedHub]
    context = get_sync_hub_context(TypedHub)

    def from_thread() -> str:
        context.clients.client(a.connection.connection_id).notice("from a thread")
        return context.clients.client(a.connection.connection_id).get_name("ctx?").result()

    assert await asyncio.to_thread(from_thread) == "name for ctx?"
    assert ("notify", ["from a thread"]) in a.calls()
    with pytest.raises(RuntimeError, match="from async code"):
        context.clients.all.notice("on the loop")


async def test_async_hub_context_is_typed(pair: Any) -> None:
    """get_hub_context gives the same typed proxies to await."""
    a, b = pair[TypedHub]
    await get_hub_context(TypedHub).clients.all.receive_message("ctx", "hello")
    assert ("ReceiveMessage", ["ctx", "hello"]) in a.calls()
    assert ("ReceiveMessage", ["ctx", "hello"]) in b.calls()


def test_hub_contexts_need_a_hub_class() -> None:
    """Anything but a Hub subclass is a TypeError at once."""
    for bad in (object, "tests.testapp.hubs.TestHub", SyncHub()):
        with pytest.raises(TypeError, match="Hub subclass"):
            get_hub_context(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Hub subclass"):
            get_sync_hub_context(bad)  # type: ignore[arg-type]


def test_untyped_proxies_refuse_unknown_methods() -> None:
    """An untyped hub's proxies have send (and invoke) only."""
    proxy = get_hub_context(SyncHub).clients.all
    with pytest.raises(AttributeError, match="receive_message"):
        proxy.receive_message  # type: ignore[attr-defined]  # noqa: B018


def test_protocol_method_named_like_a_proxy_method_is_refused() -> None:
    """A Protocol method called `send` would be shadowed: refused with the fix in the message."""

    class Clashing(Protocol):
        def send(self, text: str) -> Awaitable[None]: ...

    class ClashHub(Hub[Clashing]):
        pass

    with pytest.raises(HubConfigurationError, match='client_method\\(name="Send"\\)'):
        map_hub("hubs/clash", ClashHub)


def test_returns_value() -> None:
    """Sends return Awaitable[None]/None; anything else is a client result."""

    class P(Protocol):
        def a(self) -> Awaitable[None]: ...
        def b(self) -> Awaitable[str]: ...
        def c(self) -> None: ...
        async def d(self) -> int: ...
        async def e(self) -> None: ...
        def f(self) -> Sent[list[int]]: ...
        def g(self) -> Awaitable[Undefined]: ...  # type: ignore[name-defined]  # noqa: F821
        def h(self): ...  # type: ignore[no-untyped-def]

    assert [returns_value(getattr(P, n)) for n in "abcdefgh"] == [
        False, True, False, True, False, True, True, False
    ]  # fmt: skip


def test_public_api_exports() -> None:
    """Every exception a user may catch, and the typed-client names, come from the package."""
    for name in signalr_django.__all__:
        assert getattr(signalr_django, name) is not None
    for name in ("HubException", "ClientResultError", "ConnectionGoneError",
                 "ConnectionNotFoundError", "LimitExceededError", "BackplaneError",
                 "HubConfigurationError", "Sent", "client_method"):  # fmt: skip
        assert name in signalr_django.__all__
    assert issubclass(LimitExceededError, signalr_django.HubException)


async def test_sent_goes_into_tasks(pair: Any) -> None:
    """create_task and TaskGroup take a Sent as they took a coroutine; close() abandons one."""
    a, _ = pair[SyncHub]
    proxy = get_hub_context(SyncHub).clients.client(a.connection.connection_id)
    await asyncio.create_task(proxy.send("Task", 1))
    async with asyncio.TaskGroup() as group:
        group.create_task(proxy.send("Group", 2))
        asked = group.create_task(proxy.invoke("GetName", "task?", timeout=30))
    proxy.send("Closed").close()
    assert asked.result() == "name for task?"
    assert [c for c in a.calls() if c[0] != "GetName"] == [("Task", [1]), ("Group", [2])]


def test_typescript_reads_sent_as_its_value() -> None:
    """The TypeScript generator sees `Sent[T]` client results as T, as it does Awaitable[T]."""
    from signalr_django.typescript.types import unwrap_awaitable

    assert unwrap_awaitable(Sent[str]) is str
    assert unwrap_awaitable(Awaitable[int]) is int
