"""Scatter-gather over the backplane: ask every worker, merge what they answer in time.

A query is ONE publish to the layer group every server process joins (`WORKERS_GROUP`);
each worker answers with its local part on the asker's worker channel, and the asker
merges the parts (`answer.merge`). The asker stops waiting once every expected worker
answered (`registry`), or after `QUERY_TIMEOUT`, and names the workers that did not answer.
A worker asking computes its own part in process. Nothing here runs on the send paths:
hub messages cost no more than before.

Answers are exact on one process (no backplane) and eventually consistent across workers:
each part is exact when its worker reads it, and connections that move meanwhile (a
reconnect to another worker) may be counted twice or not at all.

Closing a connection held elsewhere is a request to the connection's own layer group, as
group changes are (`lifetime/manager.py`): only its owner answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

from ..lifetime import names
from ..protocol import Close
from . import answer, registry
from .answer import Answer

if TYPE_CHECKING:
    from ..lifetime.backplane import Backplane
    from ..lifetime.manager import HubLifetimeManager

logger = logging.getLogger(__name__)

WORKERS_GROUP = "signalr.workers"
QUERY = "signalr.query"
ANSWER = "signalr.answer"
CLOSE = "signalr.close"

# Gathers in flight in this process: request id -> (parts by worker, set when complete).
_gathers: dict[str, tuple[dict[str, Any], set[str], asyncio.Event]] = {}


def manager_for(hub_key: str) -> HubLifetimeManager | None:
    """This process's lifetime manager of the hub with `hub_key`, if it has one."""
    from ..lifetime.manager import _managers

    for manager in list(_managers.values()):
        if manager.key == hub_key:
            return manager
    return None


def local_part(kind: str, hub_key: str, arg: Any = None, limit: int | None = None) -> Any:
    """This process's part of a query about one hub (exact: read from its own memory)."""
    manager = manager_for(hub_key)
    if kind not in answer.KINDS:
        raise ValueError(f"Unknown query kind {kind!r}.")
    if manager is None:
        return answer.merge(kind, [])
    if kind == answer.COUNT:
        return len(manager.connections)
    if kind == answer.USER_COUNT:
        return len(manager.users.get(arg, ()))
    if kind == answer.USER_CONNECTIONS:
        return list(manager.users.get(arg, ()))
    if kind == answer.GROUP_COUNT:
        return len(manager.groups.get(arg, ()))
    if kind == answer.CONNECTION_GROUPS:
        connection = manager.connections.get(arg)
        return None if connection is None else sorted(connection.group_names)
    if kind == answer.GROUPS:
        return {name: len(members) for name, members in list(manager.groups.items())}
    worker = registry.worker_name()
    rows: list[dict[str, Any]] = []
    for connection in list(manager.connections.values()):
        if limit is not None and len(rows) >= limit:
            break
        rows.append(
            {
                "id": connection.connection_id,
                "user": connection.user_identifier,
                "transport": connection.transport,
                "protocol": connection.protocol.name,
                "groups": len(connection.group_names),
                "worker": worker,
            }
        )
    return rows


def local_status() -> dict[str, Any]:
    """What this worker reports about itself: identity, load and its hubs."""
    from ..conf import global_options
    from ..core import load, shutdown
    from ..lifetime.manager import _managers

    hubs = {
        manager.hub_name: {
            "connections": len(manager.connections),
            "users": len(manager.users),
            "groups": len(manager.groups),
        }
        for manager in list(_managers.values())
    }
    return {
        "name": registry.worker_name(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "connections": load.connection_count(),
        "limit": global_options().MAX_CONNECTIONS,
        "draining": shutdown.is_draining(),
        "started": registry.started_at(),
        "hubs": hubs,
    }


# -- serving (every server process) -------------------------------------------------------


async def serve(backplane: Backplane) -> None:
    """Answer queries and closes from other processes (a server process, at start)."""
    listen(backplane)
    backplane.on(QUERY, lambda message: _on_query(backplane, message))
    backplane.on(CLOSE, lambda message: _on_close(backplane, message))
    await backplane.join(WORKERS_GROUP)


def listen(backplane: Backplane) -> None:
    """Receive answers to this process's own queries."""
    backplane.on(ANSWER, _on_answer)


async def _on_query(backplane: Backplane, message: dict[str, Any]) -> None:
    if message.get("o") == backplane.channel:
        return  # the asker computed its own part
    kind = message.get("q", "")
    try:
        if kind == answer.STATUS:
            value: Any = local_status()
        else:
            limit = message.get("n")
            limit = limit if isinstance(limit, int) else None
            value = local_part(kind, str(message.get("h", "")), message.get("a"), limit)
    except Exception as exc:
        logger.warning("Answering a %r query failed: %s", kind, type(exc).__name__)
        value = None
    owner = message.get("o")
    if owner:
        reply = {"type": ANSWER, "i": message.get("i"), "w": registry.worker_name(), "v": value}
        await backplane.send_to(owner, reply)


async def _on_answer(message: dict[str, Any]) -> None:
    pending = _gathers.get(message.get("i", ""))
    worker = message.get("w")
    if pending is None or not isinstance(worker, str):
        return  # late (the asker gave up) or malformed
    parts, expected, done = pending
    parts[worker] = message.get("v")
    if expected and expected <= parts.keys():
        done.set()


async def _on_close(backplane: Backplane, message: dict[str, Any]) -> None:
    manager = manager_for(str(message.get("h", "")))
    connection = manager.connections.get(message.get("c", "")) if manager else None
    if connection is None:
        return  # held by another worker, or gone: its owner (if any) answers
    reason = message.get("r")
    connection.abort(Close(reason if isinstance(reason, str) else None, message.get("ar") is True))
    await backplane.reply(message, ok=True)


# -- asking (any process) ---------------------------------------------------------------


def _timeout(timeout: float | None) -> float:
    from ..conf import global_options

    return global_options().QUERY_TIMEOUT if timeout is None else timeout


async def gather(
    kind: str,
    hub_key: str = "",
    arg: Any = None,
    limit: int | None = None,
    timeout: float | None = None,
) -> Answer[Any]:
    """Ask every worker for its part of `kind` and merge the parts answered in time."""
    from ..conf import global_options
    from ..lifetime.default import default_backplane

    me = registry.worker_name()

    def part() -> Any:
        return local_status() if kind == answer.STATUS else local_part(kind, hub_key, arg, limit)

    backplane = default_backplane()
    if backplane is None:
        return _answer(kind, {me: part()}, set(), limit)
    listen(backplane)
    registered = await registry.entries()
    expected = answer.expected_workers(registered, global_options().WORKERS)
    parts: dict[str, Any] = {}
    if registry.is_serving():
        parts[me] = part()
        expected.add(me)
    rid = uuid.uuid4().hex
    done = asyncio.Event()
    _gathers[rid] = (parts, expected, done)
    try:
        message = {"type": QUERY, "q": kind, "h": hub_key, "a": arg, "n": limit, "i": rid}
        await backplane.publish(WORKERS_GROUP, message)
        if not (expected and expected <= parts.keys()):
            try:
                await asyncio.wait_for(done.wait(), _timeout(timeout))
            except TimeoutError:
                pass
    finally:
        _gathers.pop(rid, None)
    return _answer(kind, dict(parts), expected, limit)


def _answer(kind: str, parts: dict[str, Any], expected: set[str], limit: int | None) -> Answer[Any]:
    if kind == answer.STATUS:
        value: Any = [parts[name] for name in sorted(parts) if isinstance(parts[name], dict)]
    else:
        value = answer.merge(kind, parts.values(), limit)
    return Answer(value, tuple(sorted(parts)), answer.missing_workers(expected, parts))


async def close_connection(
    hub_key: str,
    connection_id: str,
    reason: str | None = None,
    allow_reconnect: bool = False,
    timeout: float | None = None,
) -> bool:
    """Close one connection wherever it is; False when no worker holds it (or answered)."""
    from ..lifetime.default import default_backplane

    close = Close(reason, allow_reconnect)
    manager = manager_for(hub_key)
    connection = manager.connections.get(connection_id) if manager else None
    if connection is not None:
        connection.abort(close)
        return True
    backplane = default_backplane()
    if backplane is None:
        return False
    request = {
        "type": CLOSE,
        "h": hub_key,
        "c": connection_id,
        "r": reason,
        "ar": allow_reconnect,
    }
    group = names.connection_group(hub_key, connection_id)
    try:
        reply = await backplane.request(group, request, _timeout(timeout))
    except TimeoutError:
        return False
    return bool(reply.get("ok"))
