"""One hub instance with recording `clients` and `groups`: unit tests of a single method.

`make_hub(ChatHub, user=alice)` builds the hub as the dispatcher would for one call (its
`context` is a real caller context over an unconnected connection) and replaces `clients`
and `groups` with recorders. Nothing is sent anywhere; the test reads what the method did:

    hub = make_hub(ChatHub)
    await hub.send_message("room", "hi")
    assert fake_clients(hub).group("room").sent == [("ReceiveMessage", ("hi",))]

Recorders record when called, and what they return may be awaited or dropped, so the
same fake serves an `async def` method that awaits its sends, a plain `def` method that
sends without awaiting, and one that wraps the call in `async_to_sync` (that last one must
run off the event loop: use `call_method`). Typed clients (`Hub[ChatClient]`) record the
wire name: `clients.all.receive_message(...)` records `ReceiveMessage`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import markcoroutinefunction
from channels.db import database_sync_to_async

from ..conf import hub_options
from ..core.connection import HubConnection
from ..core.results import ClientResultError
from ..hub import HubCallerContext
from ..protocol import get_protocol
from ..server.outbound import ListOutbound
from ..typed import client_interface, client_methods, pascal_case, wire_name
from ..users import load_provider
from .communicator import _scope
from .state import close_sync_connections

H = TypeVar("H")

# What an unanswered client result raises (the official clients' text without a handler).
NO_RESULT = "Client didn't provide a result."


class _Done:
    """An awaitable that already happened: awaiting it returns `value` or raises `error`."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    def __await__(self) -> Generator[Any, None, Any]:
        if self.error is not None:
            raise self.error
        yield from ()  # a generator that never suspends
        return self.value


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One recorded send: to whom (`("group", "room")`, `("caller",)`...), what, with what."""

    address: tuple[Any, ...]
    method: str
    arguments: tuple[Any, ...]


class FakeClientProxy:
    """A set of clients that records sends: `.sent` lists `(method, arguments)` pairs.

    `invoke` (client results) records into `.invoked` and answers from the fake clients'
    `results`: a value, or a callable given the arguments.
    """

    def __init__(self, owner: FakeClients, address: tuple[Any, ...]) -> None:
        self.address = address
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self.invoked: list[tuple[str, tuple[Any, ...]]] = []
        self._owner = owner

    @markcoroutinefunction
    def send(self, method: str, *args: Any) -> Any:
        """Record one send; the returned awaitable has nothing left to do."""
        self.sent.append((method, args))
        self._owner.log.append(SentMessage(self.address, method, args))
        return _Done()

    @markcoroutinefunction
    def invoke(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Record a client-result call; awaiting the returned awaitable gives the answer."""
        self.invoked.append((method, args))
        self._owner.log.append(SentMessage(self.address, method, args))
        answers = self._owner.results
        if method not in answers:
            return _Done(error=ClientResultError(NO_RESULT))
        answer = answers[method]
        try:
            value = answer(*args) if callable(answer) else answer
        except Exception as exc:
            return _Done(error=exc)
        return _Done(value)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """A typed client method: records its wire name."""
        if name.startswith("_"):
            raise AttributeError(name)
        method, signature = self._owner._client_method(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if kwargs and signature is not None:
                bound = signature.bind(None, *args, **kwargs)
                args = tuple(bound.args[1:])
            return self.send(method, *args)

        return call

    def __repr__(self) -> str:
        return f"<FakeClientProxy {self.address} sent={self.sent!r}>"


class FakeClients:
    """Stands for `hub.clients`: each address keeps its own proxy, and `log` keeps all.

    The same address gives the same proxy, so `clients.group("room").sent` in the test
    reads what the method sent through `self.clients.group("room")`. `results` maps a
    client method name to the answer of `invoke` (a value, or a callable of the
    arguments); an unset one fails as a client without a handler does.
    """

    def __init__(self, hub_cls: type, connection_id: str) -> None:
        self.connection_id = connection_id
        self.log: list[SentMessage] = []
        self.results: dict[str, Any] = {}
        self._proxies: dict[tuple[Any, ...], FakeClientProxy] = {}
        interface = client_interface(hub_cls)
        self._interface = interface
        self._methods = client_methods(interface) if interface is not None else {}

    def _proxy(self, *address: Any) -> FakeClientProxy:
        proxy = self._proxies.get(address)
        if proxy is None:
            proxy = self._proxies[address] = FakeClientProxy(self, address)
        return proxy

    def _client_method(self, name: str) -> tuple[str, inspect.Signature | None]:
        if self._interface is None:
            return pascal_case(name), None
        func = self._methods.get(name)
        if func is None:
            raise AttributeError(f"{self._interface.__name__} declares no client method {name!r}")
        return wire_name(func), inspect.signature(func)

    @property
    def all(self) -> FakeClientProxy:
        """Every connection of the hub."""
        return self._proxy("all")

    def all_except(self, connection_ids: Iterable[str]) -> FakeClientProxy:
        """Every connection but the listed ones."""
        return self._proxy("all_except", *_names(connection_ids))

    def client(self, connection_id: str) -> FakeClientProxy:
        """One connection."""
        return self._proxy("client", connection_id)

    def clients(self, connection_ids: Iterable[str]) -> FakeClientProxy:
        """Several connections."""
        return self._proxy("clients", *_names(connection_ids))

    def group(self, group: str) -> FakeClientProxy:
        """Members of a group."""
        return self._proxy("group", group)

    def groups(self, groups: Iterable[str]) -> FakeClientProxy:
        """Members of several groups."""
        return self._proxy("groups", *_names(groups))

    def group_except(self, group: str, connection_ids: Iterable[str]) -> FakeClientProxy:
        """Members of a group but the listed connections."""
        return self._proxy("group_except", group, *_names(connection_ids))

    def user(self, user_id: str) -> FakeClientProxy:
        """Every connection of a user."""
        return self._proxy("user", str(user_id))

    def users(self, user_ids: Iterable[str]) -> FakeClientProxy:
        """Every connection of several users."""
        return self._proxy("users", *(str(u) for u in _names(user_ids)))

    @property
    def caller(self) -> FakeClientProxy:
        """The connection that made the call."""
        return self._proxy("caller")

    @property
    def others(self) -> FakeClientProxy:
        """Every connection but the caller."""
        return self._proxy("others")

    def others_in_group(self, group: str) -> FakeClientProxy:
        """Members of a group but the caller."""
        return self._proxy("others_in_group", group)


class FakeGroups:
    """Stands for `hub.groups`: `added` and `removed` list `(connection_id, group)` pairs."""

    def __init__(self) -> None:
        self.added: list[tuple[str, str]] = []
        self.removed: list[tuple[str, str]] = []

    @markcoroutinefunction
    def add_to_group(self, connection_id: str, group: str) -> Any:
        """Record an addition."""
        self.added.append((connection_id, group))
        return _Done()

    @markcoroutinefunction
    def remove_from_group(self, connection_id: str, group: str) -> Any:
        """Record a removal."""
        self.removed.append((connection_id, group))
        return _Done()


def make_hub(
    hub_cls: type[H],
    *,
    user: Any = None,
    connection_id: str = "test-connection",
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    query: Mapping[str, str] | str | None = None,
    items: Mapping[Any, Any] | None = None,
    protocol: str = "json",
    transport: str = "WebSockets",
) -> H:
    """A `hub_cls` instance for one call, with recording `clients` and `groups`.

    `context` is real: `connection_id`, `user` (anonymous when None), `user_identifier`
    (from USER_ID_PROVIDER), `headers`, `query`, `items`. Read the recorders with
    `fake_clients(hub)` and `fake_groups(hub)` (typed), or `hub.clients` directly.
    """
    from django.contrib.auth.models import AnonymousUser

    options = hub_options(hub_cls)
    chosen = get_protocol(protocol)
    if chosen is None:
        raise ValueError(f"Unknown hub protocol {protocol!r}: use 'json' or 'messagepack'.")
    scope = _scope("", headers, query, user)
    who = AnonymousUser() if user is None else user
    provider = load_provider(options.USER_ID_PROVIDER, options.MAXIMUM_USER_ID_LENGTH)
    connection = HubConnection(
        connection_id,
        hub_cls,
        options,
        chosen,
        scope,
        transport,
        ListOutbound(),
        who,
        provider(who, scope),
    )
    connection.items.update(items or {})
    context = HubCallerContext(connection)
    connection.caller_context = context
    hub: Any = hub_cls()
    hub._bind(connection, context)
    # `clients` and `groups` are cached properties: the instance attributes win.
    hub.clients = FakeClients(hub_cls, connection_id)
    hub.groups = FakeGroups()
    result: H = hub
    return result


def fake_clients(hub: Any) -> FakeClients:
    """The recording `clients` of a hub made by `make_hub`."""
    clients = vars(hub).get("clients")
    if not isinstance(clients, FakeClients):
        raise TypeError("This hub was not made by make_hub: its clients are real.")
    return clients


def fake_groups(hub: Any) -> FakeGroups:
    """The recording `groups` of a hub made by `make_hub`."""
    groups = vars(hub).get("groups")
    if not isinstance(groups, FakeGroups):
        raise TypeError("This hub was not made by make_hub: its groups are real.")
    return groups


async def call_method(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a bound hub method as the dispatcher does and return its result.

    `async def` methods are awaited; plain `def` methods run in a worker thread through
    `database_sync_to_async` (the ORM works, `async_to_sync` inside them works, and the
    test's event loop stays free); an async generator's items come back as a list.
    """
    func = getattr(method, "__func__", method)
    if inspect.isasyncgenfunction(func):
        return [item async for item in method(*args, **kwargs)]
    if inspect.iscoroutinefunction(func):
        return await method(*args, **kwargs)
    await close_sync_connections()
    return await database_sync_to_async(method)(*args, **kwargs)


def _names(values: Iterable[str]) -> list[str]:
    if isinstance(values, str):
        raise TypeError("Pass a list, not a single string.")
    return list(values)
