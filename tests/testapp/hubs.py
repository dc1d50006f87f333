"""Hubs exercised by the end-to-end tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from signalr_django import Hub, HubException, authorize, hub_method
from signalr_django.core.results import ClientResultError, ConnectionGoneError
from signalr_django.core.shutdown import is_draining

EVENTS: list[str] = []


@dataclass
class Point:
    """A value object bound from a JSON object."""

    x_value: int
    y_value: int


class TestHub(Hub):
    """Every feature the official client can drive."""

    async def on_connected(self) -> None:
        self.context.items["joined"] = dt.datetime.now(dt.UTC)
        self.context.items["draining"] = is_draining()
        if self.context.query.get("refuse") == "1":
            raise HubException("refused by on_connected")

    async def on_disconnected(self, exception: Exception | None) -> None:
        EVENTS.append(f"disconnected:{self.context.connection_id}")

    async def echo(self, message: Any) -> Any:
        return message

    def sync_echo(self, message: str) -> str:
        return f"sync:{message}"

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def void_method(self) -> None:
        return None

    async def worker(self) -> dict[str, Any]:
        """Which process holds this connection, and whether it was draining at connect."""
        return {
            "pid": os.getpid(),
            "url": os.environ.get("SIGNALR_WORKER_URL", ""),
            "drainingAtConnect": self.context.items.get("draining"),
        }

    async def connection_info(self) -> dict[str, Any]:
        ctx = self.context
        return {
            "connectionId": ctx.connection_id,
            "user": ctx.user_identifier,
            "transport": ctx.transport,
            "protocol": ctx.protocol,
            "query": dict(ctx.query),
            "hasJoined": "joined" in ctx.items,
            "userAgent": ctx.headers.get("user-agent", ""),
            "host": ctx.headers.get("host", ""),
        }

    async def values(self) -> dict[str, Any]:
        return {
            "bytes": b"\x00\x01hi",
            "when": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
            "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "price": decimal.Decimal("12.50"),
            "point": Point(1, 2),
            "tags": {"a"},
        }

    async def bind_values(
        self, when: dt.datetime, data: bytes, point: Point, ids: list[uuid.UUID]
    ) -> list[Any]:
        return [when.year, data.decode(), point.x_value + point.y_value, str(ids[0])]

    async def fail(self) -> None:
        raise ValueError("secret detail")

    async def fail_hub(self) -> None:
        raise HubException("told the client")

    async def send_to_all(self, message: str) -> None:
        await self.clients.all.send("Receive", "all", message)

    async def send_to_caller(self, message: str) -> None:
        await self.clients.caller.send("Receive", "caller", message)

    async def send_to_others(self, message: str) -> None:
        await self.clients.others.send("Receive", "others", message)

    async def send_to_client(self, connection_id: str, message: str) -> None:
        await self.clients.client(connection_id).send("Receive", "client", message)

    async def send_to_clients(self, connection_ids: list[str], message: str) -> None:
        await self.clients.clients(connection_ids).send("Receive", "clients", message)

    async def send_all_except(self, connection_ids: list[str], message: str) -> None:
        await self.clients.all_except(connection_ids).send("Receive", "allExcept", message)

    async def join(self, group: str) -> None:
        await self.groups.add_to_group(self.context.connection_id, group)

    async def add_other(self, connection_id: str, group: str) -> None:
        """Group change for a connection that may live on another worker."""
        await self.groups.add_to_group(connection_id, group)

    async def remove_other(self, connection_id: str, group: str) -> None:
        await self.groups.remove_from_group(connection_id, group)

    async def leave(self, group: str) -> None:
        await self.groups.remove_from_group(self.context.connection_id, group)

    async def send_to_group(self, group: str, message: str) -> None:
        await self.clients.group(group).send("Receive", "group", message)

    async def send_to_groups(self, groups: list[str], message: str) -> None:
        await self.clients.groups(groups).send("Receive", "groups", message)

    async def send_group_except(self, group: str, ids: list[str], message: str) -> None:
        await self.clients.group_except(group, ids).send("Receive", "groupExcept", message)

    async def send_others_in_group(self, group: str, message: str) -> None:
        await self.clients.others_in_group(group).send("Receive", "othersInGroup", message)

    async def send_to_user(self, user_id: str, message: str) -> None:
        await self.clients.user(user_id).send("Receive", "user", message)

    async def send_to_users(self, user_ids: list[str], message: str) -> None:
        await self.clients.users(user_ids).send("Receive", "users", message)

    async def counter(self, count: int, delay: float) -> AsyncIterator[int]:
        try:
            for i in range(count):
                yield i
                await asyncio.sleep(delay)
        finally:
            EVENTS.append(f"counter-closed:{self.context.connection_id}")

    async def failing_stream(self) -> AsyncIterator[int]:
        yield 1
        raise ValueError("stream broke")

    async def upload(self, prefix: str, items: AsyncIterator[str]) -> str:
        collected = [item async for item in items]
        return prefix + ",".join(collected)

    async def upload_sum(self, numbers: AsyncIterator[int]) -> int:
        return sum([n async for n in numbers])

    async def abort_me(self) -> None:
        self.context.abort()

    async def slow(self, delay: float) -> str:
        await asyncio.sleep(delay)
        return "slow done"

    @hub_method(name="Renamed")
    async def original_name(self) -> str:
        return "renamed ok"

    async def ask_client(self, connection_id: str, method: str, timeout: float | None) -> Any:
        try:
            return await self.clients.client(connection_id).invoke(method, "q", timeout=timeout)
        except ClientResultError as exc:
            return f"client error: {exc}"
        except TimeoutError:
            return "timeout"
        except ConnectionGoneError as exc:
            return f"gone: {exc}"

    async def ask_caller(self) -> Any:
        # The caller's own invocation waits on the caller: its slot must be released.
        first = await self.clients.caller.invoke("GetMessage", "first")
        second = await self.clients.caller.invoke("GetMessage", "second")
        return [first, second]

    async def flood(self, count: int, size: int) -> int:
        """Send `count` messages of `size` characters to every connection."""
        payload = "x" * size
        for _ in range(count):
            await self.clients.all.send("Flood", payload)
        return count

    async def transport_info(self) -> str:
        outbound = self._connection.outbound
        return f"{type(outbound).__name__} pending={outbound.pending()}"

    async def backlogs(self) -> list[int]:
        from signalr_django.lifetime.manager import get_lifetime_manager

        manager = get_lifetime_manager(type(self))
        return [c.outbound.pending() for c in manager.connections.values()]

    async def connection_count(self) -> int:
        from signalr_django.lifetime.manager import get_lifetime_manager

        return len(get_lifetime_manager(type(self)).connections)

    async def events(self) -> list[str]:
        return list(EVENTS)

    async def _private(self) -> str:
        return "never"


class DetailedHub(TestHub):
    """The same methods with detailed errors on."""

    options = {"ENABLE_DETAILED_ERRORS": True}


@authorize
class AuthHub(Hub):
    """Only for authenticated users; one method needs a permission."""

    async def who_am_i(self) -> str:
        return str(self.context.user.get_username())

    @authorize(permissions=["auth.view_user"])
    async def admin_only(self) -> str:
        return "admin ok"


class WatchHub(Hub):
    """Short keep-alive and client timeout, to observe them in tests."""

    options = {
        "KEEP_ALIVE_INTERVAL": 1.0,
        "CLIENT_TIMEOUT_INTERVAL": 3.0,
        "HANDSHAKE_TIMEOUT": 2.0,
        "DISCONNECT_TIMEOUT": 2.0,
    }

    async def echo(self, message: Any) -> Any:
        return message

    async def connection_count(self) -> int:
        from signalr_django.lifetime.manager import get_lifetime_manager

        return len(get_lifetime_manager(type(self)).connections)


class StatefulHub(Hub):
    """Stateful reconnect allowed; sends numbered messages so tests can count them."""

    options = {"ALLOW_STATEFUL_RECONNECTS": True}

    async def send_numbers(self, count: int, delay: float) -> None:
        for i in range(count):
            await self.clients.caller.send("Number", i)
            await asyncio.sleep(delay)

    async def echo(self, value: Any) -> Any:
        return value

    async def connection_id(self) -> str:
        return self.context.connection_id

    async def record(self, number: int) -> None:
        """Answer each numbered message once, so clients count what was processed."""
        await self.clients.caller.send("Recorded", number)

    async def tick_to(self, connection_id: str, number: int) -> None:
        """Send to a connection wherever it lives (through the backplane when elsewhere)."""
        await self.clients.client(connection_id).send("Tick", number)

    async def tick_group(self, group: str, number: int) -> None:
        await self.clients.group(group).send("Tick", number)

    async def join(self, group: str) -> None:
        await self.groups.add_to_group(self.context.connection_id, group)

    async def worker(self) -> int:
        return os.getpid()


class NoWebSocketsHub(TestHub):
    """Offers every transport; the test router refuses its WebSocket upgrades."""


class WebSocketsOffHub(TestHub):
    """Does not offer WebSockets at negotiate."""

    options = {"TRANSPORTS": ["ServerSentEvents", "LongPolling"]}


def query_user_id(user: Any, scope: dict[str, Any]) -> str | None:
    """The `user` query parameter as the user id (lets a test pick any id, too long ones too)."""
    from urllib.parse import parse_qs

    query = parse_qs(scope.get("query_string", b"").decode())
    values = query.get("user")
    return values[0] if values else None


class CapsHub(TestHub):
    """Small per-connection caps, so end-to-end tests reach each one quickly."""

    options = {
        "MAXIMUM_PARALLEL_STREAMS_PER_CLIENT": 5,
        "MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT": 3,
        "MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT": 5,
        "MAXIMUM_GROUPS_PER_CLIENT": 5,
        "MAXIMUM_GROUP_NAME_LENGTH": 16,
        "MAXIMUM_USER_ID_LENGTH": 32,
        "USER_ID_PROVIDER": "tests.testapp.hubs.query_user_id",
    }

    async def hold(self) -> AsyncIterator[int]:
        """A stream that yields once, then runs until cancelled or the connection ends."""
        yield 1
        await asyncio.Event().wait()

    async def ask_forever(self) -> Any:
        """Awaits a client result the hostile test client never sends."""
        return await self.clients.caller.invoke("NeverAnswered")

    async def half(self, value: float) -> float:
        return value / 2

    async def pick(self, choice: Literal["a", "b"]) -> str:
        return choice

    async def unique(self, values: set[int]) -> int:
        return len(values)

    async def nested(self, grid: list[dict[str, list[float]]]) -> int:
        return len(grid)

    async def user_id(self) -> str | None:
        return self.context.user_identifier


# -- Isolation: hubs the hostile-client tests (tests/e2e/test_isolation.py) attack ------------


class IsolationHub(Hub):
    """Stateful reconnect allowed and a short keep-alive, so a test sees Pings every 2 s.

    A control client and hostile clients share it: everything sent to `all` reaches both.
    A dropped stateful connection waits 5 s for its client to come back (not 15).
    """

    options = {
        "ALLOW_STATEFUL_RECONNECTS": True,
        "KEEP_ALIVE_INTERVAL": 2.0,
        "DISCONNECT_TIMEOUT": 5.0,
    }

    async def echo(self, value: Any) -> Any:
        return value

    async def broadcast(self, count: int, size: int, delay: float) -> int:
        """`count` numbered `Broadcast(i, payload)` messages of `size` characters to all."""
        payload = "b" * size
        for i in range(count):
            await self.clients.all.send("Broadcast", i, payload)
            if delay:
                await asyncio.sleep(delay)
        return count

    async def delayed_echo(self, value: Any, delay: float) -> Any:
        """Tell the caller the call started, wait, then answer (calls queue behind it)."""
        await self.clients.caller.send("Started", value)
        await asyncio.sleep(delay)
        return value

    async def connection_id(self) -> str:
        return self.context.connection_id

    async def connection_count(self) -> int:
        from signalr_django.lifetime.manager import get_lifetime_manager

        return len(get_lifetime_manager(type(self)).connections)


# -- Hub filters (tests/e2e/test_filters.py) ------------------------------------------------

from collections.abc import Callable as _Callable  # noqa: E402

from signalr_django.filters import (  # noqa: E402
    HubFilter,
    HubInvocationContext,
    InvokeNext,
    RateLimitFilter,
)

BANNED_WORDS = ("darn", "heck")


def language_filter(argument: int) -> _Callable[[Any], Any]:
    """Marks a hub method whose `argument`-th argument `LanguageFilter` cleans."""

    def mark(func: Any) -> Any:
        func.language_filter_argument = argument
        return func

    return mark


class LanguageFilter(HubFilter):
    """ASP.NET Core's documented example: replaces banned words in a marked argument."""

    async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
        index = getattr(context.hub_method, "language_filter_argument", None)
        if index is not None and isinstance(context.arguments[index], str):
            text = context.arguments[index]
            for word in BANNED_WORDS:
                text = text.replace(word, "*" * len(word))
            context.arguments[index] = text
        return await call_next(context)


class FilterTestHub(Hub):
    """Three calls per connection (rate 0.001/s refills none during a test), words cleaned."""

    filters = [
        RateLimitFilter(rate=0.001, burst=3, message="Slow down: three calls per connection."),
        LanguageFilter(),
    ]

    @language_filter(1)
    async def say(self, user: str, message: str) -> str:
        return f"{user}: {message}"

    async def echo(self, value: Any) -> Any:
        return value


class PresenceHooksHub(Hub):
    """Tells every client when a user comes online or goes offline across workers."""

    options = {"USER_ID_PROVIDER": "tests.testapp.hubs.query_user_id"}

    async def on_user_first_connected(self, user_id: str) -> None:
        await self.clients.all.send("Presence", "online", user_id)

    async def on_user_last_disconnected(self, user_id: str) -> None:
        await self.clients.all.send("Presence", "offline", user_id)

    async def online(self, user_id: str) -> dict[str, Any]:
        """Asks every worker from inside a worker (the async hub context)."""
        from signalr_django import get_hub_context

        answer = await get_hub_context(PresenceHooksHub).presence.user_online(user_id)
        return answer.as_dict()

    async def kick(self, connection_id: str) -> bool:
        from signalr_django import get_hub_context

        ctx = get_hub_context(PresenceHooksHub)
        return await ctx.close_connection(connection_id, reason="Kicked")
