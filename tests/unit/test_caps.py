"""Per-connection caps: the call over a cap fails with a clear error; nothing else changes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from signalr_django import Hub
from signalr_django.conf import HubOptions, hub_options
from signalr_django.core import logs
from signalr_django.core.connection import HubConnection
from signalr_django.core.results import ConnectionGoneError, PendingResults
from signalr_django.dispatch.dispatcher import get_dispatcher
from signalr_django.dispatch.handler import get_handler
from signalr_django.exceptions import HandshakeError, LimitExceededError
from signalr_django.hub import HubCallerContext
from signalr_django.lifetime.backplane import Backplane
from signalr_django.lifetime.manager import HubLifetimeManager, get_lifetime_manager
from signalr_django.protocol import (
    Completion,
    Invocation,
    JsonHubProtocol,
    StreamInvocation,
)
from signalr_django.testing import HubCommunicator, HubInvocationError
from signalr_django.users import load_provider

RELEASE: dict[str, asyncio.Event] = {}


class CapsHub(Hub):
    options = {
        "MAXIMUM_PARALLEL_STREAMS_PER_CLIENT": 2,
        "MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT": 2,
        "MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT": 2,
        "MAXIMUM_GROUPS_PER_CLIENT": 2,
        "MAXIMUM_GROUP_NAME_LENGTH": 8,
        "MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT": 4,
    }

    async def echo(self, value: Any) -> Any:
        return value

    async def half(self, value: float) -> float:
        return value / 2

    async def forever(self) -> AsyncIterator[int]:
        while True:
            yield 1
            await asyncio.sleep(3600)

    async def total(self, items: AsyncIterator[int]) -> int:
        return sum([i async for i in items])

    async def ask(self) -> Any:
        return await self.clients.caller.invoke("GetValue")

    async def join(self, group: str) -> None:
        await self.groups.add_to_group(self.context.connection_id, group)

    async def leave(self, group: str) -> None:
        await self.groups.remove_from_group(self.context.connection_id, group)


class FakeClient:
    def __init__(self, connection_id: str) -> None:
        self.sent: list[dict[str, Any]] = []

        async def write(payload: Any) -> None:
            self.sent.extend(json.loads(p) for p in payload.split("\x1e") if p)

        self.connection = HubConnection(
            connection_id,
            CapsHub,
            hub_options(CapsHub),
            JsonHubProtocol(),
            {},
            "WebSockets",
            write,
        )

    async def send(self, message: Any) -> None:
        await get_dispatcher(CapsHub).dispatch(self.connection, message)

    async def completion(self, invocation_id: str) -> dict[str, Any]:
        for _ in range(1000):
            for message in self.sent:
                if message.get("type") == 3 and message.get("invocationId") == invocation_id:
                    return message
            await asyncio.sleep(0.005)
        raise AssertionError(f"no completion {invocation_id} in {self.sent}")

    def invocations(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == 1]


@pytest.fixture(autouse=True)
def quiet_budget() -> Iterator[None]:
    logs._default.reset()
    yield
    logs._default.reset()


@pytest.fixture
async def client() -> AsyncIterator[FakeClient]:
    fake = FakeClient("caps1")
    handler = get_handler(CapsHub)
    await handler.connected(fake.connection)
    yield fake
    await handler.disconnected(fake.connection, None)


def cap_error(target: str, what: str, setting: str, limit: int) -> str:
    return (
        f"Failed to invoke '{target}' due to an error on the server. LimitExceededError: "
        f"{what} (limit {limit}, setting {setting})."
    )


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert all(r.exc_info is None and r.levelno <= logging.WARNING for r in caplog.records)


def test_defaults_exist_and_can_be_overridden() -> None:
    defaults = HubOptions()
    assert defaults.MAXIMUM_PARALLEL_STREAMS_PER_CLIENT == 100
    assert defaults.MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT == 10
    assert defaults.MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT == 100
    assert defaults.MAXIMUM_GROUPS_PER_CLIENT == 1000
    assert defaults.MAXIMUM_GROUP_NAME_LENGTH == 1024
    assert defaults.MAXIMUM_USER_ID_LENGTH == 1024
    assert hub_options(CapsHub).MAXIMUM_GROUPS_PER_CLIENT == 2
    unlimited = defaults.with_overrides({"MAXIMUM_GROUPS_PER_CLIENT": None}, "test")
    assert unlimited.MAXIMUM_GROUPS_PER_CLIENT is None


async def test_server_to_client_streams_over_the_cap_are_refused(
    client: FakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for i in range(2):
            await client.send(StreamInvocation(f"s{i}", "Forever", []))
        await client.send(StreamInvocation("s2", "Forever", []))
        refused = await client.completion("s2")
    assert refused["error"] == cap_error(
        "Forever",
        "Too many server-to-client streams running on this connection",
        "MAXIMUM_PARALLEL_STREAMS_PER_CLIENT",
        2,
    )
    assert client.connection.streams_out is not None
    assert sorted(client.connection.streams_out) == ["s0", "s1"]
    # The connection carries on; once a stream ends, a new one is accepted.
    await client.send(Invocation("Echo", ["still here"], "e"))
    assert (await client.completion("e"))["result"] == "still here"
    from signalr_django.protocol import CancelInvocation

    await client.send(CancelInvocation("s0"))
    await client.completion("s0")
    await client.send(StreamInvocation("s3", "Forever", []))
    for _ in range(200):
        if "s3" in client.connection.streams_out:
            break
        await asyncio.sleep(0.005)
    assert "s3" in client.connection.streams_out
    no_tracebacks(caplog)
    assert any("MAXIMUM_PARALLEL_STREAMS_PER_CLIENT" in r.getMessage() for r in caplog.records)


async def test_upload_streams_over_the_cap_are_refused(client: FakeClient) -> None:
    await client.send(Invocation("Total", [], "t1", ["u1"]))
    await client.send(Invocation("Total", [], "t2", ["u2"]))
    await client.send(Invocation("Total", [], "t3", ["u3"]))
    refused = await client.completion("t3")
    assert refused["error"] == cap_error(
        "Total",
        "Too many client-to-server streams open on this connection",
        "MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT",
        2,
    )
    assert sorted(client.connection.streams_in or {}) == ["u1", "u2"]
    from signalr_django.protocol import StreamItem

    await client.send(StreamItem("u3", 5))  # the refused stream's items are ignored
    await client.send(StreamItem("u1", 5))
    await client.send(Completion("u1"))
    assert (await client.completion("t1"))["result"] == 5
    await client.send(Invocation("Total", [], "t4", ["u4"]))
    await client.send(Completion("u4"))
    assert (await client.completion("t4"))["result"] == 0


async def test_pending_client_results_over_the_cap_fail_the_call(client: FakeClient) -> None:
    for i in range(3):
        await client.send(Invocation("Ask", [], f"a{i}"))
    refused = await client.completion("a2")
    assert refused["error"] == (
        "An unexpected error occurred invoking 'Ask' on the server. LimitExceededError: "
        "Too many client results pending on this connection (limit 2, setting "
        "MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT)."
    )
    pending = client.connection.pending_results
    assert pending is not None and len(pending) == 2
    # Answering one frees a place.
    first = client.invocations()[0]
    await client.send(Completion(first["invocationId"], result=42))
    assert (await client.completion("a0"))["result"] == 42
    await client.send(Invocation("Ask", [], "a3"))
    for _ in range(200):
        if len(client.invocations()) == 3:
            break
        await asyncio.sleep(0.005)
    assert len(client.invocations()) == 3


async def test_groups_per_connection_and_name_length() -> None:
    async with HubCommunicator(CapsHub) as comm:
        for group in ("a", "b", "a"):  # the second "a" takes no new place
            await comm.invoke("Join", group)
        with pytest.raises(HubInvocationError) as too_many:
            await comm.invoke("Join", "c")
        assert too_many.value.message == (
            "An unexpected error occurred invoking 'Join' on the server. LimitExceededError: "
            "The connection is in too many groups (limit 2, setting MAXIMUM_GROUPS_PER_CLIENT)."
        )
        with pytest.raises(HubInvocationError) as too_long:
            await comm.invoke("Join", "x" * 9)
        assert too_long.value.message.endswith(
            "The group name is too long (limit 8, setting MAXIMUM_GROUP_NAME_LENGTH)."
        )
        assert comm.connection.group_names == {"a", "b"}
        await comm.invoke("Leave", "a")
        await comm.invoke("Join", "c")
        assert comm.connection.group_names == {"b", "c"}
        manager = get_lifetime_manager(CapsHub)
        assert "x" * 9 not in manager.groups and "a" not in manager.groups


async def test_a_huge_number_for_a_float_is_a_binding_error(
    client: FakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await client.send(Invocation("Half", [10**400], "h1"))
        await client.send(Invocation("Half", [[1, 2]], "h2"))
        await client.send(Invocation("Half", [3], "h3"))
    assert (await client.completion("h1"))["error"] == (
        "Failed to invoke 'Half' due to an error on the server."
    )
    assert (await client.completion("h2"))["error"] == (
        "Failed to invoke 'Half' due to an error on the server."
    )
    assert (await client.completion("h3"))["result"] == 1.5
    no_tracebacks(caplog)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("do not bind" in line for line in lines)


def test_pending_results_cap_and_no_cap() -> None:
    async def run() -> None:
        capped = PendingResults(2)
        capped.add("s1")
        capped.add("s2")
        with pytest.raises(LimitExceededError) as info:
            capped.add("s3")
        assert info.value.setting == "MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT"
        capped.discard("s1")
        capped.add("s3")
        free = PendingResults(None)
        for i in range(500):
            free.add(f"s{i}")
        assert len(free) == 500
        assert PendingResults()._limit == 100

    asyncio.run(run())


async def test_fail_all_is_quiet_and_keeps_no_token(caplog: pytest.LogCaptureFixture) -> None:
    pending = PendingResults(None)
    futures = [pending.add(f"s{i}") for i in range(5000)]
    token = "AbCdEf.6650a1.n0.b3duZXI.c2lnbmF0dXJl"
    with caplog.at_level(logging.DEBUG):
        pending.fail_all(token)
    assert len(pending) == 0
    errors = [f.exception() for f in futures]
    assert all(isinstance(e, ConnectionGoneError) for e in errors)
    assert str(errors[0]) == "Connection 'AbCdEf' disconnected."
    assert [r.getMessage() for r in caplog.records] == [
        "Connection AbCdEf ended with 5000 client result(s) pending; they fail with "
        "ConnectionGoneError"
    ]
    assert caplog.records[0].levelno == logging.WARNING and caplog.records[0].exc_info is None


async def test_waiting_hub_calls_end_quietly_when_the_client_leaves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeClient("leaver.6650a1.n0.b3duZXI.c2lnbmF0dXJl")
    handler = get_handler(CapsHub)
    await handler.connected(fake.connection)
    for i in range(2):
        await fake.send(Invocation("Ask", [], f"a{i}"))
    for _ in range(200):
        if len(fake.invocations()) == 2:
            break
        await asyncio.sleep(0.005)
    with caplog.at_level(logging.DEBUG):
        await handler.disconnected(fake.connection, None)
        await asyncio.sleep(0.05)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert messages == [
        "Connection leaver ended with 2 client result(s) pending; they fail with "
        "ConnectionGoneError"
    ]
    assert all(r.exc_info is None for r in caplog.records)
    assert not any("c2lnbmF0dXJl" in r.getMessage() for r in caplog.records)


def test_user_id_length() -> None:
    provider = load_provider("tests.unit.test_caps.long_user_id", 5)
    assert provider("short", {}) == "short"
    assert provider(None, {}) is None
    with pytest.raises(HandshakeError) as info:
        provider("much too long", {})
    assert str(info.value) == (
        "The user id is longer than 5 characters (limit 5, setting MAXIMUM_USER_ID_LENGTH)."
    )
    assert "much too long" not in str(info.value)
    assert load_provider("tests.unit.test_caps.long_user_id", None)("much too long", {}) == (
        "much too long"
    )


def long_user_id(user: Any, scope: dict[str, Any]) -> str | None:
    return user if isinstance(user, str) else None


# -- groups across workers: the owner enforces, the requester gets the error -----------------


class RemoteCapsHub:
    options = {"MAXIMUM_GROUPS_PER_CLIENT": 1, "MAXIMUM_GROUP_NAME_LENGTH": 4}


async def test_group_caps_are_enforced_by_the_worker_holding_the_connection() -> None:
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    backplanes = [Backplane(layer, request_timeout=2.0) for _ in range(2)]
    one = HubLifetimeManager("tests.RemoteCapsHub", backplanes[0])
    two = HubLifetimeManager("tests.RemoteCapsHub", backplanes[1])
    try:
        await one.start()
        await two.start()

        async def write(payload: Any) -> None:
            pass

        connection = HubConnection(
            "remote1",
            RemoteCapsHub,
            hub_options(RemoteCapsHub),
            JsonHubProtocol(),
            {},
            "WebSockets",
            write,
        )
        connection.caller_context = HubCallerContext(connection)
        await two.on_connected(connection)
        await one.add_to_group("remote1", "room")
        assert connection.group_names == {"room"}
        with pytest.raises(LimitExceededError) as info:
            await one.add_to_group("remote1", "hall")
        assert str(info.value) == (
            "The connection is in too many groups (limit 1, setting MAXIMUM_GROUPS_PER_CLIENT)."
        )
        await one.remove_from_group("remote1", "room")
        with pytest.raises(LimitExceededError, match="MAXIMUM_GROUP_NAME_LENGTH"):
            await one.add_to_group("remote1", "lobby")
        await one.add_to_group("remote1", "hall")
        assert connection.group_names == {"hall"}
    finally:
        for backplane in backplanes:
            await backplane.stop()


class DetailedCapsHub(CapsHub):
    options = {**CapsHub.options, "ENABLE_DETAILED_ERRORS": True}

    async def ask_other(self, connection_id: str) -> Any:
        return await self.clients.client(connection_id).invoke("GetValue")


async def test_detailed_errors_show_the_binding_text_and_other_clients_gone_are_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeClient("detailed1")
    fake.connection = HubConnection(
        "detailed1",
        DetailedCapsHub,
        hub_options(DetailedCapsHub),
        JsonHubProtocol(),
        {},
        "WebSockets",
        fake.connection.outbound,
    )
    handler = get_handler(DetailedCapsHub)
    await handler.connected(fake.connection)

    async def send(message: Any) -> None:
        await get_dispatcher(DetailedCapsHub).dispatch(fake.connection, message)

    try:
        with caplog.at_level(logging.WARNING):
            await send(Invocation("Half", [10**400], "h"))
            assert (await fake.completion("h"))["error"] == (
                "Failed to invoke 'Half' due to an error on the server. InvalidDataException: "
                "Error binding arguments. Make sure that the types of the provided values "
                "match the types of the hub method being invoked."
            )
            # A client result from a connection that does not exist: the caller's call
            # fails, with one warning line and no traceback; the id shown is not a token.
            await send(Invocation("AskOther", ["gone.6650a1.n0.b3duZXI.c2lnbmF0dXJl"], "o"))
            error = (await fake.completion("o"))["error"]
            assert error == (
                "An unexpected error occurred invoking 'AskOther' on the server. "
                "ConnectionGoneError: Connection 'gone' does not exist."
            )
        no_tracebacks(caplog)
        assert any("disconnected" in r.getMessage() for r in caplog.records)
    finally:
        await handler.disconnected(fake.connection, None)
