"""Group membership changes, from hubs and from the hub context.

Like the client proxies, each change returns a `Sent`: awaited in async code, already
applied when made in a `def` hub method or other sync code (see `signalr_django.sent`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgiref.sync import markcoroutinefunction

from .sent import Sent

if TYPE_CHECKING:
    from .lifetime.manager import HubLifetimeManager


class GroupManager:
    """`self.groups` in a hub; `context.groups` outside."""

    __slots__ = ("_lifetime", "_sync")

    def __init__(self, lifetime: HubLifetimeManager, sync: bool = False) -> None:
        self._lifetime = lifetime
        self._sync = sync

    @markcoroutinefunction
    def add_to_group(self, connection_id: str, group: str) -> Sent[None]:
        """Add a connection to a group; adding twice is harmless."""
        lifetime = self._lifetime
        return Sent(
            lifetime,
            "add_to_group",
            lifetime.add_to_group,
            (connection_id, group),
            self._sync,
        )

    @markcoroutinefunction
    def remove_from_group(self, connection_id: str, group: str) -> Sent[None]:
        """Remove a connection from a group; a no-op when it is not a member."""
        lifetime = self._lifetime
        return Sent(
            lifetime,
            "remove_from_group",
            lifetime.remove_from_group,
            (connection_id, group),
            self._sync,
        )
