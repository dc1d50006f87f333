"""Hub filters, driven without a network: each capability, the order, and configuration."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from signalr_django import Hub, HubException, map_hub
from signalr_django.checks import check_settings
from signalr_django.conf import clear_cache, hub_options
from signalr_django.core.connection import HubConnection
from signalr_django.dispatch.filtering import hub_filters
from signalr_django.dispatch.handler import get_handler
from signalr_django.exceptions import HubConfigurationError
from signalr_django.filters import (
    ConnectedNext,
    DisconnectedNext,
    HubFilter,
    HubInvocationContext,
    HubLifetimeContext,
    InvokeNext,
    LoggingFilter,
    RateLimitFilter,
)
from signalr_django.hub import HubCallerContext
from signalr_django.protocol import Invocation, JsonHubProtocol
from signalr_django.server import Outbound
from signalr_django.testing import (
    ClientStream,
    ConnectionClosed,
    HubCommunicator,
    HubInvocationError,
)

TRACE: list[str] = []
IDS = itertools.count()


class Tracing(HubFilter):
    """Records `name>` before calling next and `<name` after, for every hook."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
        TRACE.append(f"{self.name}>")
        try:
            return await call_next(context)
        finally:
            TRACE.append(f"<{self.name}")

    async def on_connected(self, context: HubLifetimeContext, call_next: ConnectedNext) -> None:
        TRACE.append(f"connect {self.name}>")
        await call_next(context)

    async def on_disconnected(
        self, context: HubLifetimeContext, exception: Exception | None, call_next: DisconnectedNext
    ) -> None:
        TRACE.append(f"disconnect {self.name}> {exception!r}")
        await call_next(context, exception)


class Swap(HubFilter):
    """Argument, result and exception rewriting, chosen by method name."""

    async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
        name = context.method_name
        if name == "cached":
            return "from the filter"  # short-circuit: the method never runs
        if name == "echo" and context.arguments == ["replace me"]:
            context.arguments = ["replaced"]
        if name == "add":
            context = dataclasses.replace(context, arguments=[a * 10 for a in context.arguments])
        try:
            result = await call_next(context)
        except RuntimeError as exc:
            raise HubException(f"mapped: {exc}") from exc
        if name == "double":
            return result * 2
        if name == "numbers":
            return _scaled(result)
        return result


async def _scaled(items: AsyncIterator[int]) -> AsyncIterator[int]:
    async for item in items:
        yield item * 100


def forbidden(func: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a hub method that `ForbiddenFilter` refuses (an attribute-based filter)."""
    func.forbidden = True  # type: ignore[attr-defined]
    return func


class ForbiddenFilter(HubFilter):
    async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
        if getattr(context.hub_method, "forbidden", False):
            raise HubException(f"{context.method_name} is switched off")
        return await call_next(context)


CALLS: list[Any] = []


class FilteredHub(Hub):
    filters = [Tracing("hub"), Swap(), ForbiddenFilter]

    async def echo(self, value: Any) -> Any:
        CALLS.append(("echo", value))
        return value

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def cached(self) -> str:
        CALLS.append("cached ran")
        return "from the method"

    async def double(self, value: int) -> int:
        return value

    async def boom(self) -> None:
        raise RuntimeError("hidden")

    def sync_echo(self, value: str) -> str:
        CALLS.append(("sync", value))
        return f"sync:{value}"

    @forbidden
    async def secret(self) -> str:
        return "leaked"

    async def numbers(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def total(self, items: AsyncIterator[int]) -> int:
        return sum([i async for i in items])

    async def on_connected(self) -> None:
        TRACE.append("hub on_connected")
        if self.context.query.get("refuse"):
            raise HubException("refused by the hub")

    async def on_disconnected(self, exception: Exception | None) -> None:
        TRACE.append(f"hub on_disconnected {exception!r}")


class PlainHub(Hub):
    async def echo(self, value: Any) -> Any:
        return value


class Recorder(Outbound):
    def __init__(self, sent: list[dict[str, Any]]) -> None:
        self.sent = sent

    def write(self, payload: Any) -> int:
        self.sent.extend(json.loads(p) for p in payload.split("\x1e") if p)
        return 0

    def pending(self) -> int:
        return 0


class Client:
    """A connection of `hub_cls` whose writes land in `sent`."""

    def __init__(self, hub_cls: type, connection_id: str = "f1", query: bytes = b"") -> None:
        self.hub_cls = hub_cls
        self.sent: list[dict[str, Any]] = []
        self.connection = HubConnection(
            connection_id,
            hub_cls,
            hub_options(hub_cls),
            JsonHubProtocol(),
            {"query_string": query},
            "WebSockets",
            Recorder(self.sent),
            None,
            None,
        )
        self.connection.caller_context = HubCallerContext(self.connection)
        self.handler = get_handler(hub_cls)

    async def send(self, message: Any) -> None:
        await self.handler.dispatcher.dispatch(self.connection, message)

    async def completion(self, invocation_id: str) -> dict[str, Any]:
        """The Completion of `invocation_id` (waits for it; generous, not a timing bound)."""
        for _ in range(2000):
            for message in self.sent:
                if message.get("type") == 3 and message.get("invocationId") == invocation_id:
                    return message
            await asyncio.sleep(0.005)
        raise AssertionError(f"no completion {invocation_id} in {self.sent}")

    async def call(self, target: str, *args: Any) -> dict[str, Any]:
        invocation_id = f"i{next(IDS)}"
        await self.send(Invocation(target, list(args), invocation_id))
        return await self.completion(invocation_id)


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    TRACE.clear()
    CALLS.clear()
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
async def client() -> AsyncIterator[HubCommunicator]:
    async with HubCommunicator(FilteredHub) as comm:
        yield comm


async def test_call_next_runs_the_method_with_the_context() -> None:
    seen: list[HubInvocationContext] = []

    class Spy(HubFilter):
        async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
            seen.append(context)
            return await call_next(context)

    class SpiedHub(FilteredHub):
        filters = [Spy()]

    async with HubCommunicator(SpiedHub, connection_id="spy1") as spied:
        assert await spied.invoke("Echo", {"a": 1}) == {"a": 1}
    (context,) = seen
    assert isinstance(context.hub, SpiedHub)
    assert context.context is spied.connection.caller_context
    assert context.context.connection_id == "spy1"
    assert context.method_name == "echo"
    assert context.hub_method is FilteredHub.echo
    assert context.arguments == [{"a": 1}]


async def test_short_circuit(client: HubCommunicator) -> None:
    assert await client.invoke("Cached") == "from the filter"
    assert "cached ran" not in CALLS


async def test_replace_arguments_in_place_or_by_copy(client: HubCommunicator) -> None:
    assert await client.invoke("Echo", "replace me") == "replaced"
    assert CALLS == [("echo", "replaced")]
    assert await client.invoke("Add", 1, 2) == 30


async def test_replace_result(client: HubCommunicator) -> None:
    assert await client.invoke("Double", 21) == 42


async def test_map_exceptions_to_a_message_for_the_caller(client: HubCommunicator) -> None:
    with pytest.raises(HubInvocationError) as failed:
        await client.invoke("Boom")
    assert failed.value.message == (
        "An unexpected error occurred invoking 'Boom' on the server. HubException: mapped: hidden"
    )


async def test_attribute_based_filter_reads_the_hub_method(client: HubCommunicator) -> None:
    with pytest.raises(HubInvocationError) as refused:
        await client.invoke("Secret")
    assert refused.value.message.endswith("HubException: secret is switched off")
    assert await client.invoke("Echo", 1) == 1


async def test_sync_methods_are_wrapped_too(client: HubCommunicator) -> None:
    assert await client.invoke("SyncEcho", "x") == "sync:x"
    assert CALLS == [("sync", "x")]
    assert TRACE[-2:] == ["hub>", "<hub"]


async def test_global_filters_run_first_then_the_hubs_in_listed_order() -> None:
    """The first listed is outermost: it sees the call first and the result last."""
    with override_settings(SIGNALR={"HUB_FILTERS": [Tracing("g1"), Tracing("g2")]}):
        clear_cache()
        comm = HubCommunicator(FilteredHub)
        await comm.connect()
        assert TRACE == ["connect g1>", "connect g2>", "connect hub>", "hub on_connected"]
        TRACE.clear()
        assert await comm.invoke("Echo", 5) == 5
        assert TRACE == ["g1>", "g2>", "hub>", "<hub", "<g2", "<g1"]
        TRACE.clear()
        await comm.disconnect()
        assert TRACE == [
            "disconnect g1> None",
            "disconnect g2> None",
            "disconnect hub> None",
            "hub on_disconnected None",
        ]
    clear_cache()
    # Settings changed back: the next handler of the hub has only the hub's own filters.
    TRACE.clear()
    fake = Client(FilteredHub, "order2")
    assert (await fake.call("Echo", 5))["result"] == 5
    assert TRACE == ["hub>", "<hub"]


async def test_streams_filter_sees_obtaining_the_stream(client: HubCommunicator) -> None:
    """The filter wraps the call returning the stream; it may replace the iterator."""
    TRACE.clear()
    assert await client.stream("Numbers", 3).collect() == [0, 100, 200]
    assert TRACE == ["hub>", "<hub"]  # once, around obtaining the stream, not per item


async def test_a_filter_refusing_a_stream_fails_it_like_an_invocation() -> None:
    class NoStreams(HubFilter):
        async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
            raise HubException("no streams today")

    class RefusingHub(FilteredHub):
        filters = [NoStreams()]

    async with HubCommunicator(RefusingHub) as comm:
        with pytest.raises(HubInvocationError) as refused:
            await comm.stream("Numbers", 3).collect()
        assert refused.value.message == (
            "An unexpected error occurred invoking 'Numbers' on the server. "
            "HubException: no streams today"
        )
        assert not comm.connection.streams_out


async def test_client_to_server_streams_reach_the_filter_as_stream_objects() -> None:
    seen: list[Any] = []

    class Spy(HubFilter):
        async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
            seen.extend(context.arguments)
            return await call_next(context)

    class UploadHub(FilteredHub):
        filters = [Spy()]

    async with HubCommunicator(UploadHub) as comm:
        upload = ClientStream()
        total = asyncio.create_task(comm.invoke("Total", upload))
        await upload.send(4)
        await upload.send(5)
        await upload.complete()
        assert await total == 9
    assert len(seen) == 1 and hasattr(seen[0], "__aiter__")


async def test_on_connected_filter_raising_refuses_the_connection_like_the_hub() -> None:
    class Gate(HubFilter):
        async def on_connected(self, context: HubLifetimeContext, call_next: ConnectedNext) -> None:
            if context.context.query.get("blocked"):
                raise HubException("blocked by the filter")
            await call_next(context)

    class GatedHub(FilteredHub):
        filters = [Gate()]

    with pytest.raises(ConnectionClosed) as by_filter:
        await HubCommunicator(GatedHub, query={"blocked": "1"}).connect()
    assert "hub on_connected" not in TRACE
    with pytest.raises(ConnectionClosed) as by_hub:
        await HubCommunicator(GatedHub, query={"refuse": "1"}).connect()

    assert by_filter.value.error == (
        "Connection closed with an error. HubException: blocked by the filter"
    )
    assert by_hub.value.error == "Connection closed with an error. HubException: refused by the hub"
    assert by_filter.value.allow_reconnect == by_hub.value.allow_reconnect is False
    # Neither refused connection ran on_disconnected (as in ASP.NET Core).
    assert not any(entry.startswith("hub on_disconnected") for entry in TRACE)


async def test_on_connected_filter_may_skip_the_hub() -> None:
    class Skip(HubFilter):
        async def on_connected(self, context: HubLifetimeContext, call_next: ConnectedNext) -> None:
            TRACE.append("skipped")

    class SkippingHub(FilteredHub):
        filters = [Skip()]

    async with HubCommunicator(SkippingHub) as comm:
        assert TRACE == ["skipped"]
        assert await comm.invoke("Echo", "still works") == "still works"


async def test_on_disconnected_sees_the_exception_and_failures_are_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(HubFilter):
        async def on_disconnected(
            self,
            context: HubLifetimeContext,
            exception: Exception | None,
            call_next: DisconnectedNext,
        ) -> None:
            await call_next(context, exception)
            raise RuntimeError("filter broke")

    class DisconnectHub(FilteredHub):
        filters = [Tracing("t"), Broken()]

    fake = Client(DisconnectHub, "dc1")
    await fake.handler.connected(fake.connection)
    TRACE.clear()
    error = ValueError("transport died")
    await fake.handler.disconnected(fake.connection, error)
    assert [f"disconnect t> {error!r}", f"hub on_disconnected {error!r}"] == TRACE
    assert "DisconnectHub failed" in caplog.text
    assert fake.connection.connection_id not in fake.handler.lifetime.connections


async def test_no_filters_keeps_the_direct_call() -> None:
    """Hubs without filters (or with lifecycle-only ones) have no invocation chain."""
    handler = get_handler(PlainHub)
    assert handler.dispatcher.filters is None and handler.dispatcher.invoke_chains is None

    class LifecycleOnly(HubFilter):
        async def on_connected(self, context: HubLifetimeContext, call_next: ConnectedNext) -> None:
            await call_next(context)

    class LifecycleHub(PlainHub):
        filters = [LifecycleOnly()]

    pipeline = get_handler(LifecycleHub).dispatcher
    assert pipeline.invoke_chains is None
    assert pipeline.filters is not None and pipeline.filters.on_disconnected is None


class CountedFilter(HubFilter):
    made = 0

    def __init__(self) -> None:
        CountedFilter.made += 1


counted_instance = CountedFilter()


def test_entries_are_instances_classes_or_dotted_paths() -> None:
    """A class is instantiated once when the list is resolved; an instance is used as is."""
    CountedFilter.made = 0
    path = f"{__name__}.CountedFilter"

    class ConfiguredHub(PlainHub):
        filters = [CountedFilter, path, f"{__name__}.counted_instance", counted_instance]

    resolved = hub_filters(ConfiguredHub)
    assert CountedFilter.made == 2
    assert resolved[2] is resolved[3] is counted_instance
    assert hub_filters(ConfiguredHub) == resolved  # cached: not made again
    assert CountedFilter.made == 2


class NotAFilter:
    pass


class SyncHook:
    def invoke_method(self, context: Any, call_next: Any) -> Any:
        return call_next(context)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("tests.unit.test_filters.Missing", "cannot be imported"),
        ("no_such_module.Filter", "cannot be imported"),
        (NotAFilter, "is not a hub filter"),
        (SyncHook(), "must be `async def`"),
        (RateLimitFilter.__init__, "is not a hub filter"),
    ],
)
def test_bad_entries_are_configuration_errors_at_mapping_time(entry: Any, words: str) -> None:
    class BadHub(PlainHub):
        filters = [entry]

    with pytest.raises(HubConfigurationError, match=words):
        map_hub("hubs/bad", BadHub)


def test_bad_global_filters_fail_mapping_too() -> None:
    with override_settings(SIGNALR={"HUB_FILTERS": ["no_such_module.Filter"]}):
        clear_cache()
        with pytest.raises(HubConfigurationError, match=r"SIGNALR\['HUB_FILTERS'\]"):
            map_hub("hubs/plain", PlainHub)


def test_hub_options_cannot_set_the_global_list() -> None:
    class OptionsHub(PlainHub):
        options = {"HUB_FILTERS": [LoggingFilter()]}

    with pytest.raises(HubConfigurationError, match=r"OptionsHub.filters"):
        map_hub("hubs/options", OptionsHub)


def test_system_check_reports_bad_global_filters() -> None:
    def run(value: Any) -> list[checks.CheckMessage]:
        with override_settings(SIGNALR={"HUB_FILTERS": value}):
            clear_cache()
            return [m for m in check_settings() if m.id == "signalr.E020"]

    (error,) = run(["signalr_django.filters.NoSuchFilter"])
    assert "SIGNALR['HUB_FILTERS']" in error.msg and "cannot be imported" in error.msg
    assert run("signalr_django.filters.LoggingFilter")  # a string, not a list
    assert run(["signalr_django.filters.LoggingFilter", RateLimitFilter(rate=1, burst=1)]) == []


# -- the shipped filters --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_filter_refuses_excess_calls_per_connection() -> None:
    clock = Clock()
    limiter = RateLimitFilter(rate=2, burst=3, clock=clock)

    class LimitedHub(PlainHub):
        filters = [limiter]

    async def outcome(comm: HubCommunicator, value: Any) -> Any:
        """The result, or the error text of a refused call."""
        try:
            return await comm.invoke("Echo", value)
        except HubInvocationError as exc:
            return exc.message

    refused = (
        "An unexpected error occurred invoking 'Echo' on the server. HubException: "
        "Rate limit exceeded: at most 2 calls per second (bursts of 3); try again later."
    )
    async with HubCommunicator(LimitedHub) as first, HubCommunicator(LimitedHub) as second:
        assert [await outcome(first, i) for i in range(5)] == [0, 1, 2, refused, refused]
        assert await outcome(second, "own bucket") == "own bucket"
        clock.now += 0.5  # one token back at 2 a second
        assert await outcome(first, "again") == "again"
        assert await outcome(first, "too soon") == refused
        clock.now += 100  # refills to the burst, no further
        assert [await outcome(first, i) for i in range(4)] == [0, 1, 2, refused]


def test_rate_limit_filter_validates_its_arguments() -> None:
    with pytest.raises(HubConfigurationError, match="rate"):
        RateLimitFilter(rate=0)
    with pytest.raises(HubConfigurationError, match="burst"):
        RateLimitFilter(burst=0)
    assert RateLimitFilter(message="slow down").message == "slow down"


async def test_logging_filter(caplog: pytest.LogCaptureFixture) -> None:
    class LoggedHub(FilteredHub):
        filters = [LoggingFilter(log_arguments=True), Swap()]

    caplog.set_level(logging.INFO, logger="signalr_django.filters")
    fake = Client(LoggedHub, "log1.123.sig")
    await fake.handler.connected(fake.connection)
    await fake.call("Echo", "hi")
    await fake.call("Boom")
    await fake.handler.disconnected(fake.connection, ValueError("gone"))
    lines = [r.getMessage() for r in caplog.records if r.name == "signalr_django.filters"]
    assert lines[0] == "LoggedHub: connection log1 connected (WebSockets)"
    assert lines[1].startswith("LoggedHub.echo(['hi']) on connection log1 returned in ")
    assert lines[2].startswith("LoggedHub.boom([]) on connection log1 failed after ")
    assert lines[2].endswith(" ms: HubException: mapped: hidden")
    assert lines[3] == "LoggedHub: connection log1 disconnected (ValueError: gone)"
    assert "log1.123" not in caplog.text  # the secret part of a token id is never logged
