"""Group membership changes, from hubs and from the hub context."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lifetime.manager import HubLifetimeManager


class GroupManager:
    """`self.groups` in a hub; `context.groups` outside."""

    __slots__ = ("_lifetime",)

    def __init__(self, lifetime: HubLifetimeManager) -> None:
        self._lifetime = lifetime

    async def add_to_group(self, connection_id: str, group: str) -> None:
        """Add a connection to a group; adding twice is harmless."""
        await self._lifetime.add_to_group(connection_id, group)

    async def remove_from_group(self, connection_id: str, group: str) -> None:
        """Remove a connection from a group; a no-op when it is not a member."""
        await self._lifetime.remove_from_group(connection_id, group)
