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
import logging
import time
from typing import Any

from ..conf import HubOptions
from ..core.connection import HubConnection
from ..dispatch.dispatcher import ClientClosed
from ..dispatch.handler import ConnectionRefused, HubConnectionHandler
from ..exceptions import HandshakeError, ProtocolError
from ..protocol import Payload, TransferFormat
from ..protocol.framing import BinaryFramer, TextFramer
from ..protocol.handshake import (
    GENERIC_HANDSHAKE_ERROR,
    HANDSHAKE_CANCELED,
    HANDSHAKE_OK,
    handshake_error,
)
from ..users import load_provider
from .negotiate import new_connection_id, read_connection_token, user_key
from .security import AuthenticationFailed, authenticate, hub_allows, origin_allowed

logger = logging.getLogger(__name__)

TRANSPORT = "WebSockets"
RS = 0x1E
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


class _ClientGone(Exception):
    """The socket closed under us."""


async def serve_websocket(
    handler: HubConnectionHandler, scope: dict[str, Any], receive: Any, send: Any
) -> None:
    """Run one WebSocket hub connection from upgrade to close."""
    options: HubOptions = handler.options
    event = await receive()
    if event["type"] != "websocket.connect":
        return
    if "WebSockets" not in options.TRANSPORTS or not origin_allowed(scope, options):
        await _reject(send)
        return
    try:
        user = await authenticate(scope, options)
    except AuthenticationFailed:
        await _reject(send)
        return
    if not await hub_allows(handler.hub_cls, user):
        await _reject(send)
        return
    token = _query_id(scope)
    if token is None:
        connection_id = new_connection_id()  # skipNegotiation
    else:
        verified = read_connection_token(token, user_key(user))
        if verified is None or time.time() - verified.issued > options.DISCONNECT_TIMEOUT + 5:
            await _reject(send)  # "No Connection with that ID"
            return
        connection_id = verified.connection_id
        if "." not in connection_id and len(connection_id) < 22:
            await _reject(send)
            return
        if verified.connection_id in handler.lifetime.connections:
            await _reject(send)  # the token is already in use (409 over HTTP)
            return
    await send({"type": "websocket.accept"})

    # -- handshake ---------------------------------------------------------------------
    # The handshake is JSON text ending in 0x1E whatever the protocol; what follows it in
    # the same frame already belongs to the chosen protocol, so it is kept as raw bytes.
    limit = options.MAXIMUM_RECEIVE_MESSAGE_SIZE
    buffer = bytearray()
    try:
        async with asyncio.timeout(options.HANDSHAKE_TIMEOUT):
            while RS not in buffer:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    return
                text = event.get("text")
                buffer += (
                    text.encode("utf-8", "surrogatepass")
                    if text is not None
                    else (event.get("bytes") or b"")
                )
                if len(buffer) > limit and RS not in buffer[:limit]:
                    raise ProtocolError("Handshake too large.")
        end = buffer.index(RS)
        record = bytes(buffer[:end]).decode("utf-8")
        protocol, _version = handler.select_protocol(record, FORMATS)
    except (TimeoutError, ProtocolError):
        await _send_and_close(send, handshake_error(HANDSHAKE_CANCELED))
        return
    except UnicodeDecodeError:
        await _send_and_close(send, handshake_error(GENERIC_HANDSHAKE_ERROR))
        return
    except HandshakeError as exc:
        await _send_and_close(send, handshake_error(str(exc)))
        return

    binary = protocol.transfer_format is TransferFormat.BINARY
    rest = bytes(buffer[end + 1 :])
    text_framer: TextFramer | None = None
    binary_framer: BinaryFramer | None = None
    try:
        if binary:
            binary_framer = BinaryFramer(limit)
            leftover: list[Any] = binary_framer.feed(rest) if rest else []
            await send({"type": "websocket.send", "bytes": HANDSHAKE_OK.encode()})
        else:
            text_framer = TextFramer(limit)
            leftover = text_framer.feed_bytes(rest) if rest else []
            await send({"type": "websocket.send", "text": HANDSHAKE_OK})
    except ProtocolError:
        leftover = []
        await send({"type": "websocket.close", "code": 1000})
        return

    async def write(payload: Payload) -> None:
        if isinstance(payload, str):
            await send({"type": "websocket.send", "text": payload})
        else:
            await send({"type": "websocket.send", "bytes": payload})

    provider = load_provider(options.USER_ID_PROVIDER)
    connection = HubConnection(
        connection_id,
        handler.hub_cls,
        options,
        protocol,
        scope,
        TRANSPORT,
        write,
        user,
        provider(user, scope),
    )
    reader = asyncio.current_task()
    assert reader is not None
    connection.on_abort(lambda: _cancel(reader))

    failure: BaseException | None = None
    client_gone = False
    try:
        await handler.connected(connection)
        if leftover:
            await handler.receive(connection, leftover)
        while True:
            event = await receive()
            kind = event["type"]
            if kind == "websocket.receive":
                connection.last_received = time.monotonic()
                text = event.get("text")
                chunk: list[Any]
                if text_framer is not None:
                    chunk = (
                        text_framer.feed(text)
                        if text is not None
                        else text_framer.feed_bytes(event.get("bytes") or b"")
                    )
                elif text is not None:
                    raise ProtocolError("Text frames are not valid for a binary protocol.")
                else:
                    assert binary_framer is not None
                    chunk = binary_framer.feed(event.get("bytes") or b"")
                if chunk:
                    await handler.receive(connection, chunk)
            elif kind == "websocket.disconnect":
                client_gone = True
                break
    except asyncio.CancelledError:
        if not connection.aborted:
            raise
        reader.uncancel()
    except (ProtocolError, ClientClosed, ConnectionRefused) as error:
        failure = error
    except Exception as error:
        logger.exception("Hub connection %s failed", connection_id)
        failure = error
    finally:
        close = connection.close_message or handler.close_for(failure)
        if not client_gone:
            try:
                await connection.send(close)
                connection.mark_closed()
                await send({"type": "websocket.close", "code": 1000})
            except Exception:
                logger.debug("Closing %s failed", connection_id, exc_info=True)
        await handler.disconnected(connection, failure)


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()


async def _send_and_close(send: Any, text: str) -> None:
    await send({"type": "websocket.send", "text": text})
    await send({"type": "websocket.close", "code": 1000})
