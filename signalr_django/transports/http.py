"""The HTTP side of a hub endpoint: negotiate, CORS preflight, and the HTTP transports' URLs.

Negotiate is CSRF-exempt by construction (it never reaches Django's middleware) and safe to
be so: it changes nothing server-side, and the connection token it returns is bound to the
user who asked. Cross-origin callers must be listed in CORS_ALLOWED_ORIGINS; credentials
are allowed for them, so the wildcard origin is never echoed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from ..conf import HubOptions
from .negotiate import (
    error_body,
    make_connection_token,
    negotiate_body,
    new_connection_id,
    parse_version,
    user_key,
)
from .security import AuthenticationFailed, authenticate, header, hub_allows, is_authenticated

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
    hub_cls: type, options: HubOptions, scope: dict[str, Any], receive: Any, send: Any
) -> None:
    """`POST {hub}/negotiate`: a connection id, a secret token and the transports."""
    cors = cors_headers(scope, options)
    method = scope.get("method", "GET")
    if method == "OPTIONS":
        await _preflight(send, cors)
        return
    await drain_body(receive)
    if method != "POST":
        await respond(send, 405, b"Method Not Allowed", headers=[(b"allow", b"POST"), *cors])
        return
    try:
        user = await authenticate(scope, options)
    except AuthenticationFailed as exc:
        await respond(
            send, 401, str(exc).encode(), headers=[(b"www-authenticate", b"Bearer"), *cors]
        )
        return
    if not await hub_allows(hub_cls, user):
        if is_authenticated(user):
            await respond(send, 403, b"Forbidden", headers=cors)
        else:
            await respond(
                send, 401, b"Unauthorized", headers=[(b"www-authenticate", b"Bearer"), *cors]
            )
        return
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    version = parse_version(query.get("negotiateVersion"), options)
    if isinstance(version, str):
        await respond(send, 200, error_body(version), "application/json", cors)
        return
    connection_id = new_connection_id()
    token = make_connection_token(connection_id, user_key(user))
    body = negotiate_body(version, connection_id, token, options)
    await respond(send, 200, body, "application/json", cors)


async def _preflight(send: Any, cors: list[tuple[bytes, bytes]]) -> None:
    if not cors:
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
    options: HubOptions, scope: dict[str, Any], receive: Any, send: Any
) -> None:
    """GET/POST/DELETE `{hub}?id=...` for transports that this endpoint does not serve."""
    cors = cors_headers(scope, options)
    method = scope.get("method", "GET")
    if method == "OPTIONS":
        await _preflight(send, cors)
        return
    await drain_body(receive)
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    accept = header(scope, b"accept") or ""
    if method == "GET" and "text/event-stream" in accept:
        if "ServerSentEvents" not in options.TRANSPORTS:
            message = b"ServerSentEvents transport not supported by this end point type"
            await respond(send, 404, message, headers=cors)
            return
    elif method == "GET":
        if "LongPolling" not in options.TRANSPORTS:
            message = b"LongPolling transport not supported by this end point type"
            await respond(send, 404, message, headers=cors)
            return
    elif method not in ("POST", "DELETE"):
        await respond(send, 405, b"Method Not Allowed", headers=cors)
        return
    if not query.get("id"):
        await respond(send, 400, b"Connection ID required", headers=cors)
        return
    await respond(send, 404, b"No Connection with that ID", headers=cors)
