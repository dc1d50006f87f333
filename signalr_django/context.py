"""The hub context: send to a hub's clients from code that is not a hub method.

`get_hub_context(ChatHub)` serves async code (other hubs, ASGI views, background tasks on
the server's event loop). `get_sync_hub_context(ChatHub)` serves sync code (WSGI views,
management commands, task queues) with no `async_to_sync` in the caller's code.

Connections live on the event loop of the server that accepted them. A sync call made from
another thread of that process (a sync Django view under Daphne runs in a worker thread) is
carried to that loop and waits for it; in a process without a server loop (gunicorn, a
management command, a task queue worker) it runs on one background loop per process, which
publishes through the channel layer to the workers that hold the connections.
"""

from __future__ import annotations

import contextvars
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from typing_extensions import TypeVar as TypeVar_

from .clients import ClientProxy, ClientT, HubClients, SingleClientProxy, UntypedClient
from .core import reach
from .groups import GroupManager
from .lifetime.manager import HubLifetimeManager, get_lifetime_manager
from .presence.api import Presence, SyncPresence
from .sent import SYNC_TIMEOUT
from .sent import run_sync as _run_sync
from .typed import client_calls

if TYPE_CHECKING:
    from .hub import Hub
    from .typed import ClientCall

# A hub's client interface; code that only knows `type` (not which hub) gets the untyped one.
C = TypeVar_("C", default=UntypedClient)
T = TypeVar("T")

__all__ = ["SYNC_TIMEOUT", "HubContext", "SyncHubContext", "get_hub_context", "run_sync"]


def _hub_class(hub_cls: object) -> type:
    """`hub_cls` if it is a Hub subclass; a TypeError that says what to pass otherwise."""
    from .hub import Hub

    if not (isinstance(hub_cls, type) and issubclass(hub_cls, Hub)):
        raise TypeError(
            f"A hub context needs a Hub subclass (the class given to map_hub), not {hub_cls!r}."
        )
    return hub_cls


class HubContext(Generic[ClientT]):
    """Clients, groups and presence of a hub, for async code outside the hub.

    Calls return a `Sent` to await; made from a thread with no event loop they are carried
    out at once, as from the sync hub context.
    """

    __slots__ = ("clients", "groups", "hub_cls", "presence")

    def __init__(self, hub_cls: type[Hub[ClientT]]) -> None:
        hub_cls = _hub_class(hub_cls)
        lifetime = get_lifetime_manager(hub_cls)
        if not reach.serving:  # the first sends check that they can reach someone
            lifetime = cast(HubLifetimeManager, _CheckedLifetime(lifetime))
        self.hub_cls = hub_cls
        self.clients: HubClients[ClientT] = HubClients(lifetime, client_calls(hub_cls))
        self.groups = GroupManager(lifetime)
        self.presence = Presence(lifetime.hub_name)

    async def close_connection(
        self, connection_id: str, reason: str | None = None, allow_reconnect: bool = False
    ) -> bool:
        """Close a connection wherever it is (see `Presence.close_connection`)."""
        return await self.presence.close_connection(connection_id, reason, allow_reconnect)


def _checked(name: str) -> Any:
    """A lifetime-manager method that first asks `core.reach` whether a send can land."""

    def method(self: _CheckedLifetime, *args: Any, **kwargs: Any) -> Any:
        if not reach.serving:
            reach.check_send(self._lifetime)
        return getattr(self._lifetime, name)(*args, **kwargs)

    method.__name__ = name
    return method


class _CheckedLifetime:
    """A hub's lifetime manager as an async hub context made before serving began sees it.

    Its sends (what the context's proxies call) check once that they can reach anyone;
    any other attribute is the manager's own. Contexts made in a process that already
    serves connections use the manager directly.
    """

    __slots__ = ("_lifetime",)

    def __init__(self, lifetime: HubLifetimeManager) -> None:
        self._lifetime = lifetime

    send_all = _checked("send_all")
    send_connection = _checked("send_connection")
    send_connections = _checked("send_connections")
    send_group = _checked("send_group")
    send_groups = _checked("send_groups")
    send_user = _checked("send_user")
    send_users = _checked("send_users")
    invoke_connection = _checked("invoke_connection")
    add_to_group = _checked("add_to_group")
    remove_from_group = _checked("remove_from_group")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lifetime, name)


def get_hub_context(hub_cls: type[Hub[C]]) -> HubContext[C]:
    """The async hub context of `hub_cls` (typed clients for `Hub[ChatClient]`)."""
    return HubContext(hub_cls)


def run_sync(coro: Coroutine[Any, Any, T], wait: float | None = SYNC_TIMEOUT) -> T:
    """Run `coro` where this process's connections live (or on the background loop).

    For queries (presence, the REST API, the staff page) from sync code. The coroutine starts
    in an empty context: a sync view under Daphne runs in the request's thread-sensitive
    executor, and a coroutine inheriting that context would send its own sync work (the
    worker registry's cache reads) to the executor that is blocked waiting for it, hanging
    until the timeout. Sends keep the caller's context (see `sent.run_sync`).
    """
    return contextvars.Context().run(_run_sync, None, coro, wait)


class SyncClientProxy:
    """A set of clients, for sync code: every call returns once it was carried out.

    For a typed hub the Protocol's methods are here too (typed as the Protocol by
    `SyncHubClients`); they return an already completed `Sent`.
    """

    __slots__ = ("_proxy",)

    def __init__(self, proxy: ClientProxy) -> None:
        self._proxy = proxy

    def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on the clients; returns once the message was handed over."""
        self._proxy.send(method, *args)

    def _protocol_call(self, name: str) -> Any:
        """A method of the hub's client Protocol (see `ClientProxy._protocol_call`)."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._proxy, name)

    if not TYPE_CHECKING:  # see ClientProxy: the Protocol types these calls
        __getattr__ = _protocol_call


class SyncSingleClientProxy(SyncClientProxy):
    """One connection, for sync code: send to it, or ask it for a result."""

    __slots__ = ()

    _proxy: SingleClientProxy

    def invoke(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Invoke `method` on this client and return what its handler returns (blocking).

        The same errors as the async `invoke`: `ClientResultError` when the client answers
        with an error, `ConnectionGoneError` when it is not connected or leaves first, and
        `TimeoutError` after `timeout` seconds. Without a timeout the call waits as long as
        the client takes, so pass one from request handlers.
        """
        return self._proxy.invoke(method, *args, timeout=timeout).result()


class _SyncAll:
    """`clients.all` of the sync context: a `SyncClientProxy`, or the client Protocol."""

    __slots__ = ()

    @overload
    def __get__(self, obj: None, owner: Any) -> _SyncAll: ...
    @overload
    def __get__(self, obj: SyncHubClients[UntypedClient], owner: Any) -> SyncClientProxy: ...
    @overload
    def __get__(self, obj: SyncHubClients[C], owner: Any) -> C: ...
    def __get__(self, obj: SyncHubClients[Any] | None, owner: Any) -> Any:
        if obj is None:
            return self
        return SyncClientProxy(obj._clients.all)


class SyncHubClients(Generic[ClientT]):
    """The sync twin of `HubClients`: typed as the hub's client Protocol when it has one."""

    __slots__ = ("_clients",)

    def __init__(
        self, lifetime: HubLifetimeManager, calls: Mapping[str, ClientCall] | None = None
    ) -> None:
        self._clients: HubClients[Any] = HubClients(lifetime, calls, sync=True)

    all = _SyncAll()
    """Every connection of the hub."""

    @overload
    def all_except(
        self: SyncHubClients[UntypedClient], connection_ids: Iterable[str]
    ) -> SyncClientProxy: ...
    @overload
    def all_except(self: SyncHubClients[C], connection_ids: Iterable[str]) -> C: ...
    def all_except(self, connection_ids: Iterable[str]) -> Any:
        """Every connection but the listed ones."""
        return SyncClientProxy(self._clients.all_except(connection_ids))

    @overload
    def client(
        self: SyncHubClients[UntypedClient], connection_id: str
    ) -> SyncSingleClientProxy: ...
    @overload
    def client(self: SyncHubClients[C], connection_id: str) -> C: ...
    def client(self, connection_id: str) -> Any:
        """One connection: `send`, or `invoke` for a client result."""
        return SyncSingleClientProxy(self._clients.client(connection_id))

    @overload
    def clients(
        self: SyncHubClients[UntypedClient], connection_ids: Iterable[str]
    ) -> SyncClientProxy: ...
    @overload
    def clients(self: SyncHubClients[C], connection_ids: Iterable[str]) -> C: ...
    def clients(self, connection_ids: Iterable[str]) -> Any:
        """Several connections."""
        return SyncClientProxy(self._clients.clients(connection_ids))

    @overload
    def group(self: SyncHubClients[UntypedClient], group: str) -> SyncClientProxy: ...
    @overload
    def group(self: SyncHubClients[C], group: str) -> C: ...
    def group(self, group: str) -> Any:
        """Members of a group."""
        return SyncClientProxy(self._clients.group(group))

    @overload
    def groups(self: SyncHubClients[UntypedClient], groups: Iterable[str]) -> SyncClientProxy: ...
    @overload
    def groups(self: SyncHubClients[C], groups: Iterable[str]) -> C: ...
    def groups(self, groups: Iterable[str]) -> Any:
        """Members of several groups."""
        return SyncClientProxy(self._clients.groups(groups))

    @overload
    def group_except(
        self: SyncHubClients[UntypedClient], group: str, connection_ids: Iterable[str]
    ) -> SyncClientProxy: ...
    @overload
    def group_except(self: SyncHubClients[C], group: str, connection_ids: Iterable[str]) -> C: ...
    def group_except(self, group: str, connection_ids: Iterable[str]) -> Any:
        """Members of a group but the listed connections."""
        return SyncClientProxy(self._clients.group_except(group, connection_ids))

    @overload
    def user(self: SyncHubClients[UntypedClient], user_id: str) -> SyncClientProxy: ...
    @overload
    def user(self: SyncHubClients[C], user_id: str) -> C: ...
    def user(self, user_id: str) -> Any:
        """Every connection of a user."""
        return SyncClientProxy(self._clients.user(user_id))

    @overload
    def users(self: SyncHubClients[UntypedClient], user_ids: Iterable[str]) -> SyncClientProxy: ...
    @overload
    def users(self: SyncHubClients[C], user_ids: Iterable[str]) -> C: ...
    def users(self, user_ids: Iterable[str]) -> Any:
        """Every connection of several users."""
        return SyncClientProxy(self._clients.users(user_ids))


class SyncGroupManager:
    """The sync twin of `GroupManager`: each change returns once it was applied."""

    __slots__ = ("_groups",)

    def __init__(self, lifetime: HubLifetimeManager) -> None:
        self._groups = GroupManager(lifetime, sync=True)

    def add_to_group(self, connection_id: str, group: str) -> None:
        """Add a connection to a group."""
        self._groups.add_to_group(connection_id, group)

    def remove_from_group(self, connection_id: str, group: str) -> None:
        """Remove a connection from a group."""
        self._groups.remove_from_group(connection_id, group)


class SyncHubContext(Generic[ClientT]):
    """Clients, groups and presence of a hub, for sync code."""

    __slots__ = ("clients", "groups", "hub_cls", "presence")

    def __init__(self, hub_cls: type[Hub[ClientT]]) -> None:
        hub_cls = _hub_class(hub_cls)
        lifetime = get_lifetime_manager(hub_cls)
        self.hub_cls = hub_cls
        self.clients: SyncHubClients[ClientT] = SyncHubClients(lifetime, client_calls(hub_cls))
        self.groups = SyncGroupManager(lifetime)
        self.presence = SyncPresence(Presence(lifetime.hub_name), run_sync)

    def close_connection(
        self, connection_id: str, reason: str | None = None, allow_reconnect: bool = False
    ) -> bool:
        """Close a connection wherever it is; False when no worker holds it."""
        return self.presence.close_connection(connection_id, reason, allow_reconnect)


def get_sync_hub_context(hub_cls: type[Hub[C]]) -> SyncHubContext[C]:
    """The sync hub context of `hub_cls` (WSGI views, management commands, task queues)."""
    return SyncHubContext(hub_cls)
