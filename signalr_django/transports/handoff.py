"""Stateful reconnect on any worker: a connection moves to the worker its client resumed on.

With several workers and no sticky sessions, a stateful client (`withStatefulReconnect`)
whose socket dropped resumes on whichever worker the load balancer picks. ASP.NET Core only
resumes on the same server. Here the worker that gets the resumed socket (the *arrival*)
takes the connection over from the worker holding it (the *owner*), with everything a
resume needs, and the owner forgets it.

Why move rather than relay the socket's frames to the owner over the backplane: a relay
needs the owner alive for the whole life of the connection, so a worker that shuts down
would still have to hand its connections over, and every frame would cross the backplane
twice. A move happens once per resume, costs nothing per message afterwards, and is what a
draining worker needs anyway: on SIGTERM the owner drops the sockets of its stateful
WebSocket connections (no Close message, which the official clients take as final) and
keeps the connections until their clients resume elsewhere and fetch them (`release`).

What moves: the replay buffer with its sequence ids and the inbound counters (so nothing
is lost or processed twice), the protocol, the user identifier, the groups, and the
entries of `context.items` whose keys are strings and whose values are JSON (other
entries, such as open files or locks, cannot travel and stay behind; a DEBUG log names
how many). The user is the one the arrival authenticated on the resumed request; the
connection token is bound to the user key, so it is the same user. `on_connected` and
`on_disconnected` do not run for a move: the connection lives on. Presence counts it on
the new worker before the old one lets go, so the user stays online throughout.

The hand-over, over the channel layer (connection group `Gc`, to which the owner belongs):

1. The arrival asks `Gc` for the connection (`signalr.move`). The owner stops its read
   loop if the old socket still looks open (as a same-worker take-over does), waits until
   no hub method, stream or client result of the connection is in progress (new ones
   cannot start: nothing reads the client), and answers with the connection's static
   state. From then on it only buffers what is sent to the connection.
2. The arrival registers the connection in its lifetime manager (joining `Gc`, the user's
   and the groups' layer groups) with deliveries from other workers ignored, then
   publishes a marker to `Gc` (`signalr.move.mark`).
3. The layer delivers messages to every worker in the order it received them, so each
   message sent to the connection reaches the owner before the marker or the arrival after
   it. The owner, on the marker, exports its buffer (every message up to the marker) and
   forgets the connection; the arrival, on the marker, starts taking deliveries. Messages
   its own hub methods sent meanwhile were buffered and follow the owner's. A send made on
   either worker reaches its local recipients at once and the others by publication,
   which may land after the marker: the arrival holds its local copy back and takes its
   own publication only if that comes after the marker, and the owner names in its
   publication the leaving connections it delivered to, which the arrival then skips.
4. The arrival receives the owner's buffer, numbers its own messages after it, and the
   resumed socket gets a Sequence and every unacknowledged message, exactly as after a
   same-worker resume.

Writing to the channel layer is not enough to take a connection: a move request carries
the connection id and the arrival's worker channel signed with SECRET_KEY (the arrival
verified the connection token first), and the owner sends the state only to that channel.

That ordering holds with `RedisPubSubChannelLayer` on one Redis server: Redis delivers
published messages to every subscriber in the order it received them. The classic
`RedisChannelLayer` orders each channel's messages by the sender's clock (a sorted set),
and a layer sharded over several Redis servers orders per server only; with either, a
message sent to the connection while it moves may be lost or doubled (measured with the
classic layer: a few duplicates per minute with a socket dropped every three seconds).

A hand-over that fails (no worker holds the connection, or the owner does not answer
within BACKPLANE_TIMEOUT plus HANDSHAKE_TIMEOUT) refuses the resumed socket; the client
then closes or, with automatic reconnect, starts a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core import signing

from ..core.connection import HubConnection
from ..core.heartbeat import get_heartbeat
from ..core.logs import safe_id
from ..core.reconnect import MessageBuffer
from ..core.results import PendingResults
from ..dispatch.handler import HubConnectionHandler
from ..dispatch.session import HubSession
from ..exceptions import BackplaneError
from ..lifetime import names
from ..lifetime.backplane import Backplane
from ..lifetime.manager import ADD, REMOVE
from ..presence.hooks import tracker_for
from ..protocol import Close, TransferFormat
from ..server.outbound import QueuedOutbound
from . import ownership

if TYPE_CHECKING:
    from .negotiate import ConnectionToken

logger = logging.getLogger(__name__)

MOVE = "signalr.move"
MARK = "signalr.move.mark"
TRANSPORT = "WebSockets"
FORMATS = (TransferFormat.TEXT, TransferFormat.BINARY)
SALT = "signalr_django.handoff"
# A move request is answered within seconds; its proof is of no use for longer.
MAX_AGE = 60
WARN_EVERY = 10.0

# Endpoint handlers of each hub served through a backplane: (backplane, hub key) -> handlers.
_hubs: dict[tuple[int, str], list[HubConnectionHandler]] = {}


@dataclass
class _Leaving:
    """A connection this worker is handing over, until the arrival's marker comes."""

    handler: HubConnectionHandler
    session: HubSession
    mark: str
    # The worker channel that asked (and proved it holds the token): the state goes there.
    arrival: str
    expiry: asyncio.TimerHandle | None = None


# Owner side: connection id -> hand-over in progress. Arrival side: marker id -> (hub key,
# connection id) until this worker sees its own marker.
_leaving: dict[str, _Leaving] = {}
_arriving: dict[str, tuple[str, str]] = {}
_tasks: set[asyncio.Task[Any]] = set()
_last_warning = -WARN_EVERY


def register(backplane: Backplane, handler: Any) -> None:
    """Let connections of `handler`'s hub move to and from this worker."""
    if not isinstance(handler, HubConnectionHandler):
        return
    handlers = _hubs.setdefault((id(backplane), handler.lifetime.key), [])
    if handler not in handlers:
        handlers.append(handler)
    if MOVE not in backplane.handlers:

        async def on_move(message: dict[str, Any]) -> None:
            _spawn(_serve_move(backplane, message))

        async def on_mark(message: dict[str, Any]) -> None:
            await _on_mark(backplane, message)

        backplane.on(MOVE, on_move)
        backplane.on(MARK, on_mark)


def _spawn(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


# -- arrival side ---------------------------------------------------------------------------


def may_move(handler: HubConnectionHandler, connection_id: str) -> bool:
    """Whether a resumed socket for `connection_id` could fetch it from another worker."""
    return (
        handler.lifetime.backplane is not None
        and connection_id not in handler.lifetime.connections
        and not handler.token_spent(connection_id)
    )


async def claim_start(handler: HubConnectionHandler, token: ConnectionToken) -> bool:
    """True when this token starts its connection here (its first use anywhere).

    False when the token is too old to start a connection, or its connection started
    somewhere already (or the registry cannot tell): the socket is then a resume.
    """
    if time.time() - token.issued > handler.options.DISCONNECT_TIMEOUT + 5:
        return False
    try:
        return await ownership.claim_for(handler, token)
    except ownership.RegistryUnavailable:
        return False


async def move_here(
    handler: HubConnectionHandler, connection_id: str, scope: dict[str, Any], user: Any
) -> HubSession | None:
    """Take `connection_id` over from the worker holding it; None when that fails."""
    backplane = handler.lifetime.backplane
    assert backplane is not None
    manager = handler.lifetime
    options = handler.options
    group = names.connection_group(manager.key, connection_id)
    register(backplane, handler)
    try:
        channel = await backplane.start()
        request = {"type": MOVE, "h": manager.key, "c": connection_id}
        request["p"] = signing.dumps({"c": connection_id, "o": channel}, salt=SALT)
        reply = await backplane.request(
            group, request, timeout=backplane.request_timeout + options.HANDSHAKE_TIMEOUT
        )
    except (TimeoutError, BackplaneError):
        logger.info("No worker handed connection %s over", safe_id(connection_id))
        return None
    if not reply.get("ok") or connection_id in manager.connections:
        return None
    try:
        protocol, _ = handler.select_protocol(
            json.dumps({"protocol": reply.get("p"), "version": int(reply.get("v", 2))}), FORMATS
        )
    except Exception:
        return None

    async def nowhere(payload: Any) -> None:
        """Nothing is written before the resumed socket is attached (it is detached)."""

    placeholder = QueuedOutbound(nowhere)
    session = HubSession(
        handler,
        connection_id=connection_id,
        scope=scope,
        user=user,
        transport=TRANSPORT,
        formats=FORMATS,
        outbound=placeholder,
        stateful=True,
    )
    connection = HubConnection(
        connection_id,
        handler.hub_cls,
        options,
        protocol,
        scope,
        TRANSPORT,
        placeholder,
        user,
        uid if isinstance(uid := reply.get("u"), str) else None,
    )
    connection.reconnect = MessageBuffer()
    connection.detached = True
    items = reply.get("it")
    if isinstance(items, dict):
        connection.items.update(items)
    session.adopt(connection)
    _adopt(handler, connection)
    manager.arriving.add(connection_id)
    mark = uuid.uuid4().hex
    _arriving[mark] = (manager.key, connection_id)
    state_reply = backplane.expect(mark)
    try:
        await manager.on_connected(connection)
        for name in reply.get("g", ()):
            await manager._change_local_group(connection, str(name), ADD)
        # "m" names the request the owner answered, "i" the reply the owner sends back.
        marker: dict[str, Any] = {"type": MARK, "h": manager.key, "c": connection_id, "i": mark}
        marker["m"] = reply.get("i")
        await backplane.publish(group, marker)
        state = await asyncio.wait_for(
            state_reply, backplane.request_timeout + options.HANDSHAKE_TIMEOUT
        )
    except Exception as error:
        logger.warning(
            "Moving connection %s here failed (%s)", safe_id(connection_id), type(error).__name__
        )
        await _forget_here(handler, connection)
        return None
    finally:
        backplane.forget(mark)
        _arriving.pop(mark, None)
        manager.arriving.discard(connection_id)
    assert connection.reconnect is not None
    try:
        connection.reconnect = MessageBuffer.restore(state["s"], connection.reconnect)
    except (KeyError, TypeError, ValueError):  # it ended on its worker meanwhile
        await _forget_here(handler, connection)
        return None
    final = {str(name) for name in state.get("g", ())}
    for name in set(connection.group_names) - final:
        await manager._change_local_group(connection, name, REMOVE)
    for name in final - set(connection.group_names):
        await manager._change_local_group(connection, name, ADD)
    logger.debug("Connection %s moved here", safe_id(connection_id))
    return session


def _adopt(handler: HubConnectionHandler, connection: HubConnection) -> None:
    """What `HubConnectionHandler.connected` sets up, but `on_connected`: it ran already."""
    from ..hub import HubCallerContext

    connection.caller_context = HubCallerContext(connection)
    connection.pending_results = PendingResults(
        connection.options.MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT
    )
    get_heartbeat().add(connection)
    # Counted here before its old worker stops counting it: the user stays online.
    tracker = tracker_for(handler.hub_cls)
    if tracker is not None:
        tracker.connected(connection)


# -- owner side -------------------------------------------------------------------------------


def _handlers(backplane: Backplane, hub_key: str) -> list[HubConnectionHandler]:
    return _hubs.get((id(backplane), hub_key), [])


async def _serve_move(backplane: Backplane, message: dict[str, Any]) -> None:
    """Another worker asks for a connection: stop it here and answer with its state."""
    from .websocket import _take_over

    hub_key = str(message.get("h", ""))
    connection_id = str(message.get("c", ""))
    manager = backplane.hubs.get(hub_key)
    if manager is None:
        return
    connection = manager.connections.get(connection_id)
    if connection is None:
        return  # held by another worker, or gone: its owner (if any) answers
    reply_to = message.get("o")
    if not isinstance(reply_to, str) or not _proven(message.get("p"), connection_id, reply_to):
        _warn_refused()
        return
    handlers = _handlers(backplane, hub_key)
    if (
        connection.reconnect is None
        or connection.aborted
        or connection.closed
        or connection_id in _leaving
        or not handlers
    ):
        await _answer(backplane, message, ok=False)
        return
    session: HubSession | None = None
    handler = handlers[0]
    for candidate in handlers:
        found = candidate.resumable.pop(connection_id, None)
        if found is not None:
            session, handler = found, candidate
            break
    if session is None:
        session = await _take_over(handler, connection_id)
        if session is not None:
            handler = session.handler
        else:  # the old socket closed meanwhile: the connection waits in `resumable`
            for candidate in handlers:
                found = candidate.resumable.pop(connection_id, None)
                if found is not None:
                    session, handler = found, candidate
                    break
    if session is None or session.connection is None or session.connection is not connection:
        await _answer(backplane, message, ok=False)
        return
    connection = session.connection
    if not await _quiet(connection, handler.options.HANDSHAKE_TIMEOUT) or connection.aborted:
        _keep(handler, session)
        await _answer(backplane, message, ok=False)
        return
    leaving = _Leaving(handler, session, str(message.get("i", "")), reply_to)
    _leaving[connection_id] = leaving
    handler.lifetime.leaving.add(connection_id)
    # Without the arrival's marker (it failed, or the layer lost it) the connection stays
    # here, resumable as after any dropped socket.
    wait = backplane.request_timeout * 2 + handler.options.HANDSHAKE_TIMEOUT
    leaving.expiry = asyncio.get_running_loop().call_later(wait, _give_up, connection_id, leaving)
    items, dropped = _portable(connection.items)
    if dropped:
        logger.debug("%d context.items entries stay behind (not JSON)", dropped)
    try:
        await _answer(
            backplane,
            message,
            ok=True,
            p=connection.protocol.name,
            v=2,
            u=connection.user_identifier,
            g=sorted(connection.group_names),
            it=items,
        )
    except BackplaneError:
        _give_up(connection_id, leaving)


def _proven(proof: Any, connection_id: str, channel: str) -> bool:
    """Whether a move request comes from a worker that verified the connection's token.

    The arrival signs (SECRET_KEY) the connection id with its own worker channel, where
    the connection's messages will go; whoever can only write to the channel layer cannot
    make a worker hand a connection, and the messages it holds, to another channel.
    """
    if not isinstance(proof, str) or len(proof) > 1024:
        return False
    try:
        data = signing.loads(proof, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return False
    return isinstance(data, dict) and data.get("c") == connection_id and data.get("o") == channel


def _warn_refused() -> None:
    """One WARNING per WARN_EVERY seconds: whoever writes to the layer cannot flood the log."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY:
        _last_warning = now
        logger.warning("Refused a connection move request without a valid proof")


async def _answer(backplane: Backplane, message: dict[str, Any], **values: Any) -> None:
    with contextlib.suppress(BackplaneError):
        await backplane.reply(message, **values)


async def _quiet(connection: HubConnection, timeout: float) -> bool:
    """Wait until nothing runs for the connection here (its read loop is stopped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and not connection.aborted:
        if (
            connection.active_invocations == 0
            and not connection.queued_invocations
            and not connection.streams_out
            and not connection.streams_in
            and not connection.pending_results
        ):
            return True
        await asyncio.sleep(0.01)
    return False


def _portable(items: dict[Any, Any]) -> tuple[dict[str, Any], int]:
    """The entries of `context.items` that can move: string keys, JSON values."""
    out: dict[str, Any] = {}
    for key, value in items.items():
        if not isinstance(key, str):
            continue
        try:
            out[key] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            continue
    return out, len(items) - len(out)


def _keep(handler: HubConnectionHandler, session: HubSession) -> None:
    """The connection stays here, waiting for its client as after a dropped socket."""
    from .websocket import _detach

    connection = session.connection
    if connection is not None and not connection.aborted and not connection.closed:
        _detach(handler, session)


def _give_up(connection_id: str, leaving: _Leaving) -> None:
    if _leaving.get(connection_id) is leaving:
        del _leaving[connection_id]
        leaving.handler.lifetime.leaving.discard(connection_id)
        _keep(leaving.handler, leaving.session)


async def _on_mark(backplane: Backplane, message: dict[str, Any]) -> None:
    """The marker of a hand-over: the owner exports and forgets, the arrival takes over."""
    mark = str(message.get("i", ""))
    connection_id = str(message.get("c", ""))
    if message.get("o") == backplane.channel:
        arriving = _arriving.get(mark)
        if arriving is not None:
            manager = backplane.hubs.get(arriving[0])
            if manager is not None:
                manager.arriving.discard(arriving[1])
        return
    leaving = _leaving.get(connection_id)
    reply_to = message.get("o")
    if leaving is None or leaving.mark != message.get("m") or leaving.arrival != reply_to:
        return
    del _leaving[connection_id]
    leaving.handler.lifetime.leaving.discard(connection_id)
    if leaving.expiry is not None:
        leaving.expiry.cancel()
    connection = leaving.session.connection
    assert connection is not None and connection.reconnect is not None
    if connection.aborted or connection.closed:  # ended meanwhile (over a cap, say)
        with contextlib.suppress(BackplaneError):
            await backplane.send_to(leaving.arrival, {"type": "signalr.reply", "i": mark})
        return
    # Everything sent to the connection before the marker is in the buffer now; from here
    # on the arrival gets it. Exported and unregistered before any await.
    state = {"s": connection.reconnect.export(), "g": sorted(connection.group_names)}
    await _forget_here(leaving.handler, connection)
    try:
        await backplane.send_to(leaving.arrival, {"type": "signalr.reply", "i": mark, **state})
    except BackplaneError:
        logger.warning("Handing connection %s over failed", safe_id(connection_id))
        return
    logger.debug("Connection %s moved to another worker", safe_id(connection_id))


async def _forget_here(handler: HubConnectionHandler, connection: HubConnection) -> None:
    """Unregister a connection that lives on elsewhere (no `on_disconnected`).

    The lifetime manager drops it from its tables before its first await, so no message
    sent after this call starts is delivered here.
    """
    if connection.reconnect is not None:
        connection.reconnect.clear()
    connection.mark_closed()
    get_heartbeat().remove(connection)
    handler.dispatcher.connection_ended(connection)
    await handler.lifetime.on_disconnected(connection)
    tracker = tracker_for(handler.hub_cls)
    if tracker is not None:
        tracker.disconnected(connection)


# -- draining -------------------------------------------------------------------------------


def can_hand_over(handler: Any, connection: HubConnection) -> bool:
    """Whether another worker could take `connection` over if this one stops serving it."""
    return (
        isinstance(handler, HubConnectionHandler)
        and handler.lifetime.backplane is not None
        and connection.reconnect is not None
        and not connection.aborted
        and not connection.closed
    )


def release(connection: HubConnection) -> bool:
    """Drain: let a stateful WebSocket client resume on another worker; False if it cannot.

    Its socket is closed without a Close message, so the client resumes with its
    connection token (through the load balancer, on a worker that is not draining), and
    the connection waits here, resumable, until that worker fetches it.
    """
    from .websocket import _live

    if connection.reconnect is None or connection.aborted or connection.closed:
        return False
    if connection.detached:
        return True  # its client is away already; it resumes wherever it lands
    live = _live.get(connection)
    if live is None or live[1].handler.lifetime.backplane is None:
        return False
    _spawn(_release(live[1].handler, connection))
    return True


async def _release(handler: HubConnectionHandler, connection: HubConnection) -> None:
    from .websocket import _detach, _take_over

    session = await _take_over(handler, connection.connection_id)
    if session is not None:
        _detach(handler, session)
    elif not connection.detached and not connection.closed:
        # Neither stopped here nor released by its read loop (the server cancelling it
        # on shutdown does that): it cannot wait for its client, so it ends as usual.
        connection.abort(Close(allow_reconnect=True), "shutdown")
