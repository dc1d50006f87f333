"""`signalr_django.testing`: the in-process communicator on the in-memory layer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from signalr_django import Hub, HubException, authorize
from signalr_django.protocol import Close, Completion, Invocation
from signalr_django.testing import (
    ClientInvocation,
    ClientStream,
    ConnectionClosed,
    ConnectionRejected,
    HubCommunicator,
    HubInvocationError,
)

gone: list[tuple[str, str | None]] = []


class RoomHub(Hub):
    async def on_connected(self) -> None:
        if self.context.query.get("refuse"):
            raise HubException("not today")
        self.context.items["greeting"] = self.context.headers.get("x-greeting", "")

    async def on_disconnected(self, exception: Exception | None) -> None:
        gone.append((self.context.connection_id, str(exception) if exception else None))

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def echo(self, value: Any) -> Any:
        return value

    async def refuse(self) -> None:
        raise HubException("nope")

    async def boom(self) -> None:
        raise RuntimeError("hidden detail")

    async def who(self) -> dict[str, Any]:
        context = self.context
        return {
            "id": context.connection_id,
            "user": context.user_identifier,
            "anonymous": not context.user.is_authenticated,
            "greeting": context.items["greeting"],
            "room": context.query.get("room"),
        }

    async def join(self, room: str) -> None:
        await self.groups.add_to_group(self.context.connection_id, room)

    async def leave(self, room: str) -> None:
        await self.groups.remove_from_group(self.context.connection_id, room)

    async def say(self, room: str, text: str) -> None:
        await self.clients.group(room).send("ReceiveMessage", self.context.connection_id, text)

    async def notify(self, text: str) -> None:
        await self.clients.caller.send("Notice", text)
        await self.clients.others.send("Broadcast", text)

    async def tell(self, user_id: str, text: str) -> None:
        await self.clients.user(user_id).send("Private", text)

    async def counter(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
            await asyncio.sleep(0)

    async def forever(self) -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            await asyncio.sleep(0.001)

    async def broken_stream(self) -> AsyncIterator[int]:
        yield 1
        raise HubException("stream broke")

    async def total(self, items: AsyncIterator[int]) -> int:
        return sum([item async for item in items])

    async def ask(self, question: str) -> Any:
        return await self.clients.caller.invoke("GetAnswer", question)

    async def kick(self) -> None:
        self.context.abort()

    def sync_shout(self, text: str) -> str:
        async_to_sync(self.clients.caller.send)("Shout", text.upper())
        return text.upper()

    def sync_kick(self) -> None:
        self.context.abort()

    def count_users(self) -> int:
        return User.objects.count()

    def add_user(self, name: str) -> int:
        return User.objects.create(username=name).pk


@authorize
class PrivateHub(Hub):
    async def secret(self) -> str:
        return f"for {self.context.user.username}"


@pytest.fixture(autouse=True)
def fresh() -> None:
    gone.clear()


async def test_invoke_returns_results_and_raises_the_servers_error_text() -> None:
    async with HubCommunicator(RoomHub) as comm:
        assert await comm.invoke("Add", 2, 3) == 5
        assert await comm.invoke("echo", {"a": [1, None]}) == {"a": [1, None]}
        assert await comm.invoke("Join", "room") is None
        with pytest.raises(HubInvocationError) as refused:
            await comm.invoke("Refuse")
        assert refused.value.message == (
            "An unexpected error occurred invoking 'Refuse' on the server. HubException: nope"
        )
        with pytest.raises(HubInvocationError) as failed:
            await comm.invoke("Boom")
        assert "hidden detail" not in failed.value.message
        with pytest.raises(HubInvocationError, match="does not exist"):
            await comm.invoke("Missing")
        with pytest.raises(HubInvocationError, match="Failed to invoke 'Add'"):
            await comm.invoke("Add", "x", 1)
        assert await comm.invoke("Add", 1, 1) == 2  # the connection lives on


async def test_the_connection_sees_user_headers_query_and_items() -> None:
    comm = HubCommunicator(RoomHub, headers={"X-Greeting": "hello"}, query={"room": "blue"})
    await comm.connect()
    try:
        who = await comm.invoke("Who")
        assert who == {
            "id": comm.connection_id,
            "user": None,
            "anonymous": True,
            "greeting": "hello",
            "room": "blue",
        }
        assert comm.connection.items["greeting"] == "hello"
    finally:
        await comm.disconnect()
    assert gone == [(comm.connection_id, None)]
    with pytest.raises(ConnectionClosed):
        await comm.invoke("Add", 1, 2)


async def test_communicators_reach_each_other_through_groups() -> None:
    async with HubCommunicator(RoomHub) as alice, HubCommunicator(RoomHub) as bob:
        await alice.invoke("Join", "lobby")
        await bob.invoke("Say", "lobby", "hi")
        assert await alice.receive() == ClientInvocation(
            "ReceiveMessage", [bob.connection_id, "hi"]
        )
        await bob.assert_nothing_received()
        assert alice.connection.group_names == {"lobby"}
        await alice.invoke("Leave", "lobby")
        await bob.invoke("Say", "lobby", "anyone?")
        await alice.assert_nothing_received()


async def test_receive_invocation_skips_to_a_target_and_keeps_the_rest() -> None:
    async with HubCommunicator(RoomHub) as alice, HubCommunicator(RoomHub) as bob:
        await alice.invoke("Notify", "x")
        notice = await alice.receive_invocation("Notice")
        assert notice.arguments == ["x"]
        assert await bob.receive_invocation("broadcast") == ClientInvocation("Broadcast", ["x"])
        await alice.assert_nothing_received()
        with pytest.raises(TimeoutError):
            await alice.receive(timeout=0.05)
        with pytest.raises(AssertionError, match="Broadcast"):
            await bob.invoke("Notify", "y")
            await alice.assert_nothing_received()


async def test_server_to_client_streams() -> None:
    async with HubCommunicator(RoomHub) as comm:
        assert await comm.stream("Counter", 3).collect() == [0, 1, 2]
        seen = []
        async for item in comm.stream("Counter", 2):
            seen.append(item)
        assert seen == [0, 1]
        async with comm.stream("Forever") as items:
            async for item in items:
                if item == 3:
                    break
        reader = comm.stream("BrokenStream")
        assert await reader.__anext__() == 1
        with pytest.raises(HubInvocationError, match="stream broke"):
            await reader.__anext__()
        assert await comm.invoke("Add", 1, 2) == 3


async def test_client_to_server_streams() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(1, 5):
            yield i

    async with HubCommunicator(RoomHub) as comm:
        assert await comm.invoke("Total", numbers()) == 10
        upload = ClientStream()
        call = asyncio.create_task(comm.invoke("Total", upload))
        await upload.send(5)
        await upload.send(6)
        await upload.complete()
        assert await call == 11
        failing = ClientStream()
        call = asyncio.create_task(comm.invoke("Total", failing))
        await failing.send(1)
        await failing.complete(error="the source failed")
        with pytest.raises(HubInvocationError):
            await call


async def test_client_results_from_a_handler_or_answered_by_hand() -> None:
    async with HubCommunicator(RoomHub) as comm:
        comm.on("GetAnswer", lambda question: f"answer to {question}")
        assert await comm.invoke("Ask", "life") == "answer to life"

        async def slow(question: str) -> int:
            await asyncio.sleep(0)
            raise ValueError("no idea")

        comm.on("getanswer", slow)
        with pytest.raises(HubInvocationError):
            await comm.invoke("Ask", "why")
        comm.off("GetAnswer")
        call = asyncio.create_task(comm.invoke("Ask", "what"))
        invocation = await comm.receive_invocation("GetAnswer")
        assert invocation == ClientInvocation("GetAnswer", ["what"])
        assert invocation.invocation_id is not None
        await comm.answer(invocation, 42)
        assert await call == 42


async def test_on_connected_refusing_closes_with_its_error() -> None:
    comm = HubCommunicator(RoomHub, query="refuse=1")
    with pytest.raises(ConnectionClosed) as closed:
        await comm.connect()
    assert closed.value.error == "Connection closed with an error. HubException: not today"
    assert comm.closed and comm.close_error == closed.value.error
    assert gone == []  # as in ASP.NET Core: a refused connection never connected


async def test_server_side_abort_closes_the_communicator() -> None:
    async with HubCommunicator(RoomHub) as comm:
        with pytest.raises(ConnectionClosed):
            await comm.invoke("Kick")
        await comm.wait_closed()
        assert comm.closed
        assert comm.close_error is None and not comm.close_allows_reconnect
        with pytest.raises(ConnectionClosed):
            await comm.receive()
    assert gone == [(comm.connection_id, None)]


async def test_an_abort_from_a_sync_method_closes_the_communicator() -> None:
    async with HubCommunicator(RoomHub) as comm:
        with pytest.raises(ConnectionClosed):
            await comm.invoke("SyncKick")
        await comm.wait_closed()
    assert [(comm.connection_id, None)] == gone


async def test_a_client_close_message_ends_the_connection() -> None:
    async with HubCommunicator(RoomHub) as comm:
        await comm.send_message(Close("bye"))
        await comm.wait_closed()
    assert gone == [(comm.connection_id, "bye")]


async def test_raw_messages_and_the_message_log() -> None:
    async with HubCommunicator(RoomHub) as comm:
        await comm.send_message(Invocation("Add", [1, 2], "custom-id"))
        await comm._wait_for(lambda: any(isinstance(m, Completion) for m in comm.messages), 5, "")
        (completion,) = [m for m in comm.messages if isinstance(m, Completion)]
        assert completion.invocation_id == "custom-id" and completion.result == 3
        await comm.send("Notify", "fire and forget")
        assert (await comm.receive()).target == "Notice"


async def test_messagepack() -> None:
    async with HubCommunicator(RoomHub, protocol="messagepack") as comm:
        assert await comm.invoke("Echo", b"\x00\xff") == b"\x00\xff"
        assert await comm.stream("Counter", 2).collect() == [0, 1]
        await comm.invoke("Join", "m")
        await comm.invoke("Say", "m", "packed")
        assert (await comm.receive()).arguments == [comm.connection_id, "packed"]


async def test_the_hub_path_and_unknown_protocols() -> None:
    async with HubCommunicator("tests.unit.test_testing.RoomHub") as comm:
        assert await comm.invoke("Add", 1, 1) == 2
    with pytest.raises(ValueError, match="protocol"):
        HubCommunicator(RoomHub, protocol="xml")


async def test_authorization_applies() -> None:
    with pytest.raises(ConnectionRejected):
        await HubCommunicator(PrivateHub).connect()
    user = User(username="ada")
    async with HubCommunicator(PrivateHub, user=user) as comm:
        assert await comm.invoke("Secret") == "for ada"
        assert comm.user is user


class JsonOnlyHub(RoomHub):
    options = {"SUPPORTED_PROTOCOLS": ["json"]}


async def test_a_refused_handshake_rejects_the_connection() -> None:
    with pytest.raises(ConnectionRejected, match="'messagepack' is not supported"):
        await HubCommunicator(JsonOnlyHub, protocol="messagepack").connect()
    async with HubCommunicator(JsonOnlyHub) as comm:
        assert await comm.invoke("Add", 1, 2) == 3


class WelcomeHub(RoomHub):
    async def on_connected(self) -> None:
        await self.clients.caller.send("Welcome", self.context.connection_id)


async def test_what_on_connected_sends_is_received() -> None:
    async with HubCommunicator(WelcomeHub, connection_id="w1") as comm:
        assert await comm.receive() == ClientInvocation("Welcome", ["w1"])


async def test_users_are_addressed_across_their_connections() -> None:
    ada, bob = User(pk=1, username="ada"), User(pk=2, username="bob")
    async with (
        HubCommunicator(RoomHub, user=ada) as phone,
        HubCommunicator(RoomHub, user=ada) as laptop,
        HubCommunicator(RoomHub, user=bob) as other,
    ):
        await other.invoke("Tell", "1", "psst")
        assert await phone.receive() == ClientInvocation("Private", ["psst"])
        assert await laptop.receive() == ClientInvocation("Private", ["psst"])
        await other.assert_nothing_received()


async def test_sync_methods_can_send_with_async_to_sync() -> None:
    async with HubCommunicator(RoomHub) as comm:
        assert await comm.invoke("SyncShout", "hey") == "HEY"
        assert await comm.receive() == ClientInvocation("Shout", ["HEY"])


@pytest.mark.django_db(transaction=True)
async def test_sync_methods_use_the_orm() -> None:
    """Sync hub methods run in a worker thread: with `transaction=True` they see the rows
    the test wrote (through the async ORM) and the test sees theirs.

    The last query leaves the worker thread's connection open; pytest-django runs this test
    before the ones without database access, whose sync methods still work because a
    communicator closes that connection when it connects."""
    await User.objects.acreate(username="first")
    async with HubCommunicator(RoomHub) as comm:
        assert await comm.invoke("CountUsers") == 1
        pk = await comm.invoke("AddUser", "second")
    assert await User.objects.filter(pk=pk, username="second").aexists()
