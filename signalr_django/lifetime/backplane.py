"""The backplane: hub messages between worker processes, over a Channels channel layer.

Each process opens ONE channel on the layer (its worker channel) and joins layer groups on
behalf of all its connections: the hub's `all` group, and a group per SignalR group, user
and connection that has a member in this process. A send is therefore one layer message
per target (one Redis PUBLISH on `RedisPubSubChannelLayer`), never one per recipient; the
receiving process fans it out to its local connections with the records already serialised
for every protocol. This is what ASP.NET Core's Redis backplane does, on the channel layer a
Django project already configures.

Sends (`broadcast`) also go into a short per-hub history in Redis when the layer allows it
(`history.py`): a worker whose subscriber connection comes back reads what it missed while
it was resubscribing, so a send acknowledged to its sender is not lost in that gap.

Requests that need an answer (a group change for a connection held elsewhere, a client
result, a long-polling request that reached the wrong worker) carry the requester's worker
channel and an id; the owner answers on that channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ..exceptions import BackplaneError
from ..metrics.counters import METRICS
from .history import RedisHistory, counters, id_after

logger = logging.getLogger(__name__)

__all__ = ["Backplane", "BackplaneError", "layer_is_local"]

Handler = Callable[[dict[str, Any]], Awaitable[None]]

# The group readiness probes send to; no worker ever joins it.
PROBE_GROUP = "signalr.probe"


class Backplane:
    """One worker's link to the other workers, through one channel layer."""

    def __init__(
        self, layer: Any, request_timeout: float = 5.0, refresh_interval: float | None = None
    ) -> None:
        self.layer = layer
        self.request_timeout = request_timeout
        self.refresh_interval = refresh_interval
        self._refresher: asyncio.Task[None] | None = None
        self._repair: asyncio.Task[None] | None = None
        self.channel: str | None = None
        self.handlers: dict[str, Handler] = {}
        # The lifetime managers served through this backplane, by hub key.
        self.hubs: dict[str, Any] = {}
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock: asyncio.Lock | None = None
        self._joined: dict[str, int] = {}
        self.streams: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        # Delivery across resubscriptions (see history.py): the last history id delivered
        # per hub, the hubs whose live sends are ignored until their mark arrives (value:
        # the mark's token), the hubs waiting for a first mark, and the task sending marks.
        self.history: RedisHistory | None = None
        self._watching = False
        self._cursors: dict[str, str] = {}
        self._syncing: dict[str, str] = {}
        self._baselines: dict[str, str] = {}
        self._marked: asyncio.Event | None = None
        self._marker: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> str:
        """Open the worker channel and start receiving (idempotent); returns the channel."""
        if self.channel is not None and self._task is not None and not self._task.done():
            return self.channel
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self.channel is None:
                self.channel = await self._bounded(self.layer.new_channel("signalr.worker."))
            if self._task is None or self._task.done():
                self._loop = asyncio.get_running_loop()
                self._task = self._loop.create_task(self._receive_loop())
                if self.refresh_interval:
                    self._refresher = self._loop.create_task(self._refresh_loop())
            if self.history is not None and not self._watching:
                self._watching = self.history.watch(self._on_reconnect)
        assert self.channel is not None
        return self.channel

    async def stop(self) -> None:
        """Stop receiving (tests; a server process simply exits)."""
        tasks = [
            t for t in (self._refresher, self._repair, self._marker, self._task) if t is not None
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            # A layer's receive may take a moment to unwind; never wait forever for it.
            await asyncio.wait(tasks, timeout=2.0)
        self._task = None

    def on(self, message_type: str, handler: Handler) -> None:
        """Route received messages of `message_type` to `handler`."""
        self.handlers[message_type] = handler

    # -- groups --------------------------------------------------------------------------

    async def join(self, group: str) -> None:
        """Join a layer group for this worker (reference-counted per group name).

        A failure (Redis unreachable) is not fatal: the membership is remembered and
        re-added by the repair loop once the layer answers again, so connections keep
        working locally meanwhile and become reachable from other workers afterwards.
        """
        count = self._joined.get(group, 0)
        self._joined[group] = count + 1
        if count == 0:
            channel = await self.start()
            try:
                await self._bounded(self.layer.group_add(group, channel))
            except BackplaneError:
                logger.warning("Joining backplane group failed; will retry", exc_info=True)
                self._schedule_repair()

    async def leave(self, group: str) -> None:
        """Leave a layer group once no local member needs it."""
        count = self._joined.get(group, 0)
        if count <= 1:
            self._joined.pop(group, None)
            if count == 1 and self.channel is not None:
                try:
                    await self._bounded(self.layer.group_discard(group, self.channel))
                except BackplaneError:
                    logger.debug("Leaving backplane group failed", exc_info=True)
        else:
            self._joined[group] = count - 1

    async def _bounded(self, operation: Any) -> Any:
        """Run a layer operation with the backplane timeout; failures become BackplaneError."""
        try:
            return await asyncio.wait_for(operation, self.request_timeout)
        except TimeoutError as exc:
            METRICS.count_backplane_error()
            raise BackplaneError(
                f"The channel layer did not answer within {self.request_timeout:g} s."
            ) from exc
        except BackplaneError:
            raise
        except Exception as exc:
            METRICS.count_backplane_error()
            raise BackplaneError(f"The channel layer failed: {exc}") from exc

    def _schedule_repair(self) -> None:
        if self._repair is None or self._repair.done():
            self._repair = asyncio.get_running_loop().create_task(self._repair_loop())

    async def _repair_loop(self) -> None:
        """Re-add every membership until the layer accepts them all."""
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                await self._bounded(self.refresh())
                logger.info("Backplane group memberships restored")
                # Groups subscribed only now may have missed sends: catch up on them too.
                self._resync(list(self.hubs))
                return
            except BackplaneError:
                delay = min(delay * 2, 5.0)

    async def _refresh_loop(self) -> None:
        assert self.refresh_interval
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except Exception:
                logger.warning("Refreshing backplane group memberships failed", exc_info=True)

    async def refresh(self) -> None:
        """Re-add every membership (layers whose memberships expire need this now and then)."""
        if self.channel is None:
            return
        for group in list(self._joined):
            await self.layer.group_add(group, self.channel)

    async def probe(self, timeout: float | None = None) -> bool:
        """Whether the channel layer answers now (readiness): one send nobody receives.

        A `group_send` to a group no worker joins costs the layer one round trip to its
        server (a PUBLISH, or a ZRANGE for the classic layer) and fails or times out while
        that server is unreachable, whatever traffic the worker has had lately.
        """
        try:
            await asyncio.wait_for(
                self.layer.group_send(PROBE_GROUP, {"type": "signalr.probe"}),
                timeout if timeout is not None else self.request_timeout,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            METRICS.count_backplane_error()
            return False
        return True

    # -- messages ------------------------------------------------------------------------

    async def publish(self, group: str, message: dict[str, Any]) -> None:
        """Send `message` to every worker in `group` (one layer message)."""
        message["o"] = await self.start()
        METRICS.count_publish()
        await self._bounded(self.layer.group_send(group, message))

    async def broadcast(self, hub_key: str, group: str, message: dict[str, Any]) -> None:
        """Send a hub message to every worker in `group`: one Redis call.

        With a history, the message is also kept in the hub's history, so a worker that was
        resubscribing when it was published still gets it (see history.py).
        """
        history = self.history
        if history is None:
            await self.publish(group, message)
            return
        message["o"] = await self.start()
        METRICS.count_publish()
        await self._bounded(history.publish(hub_key, history.group_channel(group), message))

    def track(self, hub_key: str) -> None:
        """Start following the history of a hub served here (from its first mark)."""
        if self.history is not None and hub_key not in self._cursors:
            self._baselines.setdefault(hub_key, uuid.uuid4().hex)
            self._ensure_marker()

    async def request(
        self, group: str, message: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Publish and wait for the first reply; TimeoutError when nobody answers."""
        rid = uuid.uuid4().hex
        future = self.expect(rid)
        message["i"] = rid
        started = time.perf_counter()
        try:
            await self.publish(group, message)
            reply = await asyncio.wait_for(future, timeout or self.request_timeout)
            METRICS.observe_roundtrip(time.perf_counter() - started)
            return reply
        finally:
            self._pending.pop(rid, None)

    def expect(self, rid: str) -> asyncio.Future[dict[str, Any]]:
        """Register interest in the reply with id `rid`."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        return future

    def forget(self, rid: str) -> None:
        """Stop waiting for `rid` (a late reply is then dropped)."""
        self._pending.pop(rid, None)

    async def send_to(self, channel: str, message: dict[str, Any]) -> None:
        """Send to one worker's channel."""
        await self._bounded(self.layer.send(channel, message))

    async def reply(self, request: dict[str, Any], **values: Any) -> None:
        """Answer a request on the requester's channel."""
        reply_to = request.get("o")
        rid = request.get("i")
        if not reply_to or not rid:
            return
        await self.send_to(reply_to, {"type": "signalr.reply", "i": rid, **values})

    # -- receiving -----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        assert self.channel is not None
        delay = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel)
                delay = 0.1
                METRICS.count_receive()
            except asyncio.CancelledError:
                raise
            except Exception:
                METRICS.count_backplane_error()
                logger.warning("Backplane receive failed; retrying in %.1f s", delay, exc_info=True)
                # The layer lost its connection: memberships may be gone with it (a Redis
                # restart empties the classic layer's groups), so re-add them all once the
                # layer answers again.
                self._schedule_repair()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                await self._handle(message)
            except Exception:
                logger.exception("Error processing backplane message %s", message.get("type"))

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "signalr.send" and "s" in message and not self._accept(message):
            return
        if kind == "signalr.mark":
            await self._on_mark(message)
            return
        if kind == "signalr.reply":
            future = self._pending.get(message.get("i", ""))
            if future is not None and not future.done():
                future.set_result(message)
            return
        if kind == "signalr.stream":
            queue = self.streams.get(message.get("i", ""))
            if queue is not None:
                queue.put_nowait(message)
            return
        handler = self.handlers.get(kind or "")
        if handler is not None:
            await handler(message)

    # -- delivery across resubscriptions -------------------------------------------------

    def _accept(self, message: dict[str, Any]) -> bool:
        """Whether a live send with a history id is to be delivered now.

        Not while its hub is resynchronising (the catch-up delivers it in order), and not
        twice (the catch-up already did).
        """
        hub = message.get("h", "")
        if hub not in self.hubs:
            return True
        if hub in self._syncing:
            return False
        sid = str(message["s"])
        cursor = self._cursors.get(hub)
        if cursor is not None and not id_after(sid, cursor):
            return False
        self._cursors[hub] = sid
        return True

    def _on_reconnect(self, connection: Any) -> None:
        """The subscriber connection came back (its SUBSCRIBEs were just resent)."""
        logger.info("Backplane subscriber reconnected; catching up on missed messages")
        self._resync(list(self.hubs))

    def _resync(self, hubs: list[str]) -> None:
        if self.history is None or not hubs:
            return
        token = uuid.uuid4().hex
        for hub in hubs:
            if hub in self._cursors:
                self._syncing[hub] = token
            else:
                self._baselines[hub] = token
        self._ensure_marker()

    def _ensure_marker(self) -> None:
        if self._marker is None or self._marker.done():
            self._marker = asyncio.get_running_loop().create_task(self._mark_loop())

    async def _mark_loop(self) -> None:
        """Publish marks until every hub waiting for one has received it.

        A mark sent before Redis applied the resent SUBSCRIBEs never arrives, and Redis may
        fail again meanwhile: so marks are sent again after a while, with backoff.
        """
        delay = 0.5
        while self._syncing or self._baselines:
            history = self.history
            assert history is not None
            if self._marked is None:
                self._marked = asyncio.Event()
            self._marked.clear()
            try:
                channel = await self.start()
                for hub, token in [*self._syncing.items(), *self._baselines.items()]:
                    mark = {"type": "signalr.mark", "h": hub, "t": token, "o": channel}
                    await self._bounded(history.publish(hub, channel, mark))
            except BackplaneError:
                logger.debug("Sending backplane marks failed; retrying", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                while self._syncing or self._baselines:
                    self._marked.clear()
                    await asyncio.wait_for(self._marked.wait(), max(delay, 1.0))
            except TimeoutError:
                delay = min(delay * 2, 5.0)

    async def _on_mark(self, message: dict[str, Any]) -> None:
        hub = str(message.get("h", ""))
        token = message.get("t")
        sid = str(message.get("s", ""))
        if not sid or message.get("o") != self.channel:
            return
        if self._syncing.get(hub) == token:
            cursor = self._cursors.get(hub)
            if cursor is not None:
                if not id_after(sid, cursor):
                    # Ids are Redis's clock: a history recreated by a Redis whose clock is
                    # behind the old one starts lower. Read it all up to the mark.
                    logger.warning("Backplane history ids went backwards; reading it all")
                    cursor = "0-0"
                try:
                    await self._catch_up(hub, cursor, sid)
                except BackplaneError:
                    logger.warning("Reading the backplane history failed; retrying")
                    return  # the mark loop sends another mark
            del self._syncing[hub]
            self._cursors[hub] = sid
        else:
            if self._baselines.get(hub) == token:
                del self._baselines[hub]
            elif hub in self._syncing:
                return  # a mark of an earlier round: the current round's mark follows
            if id_after(sid, self._cursors.get(hub)):
                self._cursors[hub] = sid
        if self._marked is not None:
            self._marked.set()

    async def _catch_up(self, hub: str, after: str, before: str) -> None:
        """Deliver the hub's sends published between two ids, in order."""
        assert self.history is not None
        entries, trimmed = await self._bounded(self.history.read(hub, after, before))
        if trimmed:
            counters["gaps"] += 1
            logger.warning(
                "Backplane history too short: sends published while this worker was "
                "resubscribing were trimmed before it could read them and are lost here "
                "(raise BACKPLANE_HISTORY_LENGTH)"
            )
        handler = self.handlers.get("signalr.send")
        replayed = 0
        for sid, entry in entries:
            if entry.get("type") != "signalr.send" or entry.get("o") == self.channel:
                continue
            entry["s"] = sid
            self._cursors[hub] = sid
            replayed += 1
            if handler is not None:
                try:
                    await handler(entry)
                except Exception:
                    logger.exception("Error processing a recovered backplane message")
        counters["recovered"] += replayed
        if replayed:
            logger.info("Backplane: %d sends recovered after resubscribing", replayed)


def layer_is_local(layer: Any) -> bool:
    """True for the in-memory layer, which cannot reach other processes."""
    return type(layer).__name__ == "InMemoryChannelLayer"
