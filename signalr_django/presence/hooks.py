"""Presence hooks: a user's first connection anywhere, and their last disconnection anywhere.

A hub that defines `on_user_first_connected(user_id)` or `on_user_last_disconnected(user_id)`
has them called, on a hub instance bound to the connection that caused the event, when the
user goes from no connection to one on any worker of the hub, and back. Hubs that define
neither pay nothing.

How "anywhere" is decided: each worker tracks its own users exactly; when a user gets their
first connection on this worker it increments a per-(hub, user) counter of workers in the
cache named by `LOAD_CACHE` (`INCR`, atomic on Redis), and when their last connection here
ends it decrements it. The worker whose increment reached 1 calls the first-connected hook;
the one whose decrement reached 0 calls the last-disconnected hook. So there are only two
cache round trips per user per worker transition, none per message, and two workers seeing
the same user at the same instant cannot both (or neither) call the hook.

Limits: a worker killed without shutdown never decrements, so its users stay counted
until their counter expires (`COUNTER_TTL`, renewed at each transition); a graceful
shutdown closes connections normally and decrements. Without a backplane (one process) the
counter is this process's own. Events of one user run in order; hooks run after the
connection's `on_connected` and after its `on_disconnected`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.connection import HubConnection

logger = logging.getLogger(__name__)

COUNTER_KEY = "signalr:online:{hub}:{user}"
# A worker killed without shutdown leaves its users counted for at most this long after
# their last transition (seconds).
COUNTER_TTL = 24 * 3600

FIRST = "on_user_first_connected"
LAST = "on_user_last_disconnected"


def has_hooks(hub_cls: type) -> bool:
    """Whether `hub_cls` overrides either presence hook."""
    from ..hub import Hub

    return any(getattr(hub_cls, name) is not getattr(Hub, name) for name in (FIRST, LAST))


class PresenceTracker:
    """One hub's users on this worker, and the cluster-wide transitions they cause."""

    def __init__(self, hub_key: str) -> None:
        self.hub_key = hub_key
        self.local: dict[str, int] = {}
        self.counted: set[str] = set()
        # Per user: a lock keeping their transitions in order, and how many are queued.
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def connected(self, connection: HubConnection) -> None:
        """A connection of a user completed `on_connected`."""
        uid = connection.user_identifier
        if uid is None:
            return
        self.counted.add(connection.connection_id)
        count = self.local.get(uid, 0) + 1
        self.local[uid] = count
        if count == 1:
            self._spawn(uid, connection, +1)

    def disconnected(self, connection: HubConnection) -> None:
        """A counted connection ended (after `on_disconnected`)."""
        uid = connection.user_identifier
        if uid is None or connection.connection_id not in self.counted:
            return
        self.counted.discard(connection.connection_id)
        count = self.local.get(uid, 1) - 1
        if count > 0:
            self.local[uid] = count
            return
        self.local.pop(uid, None)
        self._spawn(uid, connection, -1)

    def _spawn(self, uid: str, connection: HubConnection, delta: int) -> None:
        task = asyncio.get_running_loop().create_task(self._transition(uid, connection, delta))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _transition(self, uid: str, connection: HubConnection, delta: int) -> None:
        lock, queued = self._locks.setdefault(uid, (asyncio.Lock(), [0]))
        queued[0] += 1
        try:
            async with lock:
                try:
                    workers = await self._count(uid, delta)
                except Exception:
                    logger.warning("Updating the presence counter failed", exc_info=True)
                    return
                if delta > 0 and workers == 1:
                    await self._call(FIRST, connection, uid)
                elif delta < 0 and workers <= 0:
                    await self._call(LAST, connection, uid)
        finally:
            queued[0] -= 1
            if not queued[0]:
                self._locks.pop(uid, None)

    async def _count(self, uid: str, delta: int) -> int:
        """The number of workers holding `uid` after this worker's transition."""
        from ..lifetime.default import default_backplane

        if default_backplane() is None:
            return 1 if delta > 0 else 0  # one process: this worker's count is the count
        from django.core.cache import caches

        from ..conf import global_options

        cache = caches[global_options().LOAD_CACHE]
        digest = hashlib.blake2b(uid.encode("utf-8", "surrogatepass"), digest_size=16)
        key = COUNTER_KEY.format(hub=self.hub_key, user=digest.hexdigest())
        if delta > 0:
            await cache.aadd(key, 0, timeout=COUNTER_TTL)
        try:
            value = int(await cache.aincr(key, delta))
        except ValueError:
            # Expired or never counted (a decrement after a restart of the cache): count
            # this worker's transition alone.
            if delta < 0:
                return 0
            await cache.aset(key, 1, timeout=COUNTER_TTL)
            return 1
        await cache.atouch(key, COUNTER_TTL)
        if value < 0:
            await cache.aset(key, 0, timeout=COUNTER_TTL)
        return value

    async def _call(self, name: str, connection: HubConnection, uid: str) -> None:
        try:
            hub = connection.hub_cls()
            hub._bind(connection, connection.caller_context)
            await getattr(hub, name)(uid)
        except Exception:
            logger.exception("%s of %s failed", name, connection.hub_cls.__qualname__)


_trackers: dict[type, PresenceTracker | None] = {}


def tracker_for(hub_cls: type) -> PresenceTracker | None:
    """The process's tracker of `hub_cls`, or None when the hub defines no hook."""
    if hub_cls not in _trackers:
        from ..lifetime.names import hub_key

        name = f"{hub_cls.__module__}.{hub_cls.__qualname__}"
        _trackers[hub_cls] = PresenceTracker(hub_key(name)) if has_hooks(hub_cls) else None
    return _trackers[hub_cls]
