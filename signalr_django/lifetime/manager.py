"""The hub lifetime manager: the one place that knows where connections are.

One manager per hub class per process keeps the live connections of that hub with their
groups and users, and fans messages out to them. A message is serialised once per protocol
(`SerializedMessage`) and the same record is written to every recipient, so fan-out costs a
dictionary walk and one transport write per connection, not a trip through a channel layer
per recipient.

Group and user names are compared exactly (ordinal, case-sensitive) as in ASP.NET Core.
Sends to connections, groups or users that do not exist are silent no-ops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .serialized import SerializedMessage

if TYPE_CHECKING:
    from ..core.connection import HubConnection

logger = logging.getLogger(__name__)


class HubLifetimeManager:
    """Connections, groups and users of one hub in this process."""

    def __init__(self, hub_name: str) -> None:
        self.hub_name = hub_name
        self.connections: dict[str, HubConnection] = {}
        self.groups: dict[str, dict[str, HubConnection]] = {}
        self.users: dict[str, dict[str, HubConnection]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def on_connected(self, connection: HubConnection) -> None:
        """Register a connection that completed its handshake."""
        self.loop = asyncio.get_running_loop()
        self.connections[connection.connection_id] = connection
        uid = connection.user_identifier
        if uid is not None:
            self.users.setdefault(uid, {})[connection.connection_id] = connection

    def on_disconnected(self, connection: HubConnection) -> None:
        """Forget a connection and every membership it had."""
        cid = connection.connection_id
        self.connections.pop(cid, None)
        for name in connection.group_names:
            members = self.groups.get(name)
            if members is not None:
                members.pop(cid, None)
                if not members:
                    del self.groups[name]
        connection.group_names.clear()
        uid = connection.user_identifier
        if uid is not None:
            members = self.users.get(uid)
            if members is not None:
                members.pop(cid, None)
                if not members:
                    del self.users[uid]

    # -- groups --------------------------------------------------------------------------

    async def add_to_group(self, connection_id: str, group: str) -> None:
        """Add a connection to a group (idempotent)."""
        _check_group(group)
        connection = self.connections.get(connection_id)
        if connection is None:
            return
        self.groups.setdefault(group, {})[connection_id] = connection
        connection.group_names.add(group)

    async def remove_from_group(self, connection_id: str, group: str) -> None:
        """Remove a connection from a group (no-op when it is not a member)."""
        _check_group(group)
        connection = self.connections.get(connection_id)
        if connection is None:
            return
        members = self.groups.get(group)
        if members is not None:
            members.pop(connection_id, None)
            if not members:
                del self.groups[group]
        connection.group_names.discard(group)

    # -- sends ---------------------------------------------------------------------------

    async def send_all(self, method: str, args: list[Any], exclude: Iterable[str] = ()) -> None:
        """Every connection of the hub but the excluded ids."""
        await self._fan_out(self.connections.values(), SerializedMessage(method, args), exclude)

    async def send_connection(self, connection_id: str, method: str, args: list[Any]) -> None:
        """One connection."""
        connection = self.connections.get(connection_id)
        if connection is not None:
            await self._fan_out((connection,), SerializedMessage(method, args))

    async def invoke_connection(
        self, connection_id: str, method: str, args: list[Any], timeout: float | None
    ) -> Any:
        """A client result from one connection."""
        from ..core.results import ConnectionGoneError

        connection = self.connections.get(connection_id)
        if connection is None:
            raise ConnectionGoneError(f"Connection '{connection_id}' does not exist.")
        return await connection.invoke_client(method, args, timeout)

    async def send_connections(
        self, connection_ids: Iterable[str], method: str, args: list[Any]
    ) -> None:
        """Several connections by id."""
        targets = [c for c in map(self.connections.get, dict.fromkeys(connection_ids)) if c]
        await self._fan_out(targets, SerializedMessage(method, args))

    async def send_group(
        self, group: str, method: str, args: list[Any], exclude: Iterable[str] = ()
    ) -> None:
        """Members of one group but the excluded ids."""
        _check_group(group)
        members = self.groups.get(group)
        if members:
            await self._fan_out(list(members.values()), SerializedMessage(method, args), exclude)

    async def send_groups(self, groups: Iterable[str], method: str, args: list[Any]) -> None:
        """Members of several groups; a connection in two of them gets the message twice."""
        message = SerializedMessage(method, args)
        for group in groups:
            _check_group(group)
            members = self.groups.get(group)
            if members:
                await self._fan_out(list(members.values()), message)

    async def send_user(self, user_id: str, method: str, args: list[Any]) -> None:
        """Every connection of one user."""
        members = self.users.get(user_id)
        if members:
            await self._fan_out(list(members.values()), SerializedMessage(method, args))

    async def send_users(self, user_ids: Iterable[str], method: str, args: list[Any]) -> None:
        """Every connection of several users."""
        message = SerializedMessage(method, args)
        for user_id in user_ids:
            members = self.users.get(user_id)
            if members:
                await self._fan_out(list(members.values()), message)

    async def _fan_out(
        self,
        targets: Iterable[HubConnection],
        message: SerializedMessage,
        exclude: Iterable[str] = (),
    ) -> None:
        """Write one serialised message to each target; a failing target never stops the rest."""
        excluded = exclude if isinstance(exclude, set | frozenset) else set(exclude)
        snapshot = targets if isinstance(targets, list | tuple) else list(targets)
        for connection in snapshot:
            if excluded and connection.connection_id in excluded:
                continue
            try:
                await connection.write(message.payload(connection.protocol))
            except Exception:  # one broken connection must not stop the broadcast
                logger.debug("Failed writing to %s", connection.connection_id, exc_info=True)


def _check_group(group: str) -> None:
    if not isinstance(group, str):
        raise TypeError("Group names must be strings.")
    if not group:
        raise ValueError("Cannot send to an empty group name.")


_managers: dict[type, HubLifetimeManager] = {}


def get_lifetime_manager(hub_cls: type) -> HubLifetimeManager:
    """The process-wide manager of `hub_cls`, created on first use."""
    manager = _managers.get(hub_cls)
    if manager is None:
        manager = HubLifetimeManager(f"{hub_cls.__module__}.{hub_cls.__qualname__}")
        _managers[hub_cls] = manager
    return manager
