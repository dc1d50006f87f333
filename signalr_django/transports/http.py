"""The HTTP side of a hub endpoint: negotiate, CORS preflight, and the HTTP transports' URLs.

Negotiate is CSRF-exempt by construction (it never reaches Django's middleware) and safe to
be so: it changes nothing server-side, and the connection token it returns is bound to the
user who asked. Cross-origin callers must be listed in CORS_ALLOWED_ORIGINS; credentials
are allowed for them, so the wildcard origin is never echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from ..auth import AUTH_EXPIRES, authentication_expiry
from ..conf import HubOptions
from ..core import lifecycle
from ..core.load import over_limit
from ..core.shutdown import DRAINING, is_draining
from ..server import QueuedOutbound, response_backlog
from . import forwarding, ownership
from .hooks import negotiate_headers
from .http_connection import (
    LONG_POLLING,
    SERVER_SENT_EVENTS,
    HttpConnection,
    get_http_manager,
)
from .identity import ForwardedIdentity
from .negotiate import (
    error_body,
    make_connection_token,
    negotiate_body,
    new_connection_id,
    parse_version,
    read_connection_token,
    user_key,
)
from .security import (
    AuthenticationFailed,
    authenticate,
    header,
    hub_allows,
    is_authenticated,
    origin_allowed,
    requires_authentication,
)
from .sessions import EndpointHandler

logger = logging.getLogger(__name__)

NO_CONNECTION = b"No Connection with that ID"
REFUSED = b"The connection handler refused the connection."
AT_LIMIT = b"This server is at its connection limit; retry later or on another server."
RETRY_AFTER = b"5"
NO_CACHE = [(b"pragma", b"no-cache"), (b"expires", b"Thu, 01 Jan 1970 00:00:00 GMT")]
LONG_POLL_TIMEOUT = 90.0
NEGOTIATE = "negotiate"  # the `transport` of a refusal at negotiate
ALLOWED_HEADERS = "Authorization, Content-Type, X-Requested-With, X-SignalR-User-Agent"


async def respond(
    send: Any,
    status: int,
    body: bytes = b"",
    content_type: str = "text/plain; charset=utf-8",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete HTTP response."""
    all_headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache, no-store"),
    ]
    if headers:
        all_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def query_params(scope: dict[str, Any]) -> dict[str, str]:
    """The request's query parameters (`parse_qsl` rules: blank values left out).

    Every poll and send carries `?id=TOKEN`, whose characters need no unquoting; such a
    query is split directly, at a fraction of `parse_qsl`'s cost.
    """
    raw: bytes = scope.get("query_string", b"")
    if b"%" in raw or b"+" in raw:
        return dict(parse_qsl(raw.decode("latin-1")))
    params = {}
    for pair in raw.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if value:
            params[name] = value
    return params


def cors_headers(scope: dict[str, Any], options: HubOptions) -> list[tuple[bytes, bytes]]:
    """Credentialed CORS headers for an allowed cross-origin caller, else none."""
    origin = header(scope, b"origin")
    if origin is None or origin not in options.CORS_ALLOWED_ORIGINS:
        return []
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


async def drain_body(receive: Any) -> bytes:
    """Read the whole request body (negotiate ignores it but must consume it)."""
    chunks = []
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            break
        chunks.append(event.get("body", b""))
        if not event.get("more_body"):
            break
    return b"".join(chunks)


async def serve_negotiate(
    handler: EndpointHandler, scope: dict[str, Any], receive: Any, send: Any
) -> None:
    """`POST {hub}/negotiate`: a connection id, a secret token and the transports."""
    hub_cls = handler.hub_cls
    options = handler.options
    cors = cors_headers(scope, options)
    method = scope.get("method", "GET")
    if method == "OPTIONS":
        await _preflight(send, cors, scope, handler.hub_cls)
        return
    await drain_body(receive)
    if method != "POST":
        await respond(send, 405, b"Method Not Allowed", headers=[(b"allow", b"POST"), *cors])
        return
    if is_draining():
        # Before authenticating: nothing here may cost a shutting-down worker work.
        lifecycle.refused(scope, hub_cls, NEGOTIATE, "draining", "the worker is shutting down")
        await respond(send, 503, DRAINING, headers=[(b"retry-after", RETRY_AFTER), *cors])
        return
    try:
        user = await authenticate(scope, options)
    except AuthenticationFailed as exc:
        lifecycle.refused(scope, hub_cls, NEGOTIATE, "auth", "invalid or expired access token")
        await respond(
            send, 401, str(exc).encode(), headers=[(b"www-authenticate", b"Bearer"), *cors]
        )
        return
    if not await hub_allows(hub_cls, user, options):
        lifecycle.refused(scope, hub_cls, NEGOTIATE, "auth", "not authorized")
        if is_authenticated(user):
            await respond(send, 403, b"Forbidden", headers=cors)
        else:
            await respond(
                send, 401, b"Unauthorized", headers=[(b"www-authenticate", b"Bearer"), *cors]
            )
        return
    if over_limit():
        lifecycle.refused(scope, hub_cls, NEGOTIATE, "limit", "MAX_CONNECTIONS reached")
        await respond(send, 503, AT_LIMIT, headers=[(b"retry-after", RETRY_AFTER), *cors])
        return
    query = query_params(scope)
    version = parse_version(query.get("negotiateVersion"), options)
    if isinstance(version, str):
        await respond(send, 200, error_body(version), "application/json", cors)
        return
    connection_id = new_connection_id()
    stateful = (
        options.ALLOW_STATEFUL_RECONNECTS
        and version > 0
        and query.get("useStatefulReconnect", "").lower() == "true"
    )
    owner = ""
    backplane = handler.lifetime.backplane
    if backplane is not None:
        owner = await backplane.start()
        forwarding.register(backplane, handler)
    token = make_connection_token(connection_id, user_key(user), stateful, owner, version == 0)
    body = negotiate_body(version, connection_id, token, options, stateful)
    try:
        extra = await negotiate_headers(options, scope, user)
    except Exception:
        logger.exception("NEGOTIATE_RESPONSE_HOOK of %s failed", hub_cls.__qualname__)
        await respond(send, 500, b"Internal Server Error", headers=cors)
        return
    await respond(send, 200, body, "application/json", [*cors, *extra])


async def _preflight(
    send: Any, cors: list[tuple[bytes, bytes]], scope: dict[str, Any], hub_cls: type
) -> None:
    if not cors:
        lifecycle.refused(scope, hub_cls, "preflight", "origin", "not in CORS_ALLOWED_ORIGINS")
        await respond(send, 403, b"Origin not allowed")
        return
    await respond(
        send,
        204,
        headers=[
            *cors,
            (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
        ],
    )


async def serve_connection_request(
    handler: EndpointHandler, scope: dict[str, Any], receive: Any, send: Any
) -> None:
    """GET (SSE stream or long poll), POST (send) and DELETE (end) on `{hub}?id=TOKEN`."""
    options = handler.options
    cors = cors_headers(scope, options)
    method = scope.get("method", "GET")
    if method == "OPTIONS":
        await _preflight(send, cors, scope, handler.hub_cls)
        return
    if method not in ("GET", "POST", "DELETE"):
        await drain_body(receive)
        await respond(send, 405, b"Method Not Allowed", headers=cors)
        return
    accept = header(scope, b"accept") or ""
    sse = method == "GET" and "text/event-stream" in accept
    requested = SERVER_SENT_EVENTS if sse else LONG_POLLING
    token = query_params(scope).get("id")
    if not token:
        await drain_body(receive)
        await respond(send, 400, b"Connection ID required", headers=cors)
        return
    # A forwarded request comes with the identity its first worker authenticated (signed,
    # verified by forwarding): the token is checked against it, and the full user is only
    # needed if this request starts the connection.
    identity: ForwardedIdentity | None = scope.get("signalr_forwarded")
    user: Any = None
    if identity is not None:
        key = identity.user_key
    else:
        try:
            user = await authenticate(scope, options)
        except AuthenticationFailed as exc:
            lifecycle.refused(scope, handler.hub_cls, requested, "auth", "invalid access token")
            await drain_body(receive)
            await respond(
                send, 401, str(exc).encode(), headers=[(b"www-authenticate", b"Bearer"), *cors]
            )
            return
        if requires_authentication(handler.hub_cls, options) and not is_authenticated(user):
            # As in ASP.NET Core, authorization comes before the connection lookup.
            lifecycle.refused(scope, handler.hub_cls, requested, "auth", "not authenticated")
            await drain_body(receive)
            await respond(
                send, 401, b"Unauthorized", headers=[(b"www-authenticate", b"Bearer"), *cors]
            )
            return
        key = user_key(user)
    verified = read_connection_token(token, key)
    if verified is None:
        await drain_body(receive)
        await respond(send, 404, NO_CONNECTION, headers=cors)
        return
    connection_id = verified.public_id(token)
    if handler.was_deleted(connection_id):
        # Ended by DELETE: the id is gone, as in ASP.NET Core.
        await drain_body(receive)
        await respond(send, 404, NO_CONNECTION, headers=cors)
        return
    backplane = handler.lifetime.backplane
    if (
        backplane is not None
        and verified.owner
        and verified.owner != await backplane.start()
        and identity is None
        and handler.lifetime.connections.get(connection_id) is None
    ):
        if options.CLOSE_ON_AUTHENTICATION_EXPIRATION and method == "GET":
            scope[AUTH_EXPIRES] = await authentication_expiry(scope, user)
        await forwarding.forward(backplane, verified.owner, handler, scope, receive, send, user)
        return
    manager = get_http_manager(handler)
    connection = manager.get(connection_id)
    websocket = handler.lifetime.connections.get(connection_id)
    if method == "POST":
        if connection is None:
            await drain_body(receive)
            if websocket is not None:
                text = b"POST requests are not allowed for WebSocket connections."
                await respond(send, 405, text, headers=cors)
            else:
                await respond(send, 404, NO_CONNECTION, headers=cors)
            return
        content_type = header(scope, b"content-type") or ""
        refused = await connection.receive_post(receive, content_type.startswith("text/"))
        if refused is not None:
            await respond(send, refused[0], refused[1], headers=cors)
            return
        await respond(send, 200, headers=cors)
        return
    await drain_body(receive)
    if method == "DELETE":
        if connection is None and websocket is None:
            await respond(send, 404, NO_CONNECTION, headers=cors)
            return
        if connection is None or connection.transport != LONG_POLLING:
            text = b"Cannot terminate this connection using the DELETE endpoint."
            await respond(send, 400, text, headers=cors)
            return
        handler.mark_deleted(connection_id)
        connection.end(None, client_gone=True)
        await respond(send, 202, b"", headers=cors)
        return
    # GET: the SSE stream, or a poll.
    if connection is None:
        if handler.token_spent(connection_id):
            await respond(send, 204, b"", headers=[*NO_CACHE, *cors])
            return
        if websocket is not None:
            await respond(send, 400, b"Cannot change transports mid-connection", headers=cors)
            return
        if requested not in options.TRANSPORTS:
            text = f"{requested} transport not supported by this end point type".encode()
            await respond(send, 404, text, headers=cors)
            return
        if time.time() - verified.issued > options.DISCONNECT_TIMEOUT + 5:
            await respond(send, 404, NO_CONNECTION, headers=cors)
            return
        if not origin_allowed(scope, options):
            lifecycle.refused(scope, handler.hub_cls, requested, "origin", "not in ALLOWED_ORIGINS")
            await respond(send, 403, b"Origin not allowed", headers=cors)
            return
        if identity is not None:
            user = await identity.user()  # the model instance: one query, at start only
            if user is None:
                await respond(send, 404, NO_CONNECTION, headers=cors)  # the user is gone
                return
        if not await hub_allows(handler.hub_cls, user, options):
            lifecycle.refused(scope, handler.hub_cls, requested, "auth", "not authorized")
            await respond(send, 403, b"Forbidden", headers=cors)
            return
        if options.CLOSE_ON_AUTHENTICATION_EXPIRATION and AUTH_EXPIRES not in scope:
            scope[AUTH_EXPIRES] = await authentication_expiry(scope, user)
        if is_draining():
            lifecycle.refused(scope, handler.hub_cls, requested, "draining", "shutting down")
            await respond(send, 503, DRAINING, headers=[(b"retry-after", RETRY_AFTER), *cors])
            return
        if over_limit():
            lifecycle.refused(scope, handler.hub_cls, requested, "limit", "MAX_CONNECTIONS reached")
            await respond(send, 503, AT_LIMIT, headers=[(b"retry-after", RETRY_AFTER), *cors])
            return
        try:
            mine = await ownership.claim_for(handler, verified)
        except ownership.RegistryUnavailable:
            headers = [(b"retry-after", RETRY_AFTER), *cors]
            await respond(send, 503, ownership.UNAVAILABLE, headers=headers)
            return
        if not mine or manager.get(connection_id) is not None:
            await respond(send, 404, NO_CONNECTION, headers=cors)  # started elsewhere or ended
            return
        connection = manager.create(connection_id, requested, scope, user)
        if not sse:
            # The first poll returns at once: it is what starts the connection.
            if not await connection.open():
                await respond(send, 500, REFUSED, headers=cors)
                return
            await respond(send, 200, b"", "application/octet-stream", [*NO_CACHE, *cors])
            return
        await serve_sse(connection, receive, send, cors)
        return
    if connection.transport != requested:
        await respond(send, 400, b"Cannot change transports mid-connection", headers=cors)
        return
    if sse:
        await respond(
            send, 409, b"An SSE stream is already open for this connection.", headers=cors
        )
        return
    if options.CLOSE_ON_AUTHENTICATION_EXPIRATION:
        # Each poll brings its own credentials (the clients ask their token factory every
        # time): as in ASP.NET Core, the connection now expires with this poll's.
        hub_connection = connection.session.connection
        if hub_connection is not None:
            if identity is None:
                scope[AUTH_EXPIRES] = await authentication_expiry(scope, user)
            expires = scope.get(AUTH_EXPIRES)
            hub_connection.auth_expires = float(expires) if expires is not None else None
    status, body = await connection.poll(LONG_POLL_TIMEOUT)
    if status == 204:
        await respond(send, 204, b"", headers=[*NO_CACHE, *cors])
    elif body:
        await respond(send, 200, body, "application/octet-stream", [*NO_CACHE, *cors])
    else:
        await respond(send, 200, b"", headers=[*NO_CACHE, *cors])


async def serve_sse(
    connection: HttpConnection, receive: Any, send: Any, cors: list[tuple[bytes, bytes]]
) -> None:
    """Hold the event stream open until the client leaves or the connection ends."""
    if not await connection.open():
        await respond(send, 500, REFUSED, headers=cors)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache,no-store"),
                (b"pragma", b"no-cache"),
                (b"content-encoding", b"identity"),
                (b"x-accel-buffering", b"no"),
                *cors,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b":\r\n", "more_body": True})
    connection.sse_send = send
    connection.sse_backlog = response_backlog(send)
    connection.sse_ready.set()
    client_left = asyncio.ensure_future(_wait_disconnect(receive))
    ended = asyncio.ensure_future(connection.sse_closed.wait())
    try:
        await asyncio.wait({client_left, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        client_left.cancel()
        ended.cancel()
    if not connection.ended:
        connection.end(None, client_gone=True)
        # Nobody reads any more: stop the writer task, which would otherwise wait forever
        # (and be destroyed pending once the connection is garbage).
        connection.outbound.close()
        return
    await connection.wait_ended()
    outbound = connection.outbound
    if isinstance(outbound, QueuedOutbound):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(connection.handler.options.SHUTDOWN_DRAIN_TIMEOUT):
                await outbound.flush()
    outbound.close()
    connection.sse_send = None
    with contextlib.suppress(Exception):
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_disconnect(receive: Any) -> None:
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return
