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

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar, cast

from .clients import ClientProxy, HubClients, SingleClientProxy
from .core import reach
from .groups import GroupManager
from .lifetime.manager import HubLifetimeManager, get_lifetime_manager

T = TypeVar("T")

SYNC_TIMEOUT = 30.0


class HubContext:
    """Clients and groups of a hub, for async code outside the hub."""

    __slots__ = ("clients", "groups", "hub_cls")

    def __init__(self, hub_cls: type) -> None:
        lifetime = get_lifetime_manager(hub_cls)
        if not reach.serving:  # the first sends check that they can reach someone
            lifetime = cast(HubLifetimeManager, _CheckedLifetime(lifetime))
        self.hub_cls = hub_cls
        self.clients = HubClients(lifetime)
        self.groups = GroupManager(lifetime)


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


def get_hub_context(hub_cls: type) -> HubContext:
    """The async hub context of `hub_cls`."""
    return HubContext(hub_cls)


def _server_loop(lifetime: HubLifetimeManager) -> asyncio.AbstractEventLoop | None:
    """The event loop that owns this process's connections, if there is one."""
    loop = lifetime.loop
    if loop is not None and loop.is_running() and not loop.is_closed():
        return loop
    # A sync view under an ASGI server runs in a thread started from the server's loop.
    from asgiref.sync import SyncToAsync

    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) == os.getpid():
        main: asyncio.AbstractEventLoop | None = getattr(local, "main_event_loop", None)
        if main is not None and main.is_running():
            return main
    return None


_private_loop: asyncio.AbstractEventLoop | None = None
_private_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """A process-wide event loop in a daemon thread, for processes without a server loop.

    WSGI workers, management commands and task queue workers send through it; keeping one
    loop alive keeps the channel layer's Redis connections warm between calls.
    """
    global _private_loop
    with _private_lock:
        if _private_loop is None or _private_loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="signalr-hub-context", daemon=True
            )
            thread.start()
            _private_loop = loop
        return _private_loop


def _run_sync(
    lifetime: HubLifetimeManager, coro: Coroutine[Any, Any, T], wait: float | None = SYNC_TIMEOUT
) -> T:
    loop = _server_loop(lifetime)
    if loop is None:
        reach.check_send(lifetime)
        loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError(
            "The sync hub context was called on the server's event loop; "
            "use `await get_hub_context(...)` in async code."
        )
    return asyncio.run_coroutine_threadsafe(coro, loop).result(wait)


class SyncClientProxy:
    """A set of clients, for sync code."""

    __slots__ = ("_lifetime", "_proxy")

    def __init__(self, lifetime: HubLifetimeManager, proxy: ClientProxy) -> None:
        self._lifetime = lifetime
        self._proxy = proxy

    def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on the clients; returns once the message was handed over."""
        _run_sync(self._lifetime, self._proxy.send(method, *args))


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
        wait = None if timeout is None else timeout + SYNC_TIMEOUT
        return _run_sync(
            self._lifetime, self._proxy.invoke(method, *args, timeout=timeout), wait=wait
        )


class SyncHubClients:
    """The sync twin of `HubClients`."""

    __slots__ = ("_clients", "_lifetime")

    def __init__(self, lifetime: HubLifetimeManager) -> None:
        self._lifetime = lifetime
        self._clients = HubClients(lifetime)

    def _wrap(self, proxy: ClientProxy) -> SyncClientProxy:
        return SyncClientProxy(self._lifetime, proxy)

    @property
    def all(self) -> SyncClientProxy:
        """Every connection of the hub."""
        return self._wrap(self._clients.all)

    def all_except(self, connection_ids: Iterable[str]) -> SyncClientProxy:
        """Every connection but the listed ones."""
        return self._wrap(self._clients.all_except(connection_ids))

    def client(self, connection_id: str) -> SyncSingleClientProxy:
        """One connection: `send`, or `invoke` for a client result."""
        proxy: SingleClientProxy = self._clients.client(connection_id)
        return SyncSingleClientProxy(self._lifetime, proxy)

    def clients(self, connection_ids: Iterable[str]) -> SyncClientProxy:
        """Several connections."""
        return self._wrap(self._clients.clients(connection_ids))

    def group(self, group: str) -> SyncClientProxy:
        """Members of a group."""
        return self._wrap(self._clients.group(group))

    def groups(self, groups: Iterable[str]) -> SyncClientProxy:
        """Members of several groups."""
        return self._wrap(self._clients.groups(groups))

    def group_except(self, group: str, connection_ids: Iterable[str]) -> SyncClientProxy:
        """Members of a group but the listed connections."""
        return self._wrap(self._clients.group_except(group, connection_ids))

    def user(self, user_id: str) -> SyncClientProxy:
        """Every connection of a user."""
        return self._wrap(self._clients.user(user_id))

    def users(self, user_ids: Iterable[str]) -> SyncClientProxy:
        """Every connection of several users."""
        return self._wrap(self._clients.users(user_ids))


class SyncGroupManager:
    """The sync twin of `GroupManager`."""

    __slots__ = ("_groups", "_lifetime")

    def __init__(self, lifetime: HubLifetimeManager) -> None:
        self._lifetime = lifetime
        self._groups = GroupManager(lifetime)

    def add_to_group(self, connection_id: str, group: str) -> None:
        """Add a connection to a group."""
        _run_sync(self._lifetime, self._groups.add_to_group(connection_id, group))

    def remove_from_group(self, connection_id: str, group: str) -> None:
        """Remove a connection from a group."""
        _run_sync(self._lifetime, self._groups.remove_from_group(connection_id, group))


class SyncHubContext:
    """Clients and groups of a hub, for sync code."""

    __slots__ = ("clients", "groups", "hub_cls")

    def __init__(self, hub_cls: type) -> None:
        lifetime = get_lifetime_manager(hub_cls)
        self.hub_cls = hub_cls
        self.clients = SyncHubClients(lifetime)
        self.groups = SyncGroupManager(lifetime)


def get_sync_hub_context(hub_cls: type) -> SyncHubContext:
    """The sync hub context of `hub_cls` (WSGI views, management commands, task queues)."""
    return SyncHubContext(hub_cls)
