"""The WebSockets transport: one ASGI WebSocket connection carrying one hub connection.

This is a raw ASGI application, not a Channels consumer: Channels' generic consumer adds a
dispatch hop per event (measured at ~250 us of CPU per message on this kind of machine),
and a hub connection needs none of it. The read loop feeds frames to the connection's
framer; hub methods run in their own tasks (see the dispatcher), so the loop keeps reading.
Every outbound hub message is one whole frame, because the JavaScript client cannot
reassemble a message split across frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Any

from ..auth import AUTH_EXPIRES, authentication_expiry
from ..conf import HubOptions
from ..core import lifecycle
from ..core.connection import HubConnection
from ..core.load import over_limit
from ..core.logs import safe_id
from ..core.shutdown import DRAINING, is_draining
from ..dispatch.dispatcher import ClientClosed
from ..dispatch.handler import ConnectionRefused, HubConnectionHandler, ServerShutdown
from ..dispatch.session import HandshakeFailed, HubSession
from ..exceptions import ProtocolError
from ..protocol import Sequence, TransferFormat
from ..server import QueuedOutbound, websocket_outbound
from ..server.daphne import DaphneWebSocketOutbound
from ..server.outbound import Outbound
from . import handoff, ownership
from .http import AT_LIMIT
from .http_connection import get_http_manager
from .negotiate import new_connection_id, read_connection_token, user_key
from .security import AuthenticationFailed, authenticate, hub_allows, origin_allowed
from .sessions import EndpointHandler, Session, new_session

logger = logging.getLogger(__name__)

TRANSPORT = "WebSockets"
FORMATS = (TransferFormat.TEXT, TransferFormat.BINARY)


def _query_id(scope: dict[str, Any]) -> str | None:
    query = scope.get("query_string", b"")
    if b"id=" not in query:
        return None
    from urllib.parse import parse_qsl

    for key, value in parse_qsl(query.decode("latin-1")):
        if key == "id":
            return str(value)
    return None


async def _reject(send: Any) -> None:
    """Refuse the upgrade (the server answers 403)."""
    await send({"type": "websocket.close", "code": 1008})


async def serve_websocket(
    handler: EndpointHandler, scope: dict[str, Any], receive: Any, send: Any
) -> None:
    """Run one WebSocket connection (a hub's or a connection handler's) from upgrade to close."""
    options: HubOptions = handler.options
    event = await receive()
    if event["type"] != "websocket.connect":
        return
    hub_cls = handler.hub_cls
    if is_draining():
        lifecycle.refused(scope, hub_cls, TRANSPORT, "draining", "the worker is shutting down")
        await _refuse_unavailable(scope, send, DRAINING)  # not even a resumption: all leave
        return
    if "WebSockets" not in options.TRANSPORTS:
        lifecycle.refused(scope, hub_cls, TRANSPORT, "transport", "WebSockets not enabled")
        await _reject(send)
        return
    if not origin_allowed(scope, options):
        lifecycle.refused(scope, hub_cls, TRANSPORT, "origin", "not in ALLOWED_ORIGINS")
        await _reject(send)
        return
    try:
        user = await authenticate(scope, options)
    except AuthenticationFailed:
        lifecycle.refused(scope, hub_cls, TRANSPORT, "auth", "invalid or expired access token")
        await _reject(send)
        return
    if not await hub_allows(hub_cls, user, options):
        lifecycle.refused(scope, hub_cls, TRANSPORT, "auth", "not authorized")
        await _reject(send)
        return
    if options.CLOSE_ON_AUTHENTICATION_EXPIRATION:
        scope[AUTH_EXPIRES] = await authentication_expiry(scope, user)
    token = _query_id(scope)
    if over_limit() and not (token and _resumable(handler, token, user)):
        lifecycle.refused(scope, hub_cls, TRANSPORT, "limit", "MAX_CONNECTIONS reached")
        await _refuse_unavailable(scope, send, AT_LIMIT)
        return
    resumed: HubSession | None = None
    stateful = False
    claimed = False
    if token is None:
        connection_id = new_connection_id()  # skipNegotiation
    else:
        verified = read_connection_token(token, user_key(user))
        if verified is None:
            await _reject(send)  # "No Connection with that ID"
            return
        connection_id = verified.public_id(token)
        stateful = verified.stateful
        resumed = handler.resumable.pop(connection_id, None)
        if resumed is None and stateful and connection_id in handler.lifetime.connections:
            resumed = await _take_over(handler, connection_id)
        if (
            resumed is None
            and stateful
            and isinstance(handler, HubConnectionHandler)
            and handoff.may_move(handler, connection_id)
        ):
            # A resume of a connection another worker holds, or the token's first use.
            if await handoff.claim_start(handler, verified):
                claimed = True
            else:
                resumed = await handoff.move_here(handler, connection_id, scope, user)
                if resumed is None:
                    await _reject(send)
                    return
        if resumed is None and (
            time.time() - verified.issued > options.DISCONNECT_TIMEOUT + 5
            or connection_id in handler.lifetime.connections
            or handler.token_spent(connection_id)
            or get_http_manager(handler).get(connection_id) is not None
        ):
            await _reject(send)  # unknown, expired or already in use (404/409 over HTTP)
            return
        if (
            resumed is None
            and not claimed
            and not await ownership.claim_websocket(handler, verified, scope, send)
        ):
            return  # started on another worker, ended there, or the registry is unreachable
    await send({"type": "websocket.accept"})

    outbound = websocket_outbound(send)
    task = asyncio.current_task()
    assert task is not None
    reader: asyncio.Task[Any] = task
    session: Session
    if resumed is not None:
        session = resumed
        session.on_abort(lambda: _cancel(reader))
        if not _resume(session, outbound):
            await send({"type": "websocket.close", "code": 1000})
            return
        if options.CLOSE_ON_AUTHENTICATION_EXPIRATION and session.connection is not None:
            expires = scope.get(AUTH_EXPIRES)  # the resuming request's credentials count now
            session.connection.auth_expires = float(expires) if expires is not None else None
    else:
        session = new_session(
            handler,
            connection_id=connection_id,
            scope=scope,
            user=user,
            transport=TRANSPORT,
            formats=FORMATS,
            outbound=outbound,
            on_abort=lambda: _cancel(reader),
            stateful=stateful,
        )
    failure: BaseException | None = None
    client_gone = False
    replaced = False
    released = False
    parked = False
    try:
        await session.open()
        async with asyncio.timeout(options.HANDSHAKE_TIMEOUT):
            while session.connection is None:
                event = await receive()
                if event["type"] != "websocket.receive":
                    client_gone = True
                    return
                await session.feed(_data(event))
        if isinstance(session, HubSession):
            assert session.connection is not None
            if isinstance(outbound, DaphneWebSocketOutbound):
                from .parked import park

                parked = park(handler, session, outbound, send)
                if parked:
                    return  # the connection lives on without this task (see `parked`)
            _live[session.connection] = (reader, session)
        while True:
            session.parked = True
            event = await receive()
            session.parked = False
            if event["type"] == "websocket.receive":
                await session.feed(_data(event))
            elif event["type"] == "websocket.disconnect":
                client_gone = True
                break
    except TimeoutError:
        await session.handshake_timed_out()
    except asyncio.CancelledError:
        connection = session.connection
        if isinstance(connection, HubConnection) and reader is _replacing.get(connection):
            # A resumed socket took this connection over (stateful reconnect): this stale
            # socket leaves quietly and the connection lives on.
            replaced = True
            reader.uncancel()
        elif isinstance(connection, HubConnection) and handoff.can_hand_over(handler, connection):
            # The server is shutting down: a stateful client resumes on another worker,
            # which takes the connection over from here (see `handoff`).
            released = True
            reader.uncancel()
        elif connection is None or not connection.aborted:
            # The server is shutting down (Daphne cancels its applications): tell the
            # client to reconnect, to another worker if this one does not come back.
            failure = ServerShutdown()
            raise
        else:
            reader.uncancel()
    except HandshakeFailed:
        pass
    except (ProtocolError, ClientClosed, ConnectionRefused) as error:
        failure = error
    except Exception as error:
        logger.exception("Hub connection %s failed", safe_id(connection_id))
        failure = error
    finally:
        if not parked:
            connection = session.connection
            if isinstance(connection, HubConnection):
                live = _live.get(connection)
                if live is not None and live[0] is reader:
                    del _live[connection]
            await end_socket(
                handler,
                session,
                outbound,
                send,
                failure=failure,
                client_gone=client_gone,
                replaced=replaced,
                released=released,
            )


async def end_socket(
    handler: EndpointHandler,
    session: Session,
    outbound: Outbound,
    send: Any,
    *,
    failure: BaseException | None,
    client_gone: bool,
    replaced: bool,
    released: bool,
) -> None:
    """What happens to a hub socket that stops being read, however its reading ended.

    `replaced`: a resumed socket took the connection over (close this one quietly);
    `released`: the server shuts down and a stateful client resumes elsewhere; a stateful
    client gone is kept for DISCONNECT_TIMEOUT; anything else ends the connection (Close
    message, disconnect path, WebSocket close).
    """
    connection = session.connection
    session.parked = False
    if replaced:
        assert isinstance(connection, HubConnection)
        _replacing.pop(connection, None)
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": 1000})
    elif released:
        assert isinstance(session, HubSession)
        _detach(handler, session)
        with contextlib.suppress(Exception):
            # No Close message: the client resumes instead of ending the connection.
            await send({"type": "websocket.close", "code": 1000})
    elif (
        client_gone
        and failure is None
        and isinstance(session, HubSession)
        and isinstance(connection, HubConnection)
        and connection.reconnect is not None
        and not connection.aborted
    ):
        _detach(handler, session)
    else:
        await session.finish(failure, client_gone)
        if not client_gone:
            if isinstance(outbound, QueuedOutbound):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(handler.options.SHUTDOWN_DRAIN_TIMEOUT):
                        await outbound.flush()
            try:
                await send({"type": "websocket.close", "code": session.close_code})
            except Exception:
                logger.debug("Closing %s failed", safe_id(session.connection_id), exc_info=True)
    outbound.close()


def cancelled_outcome(
    handler: EndpointHandler, session: Session, stopped_by: object
) -> tuple[BaseException | None, bool, bool]:
    """(failure, replaced, released) for a socket whose reading was cancelled.

    A resumed socket took it over (`_replacing` names who was stopped); the server shuts
    down and a stateful client can resume elsewhere; the server shuts down otherwise
    (`ServerShutdown`: the client is told to reconnect); or the connection was aborted,
    which ends it normally.
    """
    connection = session.connection
    if isinstance(connection, HubConnection) and _replacing.get(connection) is stopped_by:
        return None, True, False
    if isinstance(connection, HubConnection) and handoff.can_hand_over(handler, connection):
        return None, False, True
    if connection is None or not connection.aborted:
        return ServerShutdown(), False, False
    return None, False, False


# The reader (the read loop's task, or a `parked.ParkedReader`) and session serving each
# live WebSocket hub connection, and the readers being replaced by a resumed socket; weak
# keys, so ended connections leave nothing.
_live: weakref.WeakKeyDictionary[HubConnection, tuple[Any, HubSession]] = (
    weakref.WeakKeyDictionary()
)
_replacing: weakref.WeakKeyDictionary[HubConnection, Any] = weakref.WeakKeyDictionary()


async def _take_over(handler: EndpointHandler, connection_id: str) -> HubSession | None:
    """A stateful client resumed while its old socket still looks open here: replace it.

    A dropped network path (a half-open TCP connection) can leave the old socket looking
    alive for minutes; the client has already reconnected with its connection token, which
    only it holds. The stale socket's read loop is stopped without ending the connection,
    and the new socket resumes it (ASP.NET Core likewise ends the previous transport).
    """
    connection = handler.lifetime.connections.get(connection_id)
    if (
        not isinstance(connection, HubConnection)
        or connection.reconnect is None
        or connection.aborted
    ):
        return None
    live = _live.get(connection)
    if live is None:
        return None
    reader, session = live
    if not isinstance(reader, asyncio.Task):  # a parked reader
        if not await reader.take_over() or connection.aborted or connection.closed:
            return None
        connection.detached = True
        return session
    if reader.done():
        return None
    # Stop the old read loop only where it waits for the next frame, never halfway through
    # dispatching one (a counted message must not be lost).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + handler.options.HANDSHAKE_TIMEOUT
    while not session.parked and not reader.done() and loop.time() < deadline:
        await asyncio.sleep(0.01)
    if not session.parked or reader.done():
        return None
    _replacing[connection] = reader
    reader.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait({reader}, timeout=handler.options.HANDSHAKE_TIMEOUT)
    if not reader.done() or connection.aborted or connection.closed:
        return None
    connection.detached = True
    return session


def _detach(handler: EndpointHandler, session: HubSession) -> None:
    """The socket dropped under a stateful connection: keep it for DISCONNECT_TIMEOUT."""
    connection = session.connection
    assert connection is not None
    connection.detached = True
    handler.resumable[session.connection_id] = session

    async def expire() -> None:
        await asyncio.sleep(handler.options.DISCONNECT_TIMEOUT)
        if handler.resumable.get(session.connection_id) is session and connection.detached:
            del handler.resumable[session.connection_id]
            await session.finish(None, client_gone=True)

    task = asyncio.get_running_loop().create_task(expire())
    _expiring.add(task)
    task.add_done_callback(_expiring.discard)


_expiring: set[asyncio.Task[None]] = set()


def _resume(session: HubSession, outbound: Outbound) -> bool:
    """Send Sequence and every unacknowledged message, then let the new socket carry on.

    False when the connection was closed meanwhile (over its cap while away): the client
    then starts a new connection.
    """
    connection = session.connection
    assert connection is not None and connection.reconnect is not None
    if connection.aborted or connection.closed:
        return False
    buffer = connection.reconnect
    outbound.write(connection.protocol.encode(Sequence(buffer.replay_start())))
    for _, payload in buffer.buffer:
        outbound.write(payload)
    connection.last_received = time.monotonic()
    session.set_outbound(outbound)
    return True


def _resumable(handler: EndpointHandler, token: str, user: Any) -> bool:
    verified = read_connection_token(token, user_key(user))
    return verified is not None and verified.public_id(token) in handler.resumable


async def _refuse_unavailable(scope: dict[str, Any], send: Any, body: bytes) -> None:
    """503 with Retry-After where the server supports ASGI's WebSocket denial responses;
    Daphne only lets an application refuse an upgrade with 403."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"text/plain"), (b"retry-after", b"5")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await _reject(send)


def _data(event: dict[str, Any]) -> str | bytes:
    text = event.get("text")
    if text is not None:
        return str(text)
    data: bytes = event.get("bytes") or b""
    return data


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
