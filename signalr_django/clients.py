"""Client proxies: `self.clients.all.send(...)` and friends.

Each proxy is a small object that turns one call into one lifetime-manager call; `caller`,
`others` and `others_in_group` are the same calls with the current connection id filled in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lifetime.manager import HubLifetimeManager


class ClientProxy:
    """A set of clients that can be sent a method call."""

    __slots__ = ("_lifetime",)

    def __init__(self, lifetime: HubLifetimeManager) -> None:
        self._lifetime = lifetime

    async def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on every client of this set; no result is awaited."""
        raise NotImplementedError


class _AllProxy(ClientProxy):
    __slots__ = ("_exclude",)

    def __init__(self, lifetime: HubLifetimeManager, exclude: Iterable[str] = ()) -> None:
        super().__init__(lifetime)
        self._exclude = frozenset(exclude)

    async def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on every connection of the hub but the excluded ones."""
        await self._lifetime.send_all(method, list(args), self._exclude)


class SingleClientProxy(ClientProxy):
    """One connection."""

    __slots__ = ("connection_id",)

    def __init__(self, lifetime: HubLifetimeManager, connection_id: str) -> None:
        super().__init__(lifetime)
        self.connection_id = connection_id

    async def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on this connection."""
        await self._lifetime.send_connection(self.connection_id, method, list(args))

    async def invoke(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Invoke `method` on this client and return what its handler returns.

        Raises `ClientResultError` (a HubException) when the client answers with an error,
        `ConnectionGoneError` when it is not connected or disconnects first, and
        `TimeoutError` after `timeout` seconds (a late answer is ignored).
        """
        return await self._lifetime.invoke_connection(
            self.connection_id, method, list(args), timeout
        )


class _ConnectionsProxy(ClientProxy):
    __slots__ = ("_ids",)

    def __init__(self, lifetime: HubLifetimeManager, connection_ids: Iterable[str]) -> None:
        super().__init__(lifetime)
        self._ids = _names(connection_ids, "connection ids")

    async def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on each listed connection."""
        await self._lifetime.send_connections(self._ids, method, list(args))


class _GroupProxy(ClientProxy):
    __slots__ = ("_exclude", "_group")

    def __init__(
        self, lifetime: HubLifetimeManager, group: str, exclude: Iterable[str] = ()
    ) -> None:
        super().__init__(lifetime)
        self._group = group
        self._exclude = frozenset(exclude)

    async def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on the members of the group but the excluded ones."""
        await self._lifetime.send_group(self._group, method, list(args), self._exclude)


class _GroupsProxy(ClientProxy):
    __slots__ = ("_groups",)

    def __init__(self, lifetime: HubLifetimeManager, groups: Iterable[str]) -> None:
        super().__init__(lifetime)
        self._groups = _names(groups, "group names")

    async def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on the members of each group."""
        await self._lifetime.send_groups(self._groups, method, list(args))


class _UserProxy(ClientProxy):
    __slots__ = ("_user",)

    def __init__(self, lifetime: HubLifetimeManager, user_id: str) -> None:
        super().__init__(lifetime)
        self._user = str(user_id)

    async def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on every connection of the user."""
        await self._lifetime.send_user(self._user, method, list(args))


class _UsersProxy(ClientProxy):
    __slots__ = ("_users",)

    def __init__(self, lifetime: HubLifetimeManager, user_ids: Iterable[str]) -> None:
        super().__init__(lifetime)
        self._users = [str(u) for u in _names(user_ids, "user ids")]

    async def send(self, method: str, *args: Any) -> None:
        """Invoke `method` on every connection of each user."""
        await self._lifetime.send_users(self._users, method, list(args))


def _names(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"Pass a list of {what}, not a single string.")
    return list(values)


class HubClients:
    """The clients of a hub, addressed from anywhere (hub methods and the hub context)."""

    __slots__ = ("_lifetime",)

    def __init__(self, lifetime: HubLifetimeManager) -> None:
        self._lifetime = lifetime

    @property
    def all(self) -> ClientProxy:
        """Every connection of the hub."""
        return _AllProxy(self._lifetime)

    def all_except(self, connection_ids: Iterable[str]) -> ClientProxy:
        """Every connection but the listed ones."""
        return _AllProxy(self._lifetime, _names(connection_ids, "connection ids"))

    def client(self, connection_id: str) -> SingleClientProxy:
        """One connection."""
        return SingleClientProxy(self._lifetime, connection_id)

    def clients(self, connection_ids: Iterable[str]) -> ClientProxy:
        """Several connections."""
        return _ConnectionsProxy(self._lifetime, connection_ids)

    def group(self, group: str) -> ClientProxy:
        """Members of a group."""
        return _GroupProxy(self._lifetime, group)

    def groups(self, groups: Iterable[str]) -> ClientProxy:
        """Members of several groups."""
        return _GroupsProxy(self._lifetime, groups)

    def group_except(self, group: str, connection_ids: Iterable[str]) -> ClientProxy:
        """Members of a group but the listed connections."""
        return _GroupProxy(self._lifetime, group, _names(connection_ids, "connection ids"))

    def user(self, user_id: str) -> ClientProxy:
        """Every connection of a user (see USER_ID_PROVIDER)."""
        return _UserProxy(self._lifetime, user_id)

    def users(self, user_ids: Iterable[str]) -> ClientProxy:
        """Every connection of several users."""
        return _UsersProxy(self._lifetime, user_ids)


class HubCallerClients(HubClients):
    """`HubClients` plus the views relative to the calling connection."""

    __slots__ = ("_connection_id",)

    def __init__(self, lifetime: HubLifetimeManager, connection_id: str) -> None:
        super().__init__(lifetime)
        self._connection_id = connection_id

    @property
    def caller(self) -> SingleClientProxy:
        """The connection that made the call."""
        return SingleClientProxy(self._lifetime, self._connection_id)

    @property
    def others(self) -> ClientProxy:
        """Every connection but the caller."""
        return _AllProxy(self._lifetime, (self._connection_id,))

    def others_in_group(self, group: str) -> ClientProxy:
        """Members of a group but the caller."""
        return _GroupProxy(self._lifetime, group, (self._connection_id,))
