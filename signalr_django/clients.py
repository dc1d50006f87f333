"""Client proxies: `self.clients.all.send(...)` and friends.

Each proxy is a small object that turns one call into one lifetime-manager call; `caller`,
`others` and `others_in_group` are the same calls with the current connection id filled in.
Every call returns a `Sent` (see `signalr_django.sent`): awaited in an `async def` method,
already carried out when made in a plain `def` method or other sync code.

A hub declared as `Hub[ChatClient]` gets the same proxies, typed as `ChatClient`: each
method of the Protocol becomes a send of its wire name (`receive_message` ->
`ReceiveMessage`), or a client result on a single client when it returns a value. mypy
sees the untyped proxies (`send`, `invoke`) for a plain `Hub` and the Protocol otherwise;
the `_Many`/`_One` descriptors and the self-typed overloads below choose between them.

The calls are marked as coroutine functions: they return a `Sent`, a coroutine, so
`async_to_sync(self.clients.caller.send)(...)` in older `def` methods keeps working.
"""

from __future__ import annotations

from asyncio import _get_running_loop
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from asgiref.sync import markcoroutinefunction
from typing_extensions import TypeVar as TypeVar_

from .sent import SYNC_TIMEOUT, Sent, refuse_waiting_on_the_sync_thread

if TYPE_CHECKING:
    from .lifetime.manager import HubLifetimeManager
    from .typed import ClientCall


class UntypedClient:
    """The client interface of a hub declared as plain `Hub`: `send(name, *args)` to any
    set of clients and `invoke(name, *args)` on one client."""


# The client interface a hub declares as `Hub[ChatClient]` (see `signalr_django.typed`).
ClientT = TypeVar_("ClientT", default=UntypedClient)
C = TypeVar("C")


class ClientProxy:
    """A set of clients that can be sent a method call."""

    __slots__ = ("_calls", "_lifetime", "_sync")

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        calls: Mapping[str, ClientCall] | None = None,
        sync: bool = False,
    ) -> None:
        self._lifetime = lifetime
        self._calls = calls
        self._sync = sync

    @markcoroutinefunction
    def send(self, method: str, *args: Any) -> Sent[None]:
        """Invoke `method` on every client of this set; no result is awaited."""
        raise NotImplementedError

    def _result(self, name: str, wire: str) -> Callable[..., Sent[Any]]:
        raise TypeError(
            f"{name}() returns a value, so it is a client result and needs one connection: "
            "call it on `clients.caller` or `clients.client(connection_id)`."
        )

    def _protocol_call(self, name: str) -> Callable[..., Sent[Any]]:
        """A method of the hub's client Protocol: a send of its wire name, or a result."""
        if name.startswith("_"):
            raise AttributeError(name)
        calls = self._calls
        call = calls.get(name) if calls is not None else None
        if call is None:
            known = f"; the client interface declares {sorted(calls)}" if calls else ""
            raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}{known}")
        if call.returns_value:
            return self._result(name, call.wire_name)
        return partial(self.send, call.wire_name)

    if not TYPE_CHECKING:
        # Hidden from type checkers, which would otherwise accept any attribute of the
        # untyped proxies; typed hubs see their Protocol instead of these classes.
        __getattr__ = _protocol_call


class _AllProxy(ClientProxy):
    __slots__ = ("_exclude",)

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        exclude: Iterable[str] = (),
        calls: Mapping[str, ClientCall] | None = None,
        sync: bool = False,
    ) -> None:
        self._lifetime = lifetime
        self._calls = calls
        self._sync = sync
        self._exclude = frozenset(exclude)

    @markcoroutinefunction
    def send(self, method: str, *args: Any) -> Sent[None]:
        """Invoke `method` on every connection of the hub but the excluded ones."""
        lifetime = self._lifetime
        return Sent(
            lifetime,
            method,
            lifetime.send_all,
            (method, list(args), self._exclude),
            self._sync,
        )


class SingleClientProxy(ClientProxy):
    """One connection."""

    __slots__ = ("connection_id",)

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        connection_id: str,
        calls: Mapping[str, ClientCall] | None = None,
        sync: bool = False,
    ) -> None:
        self._lifetime = lifetime
        self._calls = calls
        self._sync = sync
        self.connection_id = connection_id

    @markcoroutinefunction
    def send(self, method: str, *args: Any) -> Sent[None]:
        """Invoke `method` on this connection."""
        lifetime = self._lifetime
        return Sent(
            lifetime,
            method,
            lifetime.send_connection,
            (self.connection_id, method, list(args)),
            self._sync,
        )

    @markcoroutinefunction
    def invoke(self, method: str, *args: Any, timeout: float | None = None) -> Sent[Any]:
        """Invoke `method` on this client and get what its handler returns.

        `await` it in async code; in a `def` method the call waits for the answer and
        `.result()` reads it. Raises `ClientResultError` (a HubException) when the client
        answers with an error, `ConnectionGoneError` when it is not connected or disconnects
        first, and `TimeoutError` after `timeout` seconds (a late answer is ignored).
        A `def` method must be marked `@hub_method(thread_sensitive=False)` to wait for a
        client (see `refuse_waiting_on_the_sync_thread`).
        """
        if _get_running_loop() is None:
            refuse_waiting_on_the_sync_thread(method)
        lifetime = self._lifetime
        return Sent(
            lifetime,
            method,
            lifetime.invoke_connection,
            (self.connection_id, method, list(args), timeout),
            self._sync,
            None if timeout is None else timeout + SYNC_TIMEOUT,
        )

    def _result(self, name: str, wire: str) -> Callable[..., Sent[Any]]:
        return partial(self.invoke, wire)


class _ConnectionsProxy(ClientProxy):
    __slots__ = ("_ids",)

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        connection_ids: Iterable[str],
        calls: Mapping[str, ClientCall] | None = None,
        sync: bool = False,
    ) -> None:
        self._lifetime = lifetime
        self._calls = calls
        self._sync = sync
        self._ids = _names(connection_ids, "connection ids")

    @markcoroutinefunction
    def send(self, method: str, *args: Any) -> Sent[None]:
        """Invoke `method` on each listed connection."""
        lifetime = self._lifetime
        return Sent(
            lifetime, method, lifetime.send_connections, (self._ids, method, list(args)),
            self._sync,
        )  # fmt: skip


class _GroupProxy(ClientProxy):
    __slots__ = ("_exclude", "_group")

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        group: str,
        exclude: Iterable[str] = (),
        calls: Mapping[str, ClientCall] | None = None,
        sync: bool = False,
    ) -> None:
        self._lifetime = lifetime
        self._calls = calls
        self._sync = sync
        self._group = group
        self._exclude = frozenset(exclude)

    @markcoroutinefunction
    def send(self, method: str, *args: Any) -> Sent[None]:
        """Invoke `method` on the members of the group but the excluded ones."""
        lifetime = self._lifetime
        return Sent(
            lifetime,
            method,
            lifetime.send_group,
            (self._group, method, list(args), self._exclude),
            self._sync,
        )


class _GroupsProxy(ClientProxy):
    __slots__ = ("_groups",)

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        groups: Iterable[str],
        calls: Mapping[str, ClientCall] | None = None,
        sync: bool = False,
    ) -> None:
        self._lifetime = lifetime
        self._calls = calls
        self._sync = sync
        self._groups = _names(groups, "group names")

    @markcoroutinefunction
    def send(self, method: str, *args: Any) -> Sent[None]:
        """Invoke `method` on the members of each group."""
        lifetime = self._lifetime
        return Sent(
            lifetime, method, lifetime.send_groups, (self._groups, method, list(args)),
            self._sync,
        )  # fmt: skip


class _UsersProxy(ClientProxy):
    __slots__ = ("_users",)

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        user_ids: Iterable[str],
        calls: Mapping[str, ClientCall] | None = None,
        sync: bool = False,
    ) -> None:
        self._lifetime = lifetime
        self._calls = calls
        self._sync = sync
        self._users = [str(u) for u in _names(user_ids, "user ids")]

    @markcoroutinefunction
    def send(self, method: str, *args: Any) -> Sent[None]:
        """Invoke `method` on every connection of each user."""
        lifetime = self._lifetime
        return Sent(
            lifetime, method, lifetime.send_users, (self._users, method, list(args)),
            self._sync,
        )  # fmt: skip


def _names(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"Pass a list of {what}, not a single string.")
    return list(values)


class _Many:
    """`clients.all` / `clients.others`: a `ClientProxy`, or the hub's client Protocol."""

    __slots__ = ("_exclude_caller",)

    def __init__(self, exclude_caller: bool = False) -> None:
        self._exclude_caller = exclude_caller

    @overload
    def __get__(self, obj: None, owner: Any) -> _Many: ...
    @overload
    def __get__(self, obj: HubClients[UntypedClient], owner: Any) -> ClientProxy: ...
    @overload
    def __get__(self, obj: HubClients[C], owner: Any) -> C: ...
    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            return self
        # `others` exists on HubCallerClients only, which has `_connection_id`.
        exclude = (obj._connection_id,) if self._exclude_caller else ()
        return _AllProxy(obj._lifetime, exclude, obj._calls, obj._sync)


class _One:
    """`clients.caller`: a `SingleClientProxy`, or the hub's client Protocol."""

    __slots__ = ()

    @overload
    def __get__(self, obj: None, owner: Any) -> _One: ...
    @overload
    def __get__(self, obj: HubClients[UntypedClient], owner: Any) -> SingleClientProxy: ...
    @overload
    def __get__(self, obj: HubClients[C], owner: Any) -> C: ...
    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            return self
        # `caller` exists on HubCallerClients only, which has `_connection_id`.
        return SingleClientProxy(obj._lifetime, obj._connection_id, obj._calls, obj._sync)


class HubClients(Generic[ClientT]):
    """The clients of a hub, addressed from anywhere (hub methods and the hub context).

    For a hub declared as `Hub[ChatClient]` every set of clients is typed as `ChatClient`;
    otherwise as `ClientProxy` (`send`) and `SingleClientProxy` (`send`, `invoke`).
    """

    __slots__ = ("_calls", "_lifetime", "_sync")

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        calls: Mapping[str, ClientCall] | None = None,
        sync: bool = False,
    ) -> None:
        self._lifetime = lifetime
        self._calls = calls
        self._sync = sync

    all = _Many()
    """Every connection of the hub."""

    @overload
    def all_except(
        self: HubClients[UntypedClient], connection_ids: Iterable[str]
    ) -> ClientProxy: ...
    @overload
    def all_except(self: HubClients[C], connection_ids: Iterable[str]) -> C: ...
    def all_except(self, connection_ids: Iterable[str]) -> Any:
        """Every connection but the listed ones."""
        ids = _names(connection_ids, "connection ids")
        return _AllProxy(self._lifetime, ids, self._calls, self._sync)

    @overload
    def client(self: HubClients[UntypedClient], connection_id: str) -> SingleClientProxy: ...
    @overload
    def client(self: HubClients[C], connection_id: str) -> C: ...
    def client(self, connection_id: str) -> Any:
        """One connection: send to it, or ask it for a client result."""
        return SingleClientProxy(self._lifetime, connection_id, self._calls, self._sync)

    @overload
    def clients(self: HubClients[UntypedClient], connection_ids: Iterable[str]) -> ClientProxy: ...
    @overload
    def clients(self: HubClients[C], connection_ids: Iterable[str]) -> C: ...
    def clients(self, connection_ids: Iterable[str]) -> Any:
        """Several connections."""
        return _ConnectionsProxy(self._lifetime, connection_ids, self._calls, self._sync)

    @overload
    def group(self: HubClients[UntypedClient], group: str) -> ClientProxy: ...
    @overload
    def group(self: HubClients[C], group: str) -> C: ...
    def group(self, group: str) -> Any:
        """Members of a group."""
        return _GroupProxy(self._lifetime, group, (), self._calls, self._sync)

    @overload
    def groups(self: HubClients[UntypedClient], groups: Iterable[str]) -> ClientProxy: ...
    @overload
    def groups(self: HubClients[C], groups: Iterable[str]) -> C: ...
    def groups(self, groups: Iterable[str]) -> Any:
        """Members of several groups."""
        return _GroupsProxy(self._lifetime, groups, self._calls, self._sync)

    @overload
    def group_except(
        self: HubClients[UntypedClient], group: str, connection_ids: Iterable[str]
    ) -> ClientProxy: ...
    @overload
    def group_except(self: HubClients[C], group: str, connection_ids: Iterable[str]) -> C: ...
    def group_except(self, group: str, connection_ids: Iterable[str]) -> Any:
        """Members of a group but the listed connections."""
        ids = _names(connection_ids, "connection ids")
        return _GroupProxy(self._lifetime, group, ids, self._calls, self._sync)

    @overload
    def user(self: HubClients[UntypedClient], user_id: str) -> ClientProxy: ...
    @overload
    def user(self: HubClients[C], user_id: str) -> C: ...
    def user(self, user_id: str) -> Any:
        """Every connection of a user (see USER_ID_PROVIDER)."""
        return _UsersProxy(self._lifetime, [str(user_id)], self._calls, self._sync)

    @overload
    def users(self: HubClients[UntypedClient], user_ids: Iterable[str]) -> ClientProxy: ...
    @overload
    def users(self: HubClients[C], user_ids: Iterable[str]) -> C: ...
    def users(self, user_ids: Iterable[str]) -> Any:
        """Every connection of several users."""
        return _UsersProxy(self._lifetime, user_ids, self._calls, self._sync)


class HubCallerClients(HubClients[ClientT]):
    """`HubClients` plus the views relative to the calling connection."""

    __slots__ = ("_connection_id",)

    def __init__(
        self,
        lifetime: HubLifetimeManager,
        connection_id: str,
        calls: Mapping[str, ClientCall] | None = None,
    ) -> None:
        super().__init__(lifetime, calls)
        self._connection_id = connection_id

    caller = _One()
    """The connection that made the call."""

    others = _Many(exclude_caller=True)
    """Every connection but the caller."""

    @overload
    def others_in_group(self: HubClients[UntypedClient], group: str) -> ClientProxy: ...
    @overload
    def others_in_group(self: HubClients[C], group: str) -> C: ...
    def others_in_group(self, group: str) -> Any:
        """Members of a group but the caller."""
        return _GroupProxy(self._lifetime, group, (self._connection_id,), self._calls, self._sync)
