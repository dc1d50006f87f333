"""`ctx.presence`: who is connected to a hub, across every worker, from async or sync code.

Every method returns an `Answer`: the merged value plus the workers that answered and the
ones that did not within `QUERY_TIMEOUT` (see `gather.py` for the consistency model).
The sync twin runs the same coroutines on the server's loop or the process's background
loop, as the rest of the sync hub context does (`context.py`).
"""

from __future__ import annotations

from typing import Any

from ..lifetime import names
from . import answer
from .answer import Answer
from .gather import close_connection, gather

DEFAULT_LIMIT = 1000


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}.")
    return value


class Presence:
    """Cluster-wide queries about one hub (async)."""

    __slots__ = ("hub_key", "hub_name", "timeout")

    def __init__(self, hub_name: str, timeout: float | None = None) -> None:
        self.hub_name = hub_name
        self.hub_key = names.hub_key(hub_name)
        self.timeout = timeout

    async def _ask(self, kind: str, arg: Any = None, limit: int | None = None) -> Answer[Any]:
        return await gather(kind, self.hub_key, arg, limit, self.timeout)

    async def connection_count(self) -> Answer[int]:
        """How many connections the hub has."""
        return await self._ask(answer.COUNT)

    async def user_connection_count(self, user_id: str) -> Answer[int]:
        """How many connections `user_id` has on the hub."""
        return await self._ask(answer.USER_COUNT, _check_name(user_id, "A user id"))

    async def user_online(self, user_id: str) -> Answer[bool]:
        """Whether `user_id` has at least one connection to the hub."""
        count = await self.user_connection_count(user_id)
        return Answer(count.value > 0, count.workers_replied, count.workers_missing)

    async def user_connections(self, user_id: str) -> Answer[list[str]]:
        """The connection ids of `user_id` (sorted)."""
        return await self._ask(answer.USER_CONNECTIONS, _check_name(user_id, "A user id"))

    async def group_member_count(self, group: str) -> Answer[int]:
        """How many connections are in `group`."""
        return await self._ask(answer.GROUP_COUNT, _check_name(group, "A group name"))

    async def connection_groups(self, connection_id: str) -> Answer[list[str] | None]:
        """The groups `connection_id` is in (sorted); None when no worker holds it."""
        cid = _check_name(connection_id, "A connection id")
        return await self._ask(answer.CONNECTION_GROUPS, cid)

    async def groups(self) -> Answer[dict[str, int]]:
        """Every group with at least one member, with its member count."""
        return await self._ask(answer.GROUPS)

    async def connections(self, limit: int = DEFAULT_LIMIT) -> Answer[list[dict[str, Any]]]:
        """The hub's connections (id, user, transport, protocol, groups, worker), at most `limit`.

        Each worker lists at most `limit`, so the answer's size stays bounded however large
        the hub is; use the counts for totals.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"The limit must be a whole number >= 1, not {limit!r}.")
        return await self._ask(answer.CONNECTIONS, limit=limit)

    async def close_connection(
        self, connection_id: str, reason: str | None = None, allow_reconnect: bool = False
    ) -> bool:
        """Close a connection wherever it is; False when no worker holds it.

        The client gets a Close message with `reason` as its error and `allow_reconnect`
        (the official clients with automatic reconnect then reconnect).
        """
        cid = _check_name(connection_id, "A connection id")
        return await close_connection(self.hub_key, cid, reason, allow_reconnect, self.timeout)


class SyncPresence:
    """The sync twin of `Presence` (WSGI views, management commands, task queues)."""

    __slots__ = ("_presence", "_run")

    def __init__(self, presence: Presence, run: Any) -> None:
        self._presence = presence
        self._run = run

    def connection_count(self) -> Answer[int]:
        """How many connections the hub has."""
        result: Answer[int] = self._run(self._presence.connection_count())
        return result

    def user_connection_count(self, user_id: str) -> Answer[int]:
        """How many connections `user_id` has on the hub."""
        result: Answer[int] = self._run(self._presence.user_connection_count(user_id))
        return result

    def user_online(self, user_id: str) -> Answer[bool]:
        """Whether `user_id` has at least one connection to the hub."""
        result: Answer[bool] = self._run(self._presence.user_online(user_id))
        return result

    def user_connections(self, user_id: str) -> Answer[list[str]]:
        """The connection ids of `user_id` (sorted)."""
        result: Answer[list[str]] = self._run(self._presence.user_connections(user_id))
        return result

    def group_member_count(self, group: str) -> Answer[int]:
        """How many connections are in `group`."""
        result: Answer[int] = self._run(self._presence.group_member_count(group))
        return result

    def connection_groups(self, connection_id: str) -> Answer[list[str] | None]:
        """The groups `connection_id` is in; None when no worker holds it."""
        result: Answer[list[str] | None] = self._run(
            self._presence.connection_groups(connection_id)
        )
        return result

    def groups(self) -> Answer[dict[str, int]]:
        """Every group with at least one member, with its member count."""
        result: Answer[dict[str, int]] = self._run(self._presence.groups())
        return result

    def connections(self, limit: int = DEFAULT_LIMIT) -> Answer[list[dict[str, Any]]]:
        """The hub's connections, at most `limit` per worker."""
        result: Answer[list[dict[str, Any]]] = self._run(self._presence.connections(limit))
        return result

    def close_connection(
        self, connection_id: str, reason: str | None = None, allow_reconnect: bool = False
    ) -> bool:
        """Close a connection wherever it is; False when no worker holds it."""
        result: bool = self._run(
            self._presence.close_connection(connection_id, reason, allow_reconnect)
        )
        return result


async def cluster_status(timeout: float | None = None) -> Answer[list[dict[str, Any]]]:
    """Every worker's status (name, host, pid, connections, limit, draining, hubs)."""
    return await gather(answer.STATUS, timeout=timeout)


def cluster_status_sync(timeout: float | None = None) -> Answer[list[dict[str, Any]]]:
    """`cluster_status` for sync code."""
    from ..context import run_sync

    result: Answer[list[dict[str, Any]]] = run_sync(cluster_status(timeout))
    return result


def hub_name_of(hub_cls: type) -> str:
    """The name a hub class is known by across workers (its dotted path)."""
    return f"{hub_cls.__module__}.{hub_cls.__qualname__}"
