"""Client results: the server invokes a method on one client and awaits its answer.

The server sends an Invocation with an id of its own (`s1`, `s2`, ... per process, so
they never clash with ids the client picks) and waits for the client's Completion. While
it waits, the calling invocation gives its slot back (as ASP.NET Core does): otherwise a
client whose next invocation is queued behind the slot could never deliver the Completion
that frees it.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import HubException

if TYPE_CHECKING:
    from .connection import HubConnection

_ids = itertools.count(1)


class ClientResultError(HubException):
    """The client answered a client-result invocation with an error."""


class ConnectionGoneError(ConnectionError):
    """The client disconnected (or never existed) before answering."""


@dataclass(slots=True)
class InvocationScope:
    """What the running hub call holds: its connection and whether it took a slot."""

    connection: HubConnection | None
    holds_slot: bool = False
    in_on_connected: bool = False
    released: bool = field(default=False)

    def release_slot(self) -> None:
        """Give the slot back early (once)."""
        if self.holds_slot and not self.released and self.connection is not None:
            self.released = True
            self.connection.release_slot()


current_scope: contextvars.ContextVar[InvocationScope | None] = contextvars.ContextVar(
    "signalr_invocation_scope", default=None
)


def next_invocation_id() -> str:
    """A server-side invocation id."""
    return f"s{next(_ids)}"


class PendingResults:
    """The client-result invocations a connection has not answered yet."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[Any]] = {}

    def add(self, invocation_id: str) -> asyncio.Future[Any]:
        """Register a waiter for `invocation_id`."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[invocation_id] = future
        return future

    def discard(self, invocation_id: str) -> None:
        """Forget a waiter (timed out or cancelled: a late answer is then ignored)."""
        self._pending.pop(invocation_id, None)

    def resolve(self, invocation_id: str, error: str | None, result: Any) -> bool:
        """Deliver the client's Completion; False when nobody waits for that id."""
        future = self._pending.pop(invocation_id, None)
        if future is None:
            return False
        if not future.done():
            if error is not None:
                future.set_exception(ClientResultError(error))
            else:
                future.set_result(result)
        return True

    def fail_all(self, connection_id: str) -> None:
        """The connection ended: every waiter fails."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    ConnectionGoneError(f"Connection '{connection_id}' disconnected.")
                )
        self._pending.clear()
