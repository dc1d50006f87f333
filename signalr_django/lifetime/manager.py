"""The hub lifetime manager: the one place that knows where connections are.

One manager per hub class per process keeps the live connections of that hub with their
groups and users, and fans messages out to them. A message is serialised once per protocol
(`SerializedMessage`) and the same record is written to every local recipient.

With a backplane (several worker processes sharing a channel layer), each send is also
published once per target to the other workers, which fan it out to their own connections;
each worker skips its own publications, having delivered locally already. Group changes
and client results for connections held by another worker are carried out by that worker,
and the call returns once it answered.

Group and user names are compared exactly (ordinal, case-sensitive) as in ASP.NET Core.
Sends to connections, groups or users that do not exist are silent no-ops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..core.connection import DRAIN_THRESHOLD, NO_GROUPS
from ..core.logs import safe_id
from ..core.results import current_scope
from ..exceptions import BackplaneError, ConnectionNotFoundError, LimitExceededError
from ..metrics.counters import METRICS
from . import names
from .backplane import Backplane
from .serialized import SerializedMessage

if TYPE_CHECKING:
    from ..core.connection import HubConnection

logger = logging.getLogger(__name__)

ADD = 1
REMOVE = 2


class HubLifetimeManager:
    """Connections, groups and users of one hub in this process."""

    def __init__(self, hub_name: str, backplane: Backplane | None = None) -> None:
        self.hub_name = hub_name
        self.key = names.hub_key(hub_name)
        self.connections: dict[str, HubConnection] = {}
        self.groups: dict[str, dict[str, HubConnection]] = {}
        self.users: dict[str, dict[str, HubConnection]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.backplane = backplane
        # Connections moving here from another worker that still receives their messages
        # (see `transports.handoff`): deliveries from other workers are its, not theirs.
        self.arriving: set[str] = set()
        # Connections this worker is handing over (until the move's marker): messages it
        # delivers to them here are delivered, so the new worker must skip them.
        self.leaving: set[str] = set()
        self._registered = False
        if backplane is not None:
            self._register(backplane)

    def _register(self, backplane: Backplane) -> None:
        if not backplane.hubs:
            backplane.on("signalr.send", lambda m: _route(backplane, m, "_on_send"))
            backplane.on("signalr.group", lambda m: _route(backplane, m, "_on_group"))
            backplane.on("signalr.invoke", lambda m: _route(backplane, m, "_on_invoke"))
        backplane.hubs[self.key] = self

    async def start(self) -> None:
        """Join the hub's `all` group on the backplane (once per process)."""
        self.loop = asyncio.get_running_loop()
        if self.backplane is not None and not self._registered:
            self._registered = True
            await self.backplane.join(names.all_group(self.key))
            self.backplane.track(self.key)

    # -- lifecycle ---------------------------------------------------------------------

    async def on_connected(self, connection: HubConnection) -> None:
        """Register a connection that completed its handshake."""
        cid = connection.connection_id
        self.connections[cid] = connection
        uid = connection.user_identifier
        first_of_user = False
        if uid is not None:
            members = self.users.setdefault(uid, {})
            first_of_user = not members
            members[cid] = connection
        backplane = self.backplane
        if self.loop is None or (backplane is not None and not self._registered):
            await self.start()
        if backplane is not None:
            await backplane.join(names.connection_group(self.key, cid))
            if first_of_user and uid is not None:
                await backplane.join(names.user_group(self.key, uid))

    async def on_disconnected(self, connection: HubConnection) -> None:
        """Forget a connection and every membership it had."""
        cid = connection.connection_id
        self.connections.pop(cid, None)
        emptied: list[str] = []
        for name in connection.group_names:
            members = self.groups.get(name)
            if members is not None:
                members.pop(cid, None)
                if not members:
                    del self.groups[name]
                    emptied.append(names.group_group(self.key, name))
        connection.group_names = NO_GROUPS
        uid = connection.user_identifier
        if uid is not None:
            members = self.users.get(uid)
            if members is not None:
                members.pop(cid, None)
                if not members:
                    del self.users[uid]
                    emptied.append(names.user_group(self.key, uid))
        backplane = self.backplane
        if backplane is not None:
            emptied.append(names.connection_group(self.key, cid))
            for group in emptied:
                try:
                    await backplane.leave(group)
                except Exception:
                    logger.warning("Leaving backplane group failed", exc_info=True)

    # -- groups --------------------------------------------------------------------------

    async def add_to_group(self, connection_id: str, group: str) -> None:
        """Add a connection (here or on another worker) to a group; idempotent."""
        await self._change_group(connection_id, group, ADD)

    async def remove_from_group(self, connection_id: str, group: str) -> None:
        """Remove a connection from a group; a no-op when it is not a member."""
        await self._change_group(connection_id, group, REMOVE)

    async def _change_group(self, connection_id: str, group: str, action: int) -> None:
        _check_group(group)
        connection = self.connections.get(connection_id)
        if connection is not None:
            await self._change_local_group(connection, group, action)
            return
        backplane = self.backplane
        if backplane is None:
            return
        request = {
            "type": "signalr.group",
            "h": self.key,
            "c": connection_id,
            "g": group,
            "a": action,
        }
        try:
            reply = await backplane.request(
                names.connection_group(self.key, connection_id), request
            )
        except TimeoutError:
            raise ConnectionNotFoundError(
                f"No worker acknowledged the group change for connection "
                f"'{safe_id(connection_id)}' within {backplane.request_timeout:g} s; the "
                "connection does not exist or its worker is unreachable."
            ) from None
        _raise_group_failure(reply)

    async def _change_local_group(self, connection: HubConnection, group: str, action: int) -> None:
        """Apply a group change to a connection of this process, within its caps.

        The worker holding the connection enforces MAXIMUM_GROUP_NAME_LENGTH and
        MAXIMUM_GROUPS_PER_CLIENT (for requests from other workers too, which get the error
        back in the reply); removing is never refused.
        """
        cid = connection.connection_id
        if action == ADD:
            members = self.groups.get(group)
            if members is not None and cid in members:
                return
            options = connection.options
            _check_group(group, options.MAXIMUM_GROUP_NAME_LENGTH)
            limit = options.MAXIMUM_GROUPS_PER_CLIENT
            if limit is not None and len(connection.group_names) >= limit:
                raise LimitExceededError(
                    "The connection is in too many groups", "MAXIMUM_GROUPS_PER_CLIENT", limit
                )
            if members is None:
                members = self.groups[group] = {}
            first = not members
            members[cid] = connection
            joined = connection.group_names
            if not isinstance(joined, set):
                joined = connection.group_names = set()
            joined.add(group)
            if first and self.backplane is not None:
                await self.backplane.join(names.group_group(self.key, group))
        else:
            current = self.groups.get(group)
            if current is None or cid not in current:
                return
            del current[cid]
            if isinstance(connection.group_names, set):
                connection.group_names.discard(group)
            if not current:
                del self.groups[group]
                if self.backplane is not None:
                    await self.backplane.leave(names.group_group(self.key, group))

    # -- sends ---------------------------------------------------------------------------

    async def send_all(self, method: str, args: list[Any], exclude: Iterable[str] = ()) -> None:
        """Every connection of the hub but the excluded ids."""
        message = SerializedMessage(method, args)
        excluded = _as_set(exclude)
        targets, held = self._hold_arriving(list(self.connections.values()))
        delivered = self._delivered_leaving(targets)
        await self._fan_out(targets, message, excluded)
        await self._publish(
            names.all_group(self.key), "all", "", message, excluded, held, delivered
        )

    async def send_connection(self, connection_id: str, method: str, args: list[Any]) -> None:
        """One connection, wherever it is."""
        message = SerializedMessage(method, args)
        connection = self.connections.get(connection_id)
        if connection is not None:
            await self._fan_out((connection,), message)
        else:
            group = names.connection_group(self.key, connection_id)
            await self._publish(group, "conn", connection_id, message)

    async def send_connections(
        self, connection_ids: Iterable[str], method: str, args: list[Any]
    ) -> None:
        """Several connections by id."""
        message = SerializedMessage(method, args)
        local: list[HubConnection] = []
        for cid in dict.fromkeys(connection_ids):
            connection = self.connections.get(cid)
            if connection is not None:
                local.append(connection)
            else:
                await self._publish(names.connection_group(self.key, cid), "conn", cid, message)
        await self._fan_out(local, message)

    async def send_group(
        self, group: str, method: str, args: list[Any], exclude: Iterable[str] = ()
    ) -> None:
        """Members of one group but the excluded ids."""
        _check_group(group)
        message = SerializedMessage(method, args)
        excluded = _as_set(exclude)
        members = self.groups.get(group)
        held = delivered = None
        if members:
            targets, held = self._hold_arriving(list(members.values()))
            delivered = self._delivered_leaving(targets)
            await self._fan_out(targets, message, excluded)
        await self._publish(
            names.group_group(self.key, group), "group", group, message, excluded, held, delivered
        )

    async def send_groups(self, groups: Iterable[str], method: str, args: list[Any]) -> None:
        """Members of several groups; a connection in two of them gets the message twice."""
        message = SerializedMessage(method, args)
        for group in groups:
            _check_group(group)
            members = self.groups.get(group)
            held = delivered = None
            if members:
                targets, held = self._hold_arriving(list(members.values()))
                delivered = self._delivered_leaving(targets)
                await self._fan_out(targets, message)
            await self._publish(
                names.group_group(self.key, group),
                "group",
                group,
                message,
                held=held,
                delivered=delivered,
            )

    async def send_user(self, user_id: str, method: str, args: list[Any]) -> None:
        """Every connection of one user."""
        await self.send_users((user_id,), method, args)

    async def send_users(self, user_ids: Iterable[str], method: str, args: list[Any]) -> None:
        """Every connection of several users."""
        message = SerializedMessage(method, args)
        for user_id in user_ids:
            members = self.users.get(user_id)
            held = delivered = None
            if members:
                targets, held = self._hold_arriving(list(members.values()))
                delivered = self._delivered_leaving(targets)
                await self._fan_out(targets, message)
            await self._publish(
                names.user_group(self.key, user_id),
                "user",
                user_id,
                message,
                held=held,
                delivered=delivered,
            )

    async def invoke_connection(
        self, connection_id: str, method: str, args: list[Any], timeout: float | None
    ) -> Any:
        """A client result from one connection, wherever it is."""
        from ..core.results import ClientResultError, ConnectionGoneError
        from ..protocol.json_protocol import dumps

        connection = self.connections.get(connection_id)
        if connection is not None:
            return await connection.invoke_client(method, args, timeout)
        backplane = self.backplane
        if backplane is None:
            raise ConnectionGoneError(f"Connection '{safe_id(connection_id)}' does not exist.")
        request = {
            "type": "signalr.invoke",
            "h": self.key,
            "c": connection_id,
            "m": method,
            "a": dumps(args),
            "t": timeout,
        }
        result_id = uuid.uuid4().hex
        request["ri"] = result_id
        result = backplane.expect(result_id)
        try:
            try:
                await backplane.request(names.connection_group(self.key, connection_id), request)
            except TimeoutError:
                gone = f"Connection '{safe_id(connection_id)}' does not exist."
                raise ConnectionGoneError(gone) from None
            reply = await asyncio.wait_for(result, timeout + 5 if timeout else None)
        finally:
            backplane.forget(result_id)
        kind = reply.get("k")
        if kind == "ok":
            return json.loads(reply["v"])
        if kind == "client":
            raise ClientResultError(reply.get("e", ""))
        if kind == "timeout":
            raise TimeoutError(reply.get("e", "The client did not answer in time."))
        if kind == "limit":
            _raise_limit(reply)
        gone = f"Connection '{safe_id(connection_id)}' disconnected."
        raise ConnectionGoneError(reply.get("e", gone))

    async def _fan_out(
        self,
        targets: Iterable[HubConnection],
        message: SerializedMessage,
        exclude: set[str] | frozenset[str] = frozenset(),
        wait: bool = True,
    ) -> None:
        """Queue one serialised message on each target; never waits for any other client.

        Each connection owns a bounded outbound queue (see HubConnection.write): the
        message is queued there (on Daphne, one prepared frame shared by all recipients,
        written synchronously) and the loop moves on. A recipient whose queue passes
        OUTBOUND_BUFFER_LIMIT is closed by its own write, so one slow or hostile client
        costs the others nothing.

        A local sender (`wait=True`) then paces itself: a hub method whose own caller is
        behind waits for that caller to catch up (as a stream's producer does), so a method
        that sends a lot to everyone, itself included, runs at its caller's speed instead of
        getting its caller closed; otherwise, when some recipients are behind, it yields once
        to the event loop so transports can flush. A slow caller only slows its own hub
        method. Deliveries from other workers never wait, so the backplane loop stays prompt.
        """
        behind = False
        for connection in targets:
            if exclude and connection.connection_id in exclude:
                continue
            try:
                if connection.deliver(message):
                    behind = True
            except Exception:  # one broken connection must not stop the broadcast
                logger.debug(
                    "Failed writing to %s", safe_id(connection.connection_id), exc_info=True
                )
        if METRICS.enabled:
            _count_fan_out(targets, message, exclude)
        if wait:
            scope = current_scope.get()
            caller = scope.connection if scope is not None else None
            if caller is not None and caller.outbound.pending() > DRAIN_THRESHOLD:
                await caller.caught_up()
            elif behind:
                await asyncio.sleep(0)

    def _hold_arriving(
        self, targets: list[HubConnection]
    ) -> tuple[list[HubConnection], list[str] | None]:
        """Split the local recipients of a message also published: (now, held back).

        A connection moving here still gets the messages published before the move's
        marker from its previous worker, so it takes this one from this worker's own
        publication, and only if that comes after the marker (see `transports.handoff`).
        """
        arriving = self.arriving
        if not arriving:
            return targets, None
        held = [t.connection_id for t in targets if t.connection_id in arriving]
        return [t for t in targets if t.connection_id not in arriving], held

    def _delivered_leaving(self, targets: list[HubConnection]) -> list[str] | None:
        """The recipients of a published message this worker delivers while handing them
        over: its publication may reach the new worker after the marker."""
        leaving = self.leaving
        if not leaving:
            return None
        return [t.connection_id for t in targets if t.connection_id in leaving] or None

    async def _publish(
        self,
        group: str,
        kind: str,
        name: str,
        message: SerializedMessage,
        exclude: set[str] | frozenset[str] = frozenset(),
        held: list[str] | None = None,
        delivered: list[str] | None = None,
    ) -> None:
        backplane = self.backplane
        if backplane is None:
            return
        body: dict[str, Any] = {"type": "signalr.send", "h": self.key, "k": kind, "n": name}
        if exclude:
            body["x"] = list(exclude)
        if held:
            body["ar"] = held
        if delivered:
            body["lv"] = delivered
        body["p"] = message.all_payloads()
        await backplane.broadcast(self.key, group, body)

    # -- messages from other workers -------------------------------------------------------

    async def _on_send(self, message: dict[str, Any], own: bool) -> None:
        if own:
            # Delivered locally when it was sent, but to connections that were arriving
            # then (see `_hold_arriving`): theirs if they have arrived by now.
            held = message.get("ar")
            if held:
                await self._deliver_held(message, held)
            return
        kind = message.get("k")
        name = message.get("n", "")
        targets: list[HubConnection]
        if kind == "all":
            targets = list(self.connections.values())
        elif kind == "group":
            targets = list(self.groups.get(name, {}).values())
        elif kind == "user":
            targets = list(self.users.get(name, {}).values())
        elif kind == "conn":
            connection = self.connections.get(name)
            targets = [connection] if connection is not None else []
        else:
            return
        if self.arriving:
            targets = [t for t in targets if t.connection_id not in self.arriving]
        delivered = message.get("lv")
        if delivered:  # by the worker they are leaving, before it let go
            targets = [t for t in targets if t.connection_id not in delivered]
        if not targets:
            return
        serialized = SerializedMessage("", [])
        serialized.preload(message.get("p", {}))
        await self._fan_out(targets, serialized, _as_set(message.get("x", ())), wait=False)

    async def _deliver_held(self, message: dict[str, Any], held: list[str]) -> None:
        targets = [
            connection
            for cid in held
            if cid not in self.arriving and (connection := self.connections.get(cid)) is not None
        ]
        if targets:
            serialized = SerializedMessage("", [])
            serialized.preload(message.get("p", {}))
            await self._fan_out(targets, serialized, _as_set(message.get("x", ())), wait=False)

    async def _on_group(self, message: dict[str, Any], own: bool) -> None:
        connection = self.connections.get(message.get("c", ""))
        if connection is None:
            return  # held by another worker, or gone: its owner (if any) answers
        reply: dict[str, Any] = {"ok": True}
        try:
            await self._change_local_group(connection, message["g"], message["a"])
        except LimitExceededError as exc:
            reply = {"ok": False, "k": "limit", "w": exc.what, "s": exc.setting, "l": exc.limit}
        except Exception as exc:
            logger.warning("Group change for another worker failed: %s", type(exc).__name__)
            reply = {"ok": False, "k": "error", "e": type(exc).__name__}
        if self.backplane is not None:
            await self.backplane.reply(message, **reply)

    async def _on_invoke(self, message: dict[str, Any], own: bool) -> None:
        connection = self.connections.get(message.get("c", ""))
        backplane = self.backplane
        if connection is None or backplane is None:
            return
        await backplane.reply(message, ok=True)
        asyncio.get_running_loop().create_task(self._answer_invoke(connection, message))

    async def _answer_invoke(self, connection: HubConnection, message: dict[str, Any]) -> None:
        from ..core.results import ClientResultError
        from ..protocol.json_protocol import dumps

        backplane = self.backplane
        assert backplane is not None
        reply: dict[str, Any]
        try:
            value = await connection.invoke_client(
                message["m"], json.loads(message["a"]), message.get("t")
            )
            reply = {"k": "ok", "v": dumps(value)}
        except ClientResultError as exc:
            reply = {"k": "client", "e": str(exc)}
        except TimeoutError:
            reply = {"k": "timeout", "e": "The client did not answer in time."}
        except LimitExceededError as exc:
            reply = {"k": "limit", "w": exc.what, "s": exc.setting, "l": exc.limit}
        except Exception as exc:
            reply = {"k": "gone", "e": str(exc)}
        owner = message.get("o")
        if owner:
            await backplane.send_to(owner, {"type": "signalr.reply", "i": message["ri"], **reply})


async def _route(backplane: Backplane, message: dict[str, Any], method: str) -> None:
    manager = backplane.hubs.get(message.get("h", ""))
    if manager is not None:
        await getattr(manager, method)(message, message.get("o") == backplane.channel)


def _count_fan_out(
    targets: Iterable[HubConnection],
    message: SerializedMessage,
    exclude: set[str] | frozenset[str],
) -> None:
    """Count a fan-out's deliveries in the process totals: one update per protocol.

    The recipients are only read, never written to (a write per recipient would dirty one
    more cache line per connection on the hottest path there is). Stateful connections
    count their records themselves, in `HubConnection.write`.
    """
    by_protocol: dict[Any, int] = {}
    hub: type | None = None
    for connection in targets:
        if connection.reconnect is not None or (exclude and connection.connection_id in exclude):
            continue
        hub = connection.hub_cls
        protocol = connection.protocol
        by_protocol[protocol] = by_protocol.get(protocol, 0) + 1
    if hub is not None:
        for protocol, count in by_protocol.items():
            METRICS.count_sent(hub, count, count * len(message.payload(protocol)))


def _as_set(values: Iterable[str]) -> set[str] | frozenset[str]:
    if isinstance(values, set | frozenset):
        return values
    return set(values)


def _check_group(group: str, max_length: int | None = None) -> None:
    if not isinstance(group, str):
        raise TypeError("Group names must be strings.")
    if not group:
        raise ValueError("Cannot send to an empty group name.")
    if max_length is not None and len(group) > max_length:
        raise LimitExceededError(
            "The group name is too long", "MAXIMUM_GROUP_NAME_LENGTH", max_length
        )


def _raise_limit(reply: dict[str, Any]) -> None:
    """Re-raise a cap reached on the worker holding a connection (see the `limit` replies)."""
    raise LimitExceededError(str(reply.get("w")), str(reply.get("s")), int(reply.get("l", 0)))


def _raise_group_failure(reply: dict[str, Any]) -> None:
    """Raise what the worker holding the connection reported for a group change."""
    if reply.get("ok", True):
        return
    if reply.get("k") == "limit":
        _raise_limit(reply)
    raise BackplaneError(
        f"The worker holding the connection failed to change its groups ({reply.get('e')})."
    )


_managers: dict[type, HubLifetimeManager] = {}


def get_lifetime_manager(hub_cls: type) -> HubLifetimeManager:
    """The process-wide manager of `hub_cls`, created on first use."""
    manager = _managers.get(hub_cls)
    if manager is None:
        from .default import default_backplane

        name = f"{hub_cls.__module__}.{hub_cls.__qualname__}"
        manager = HubLifetimeManager(name, default_backplane())
        _managers[hub_cls] = manager
    return manager
