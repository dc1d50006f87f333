"""Client results: the server invokes a method on one client and awaits its answer.

The server sends an Invocation with an id of its own (`s1`, `s2`, ... per process, so
they never clash with ids the client picks) and waits for the client's Completion. While
it waits, the calling invocation gives its slot back (as ASP.NET Core does): otherwise a
client whose next invocation is queued behind the slot could never deliver the Completion
that frees it. Because of that, a client that never answers could make the server hold any
number of suspended hub calls: `MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT` caps them per
connection, and the call over the cap fails at once with a LimitExceededError.

When the connection ends, the calls still waiting fail with ConnectionGoneError; that is
the client's doing, so it costs one rate-limited WARNING line, never a traceback per call.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..conf import DEFAULTS
from ..exceptions import HubException, LimitExceededError
from .logs import safe_id, warn_limited

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


PENDING_RESULTS_SETTING = "MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT"


class PendingResults:
    """The client-result invocations a connection has not answered yet (at most `limit`)."""

    __slots__ = ("_limit", "_pending")

    def __init__(
        self, limit: int | None = DEFAULTS.MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT
    ) -> None:
        # The connection handler passes the hub's setting; None means no cap.
        self._limit = limit
        self._pending: dict[str, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, invocation_id: str) -> asyncio.Future[Any]:
        """Register a waiter for `invocation_id`; LimitExceededError when at the cap."""
        limit = self._limit
        if limit is not None and len(self._pending) >= limit:
            raise LimitExceededError(
                "Too many client results pending on this connection",
                PENDING_RESULTS_SETTING,
                limit,
            )
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
        """The connection ended: every waiter fails, with one log line for all of them.

        The waiting hub calls see ConnectionGoneError; the dispatcher fails them without a
        traceback, since the client going away is not a server error.
        """
        pending = self._pending
        if not pending:
            return
        text = f"Connection '{safe_id(connection_id)}' disconnected."
        waiting = 0
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionGoneError(text))
                waiting += 1
        pending.clear()
        if waiting:
            warn_limited(
                "client-gone",
                "Connection %s ended with %d client result(s) pending; they fail with "
                "ConnectionGoneError",
                safe_id(connection_id),
                waiting,
            )
