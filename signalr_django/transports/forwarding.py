"""No sticky sessions: HTTP-transport requests that reach the wrong worker are forwarded.

A Server-Sent Events or long-polling connection lives in the worker that negotiated it (the
connection token names that worker's backplane channel, signed). When a poll, a send, a
DELETE or the event stream reaches another worker (a load balancer without affinity), that
worker relays the whole HTTP exchange to the owner over the channel layer: the request
(method, path, headers, body) goes to the owner's channel, the owner runs it through its own
endpoint, and the response events (status, then body chunks, streamed for SSE) come back on
the relaying worker's channel. A client leaving is relayed too, so the owner sees it.

The relaying worker authenticates the request first (session cookie or bearer token, as the
owner would) and sends the user along as a signed identity bound to the request id (see
`identity`); the owner serves the request as that user and refuses one without a valid
identity, so nobody who can write to the channel layer can act as another user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..auth import AUTH_EXPIRES
from ..lifetime.backplane import Backplane, BackplaneError
from ..metrics.counters import METRICS
from .identity import read_identity, sign_identity

if TYPE_CHECKING:
    from .sessions import EndpointHandler

logger = logging.getLogger(__name__)

NO_CONNECTION = b"No Connection with that ID"
MAX_FORWARDED_BODY = 1 << 20

WARN_EVERY = 10.0

_handlers: dict[tuple[int, str], EndpointHandler] = {}
_last_warning = -WARN_EVERY
_disconnects: dict[str, asyncio.Event] = {}


def register(backplane: Backplane, handler: EndpointHandler) -> None:
    """Let this worker serve requests forwarded to it for `handler`'s hub."""
    key = (id(backplane), handler.endpoint_key)
    if key in _handlers:
        _handlers[key] = handler
        return
    _handlers[key] = handler
    if "signalr.http" not in backplane.handlers:

        async def on_request(message: dict[str, Any]) -> None:
            target = _handlers.get((id(backplane), message.get("h", "")))
            if target is not None:
                asyncio.get_running_loop().create_task(_serve(backplane, target, message))

        async def on_disconnect(message: dict[str, Any]) -> None:
            event = _disconnects.get(message.get("i", ""))
            if event is not None:
                event.set()

        backplane.on("signalr.http", on_request)
        backplane.on("signalr.http.disconnect", on_disconnect)


async def forward(
    backplane: Backplane,
    owner: str,
    handler: EndpointHandler,
    scope: dict[str, Any],
    receive: Any,
    send: Any,
    user: Any,
) -> None:
    """Relay one HTTP exchange, made by `user`, to the worker that owns the connection."""
    from .http import respond

    body = b""
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return
        body += event.get("body", b"")
        if len(body) > MAX_FORWARDED_BODY:
            await respond(send, 413, b"Request body too large")
            return
        if not event.get("more_body"):
            break
    METRICS.count_forwarded(_request_kind(scope))
    rid = uuid.uuid4().hex
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    backplane.streams[rid] = queue
    request = {
        "type": "signalr.http",
        "h": handler.endpoint_key,
        "i": rid,
        "o": await backplane.start(),
        "m": scope.get("method", "GET"),
        "p": scope.get("path", ""),
        "q": scope.get("query_string", b""),
        "hd": [[k, v] for k, v in scope.get("headers", ())],
        "c": list(scope["client"]) if scope.get("client") else None,
        "b": body,
        "id": sign_identity(user, rid, handler.endpoint_key, scope.get(AUTH_EXPIRES)),
    }
    watcher = asyncio.ensure_future(_watch_disconnect(backplane, owner, rid, receive))
    try:
        try:
            await backplane.send_to(owner, request)
        except BackplaneError:
            await respond(send, 503, b"The worker holding this connection cannot be reached.")
            return
        started = False
        while True:
            try:
                reply = await asyncio.wait_for(
                    queue.get(), None if started else backplane.request_timeout
                )
            except TimeoutError:
                await respond(send, 404, NO_CONNECTION)  # the owner is gone
                return
            message = reply["m"]
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [tuple(h) for h in message.get("headers", ())]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                return
    finally:
        backplane.streams.pop(rid, None)
        watcher.cancel()


def _request_kind(scope: dict[str, Any]) -> str:
    """The `request` label of a forwarded request: `ServerSentEvents` (the stream's GET),
    `LongPolling` (a poll), `send` (a POST of either transport) or `delete`."""
    method = scope.get("method", "GET")
    if method != "GET":
        return "send" if method == "POST" else "delete"
    for key, value in scope.get("headers", ()):
        if key == b"accept" and b"text/event-stream" in bytes(value):
            return "ServerSentEvents"
    return "LongPolling"


async def _watch_disconnect(backplane: Backplane, owner: str, rid: str, receive: Any) -> None:
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            with contextlib.suppress(Exception):
                await backplane.send_to(owner, {"type": "signalr.http.disconnect", "i": rid})
            return


async def _serve(backplane: Backplane, handler: EndpointHandler, request: dict[str, Any]) -> None:
    """Run a forwarded request through this worker's endpoint; stream the response back."""
    from .http import serve_connection_request

    rid = request.get("i")
    reply_to = request.get("o")
    if not isinstance(rid, str) or not isinstance(reply_to, str):
        return
    identity = read_identity(request.get("id"), rid, handler.endpoint_key)
    if identity is None:
        _warn_refused()
        with contextlib.suppress(BackplaneError):
            await _refuse(backplane, reply_to, rid)
        return
    gone = asyncio.Event()
    _disconnects[rid] = gone
    delivered = False
    scope: dict[str, Any] = {
        "type": "http",
        "method": request.get("m", "GET"),
        "path": request.get("p", ""),
        "query_string": request.get("q", b""),
        "headers": [(bytes(k), bytes(v)) for k, v in request.get("hd", ())],
        "client": tuple(request["c"]) if request.get("c") else None,
        "signalr_forwarded": identity,
    }
    if identity.expires is not None:
        scope[AUTH_EXPIRES] = identity.expires

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": request.get("b", b""), "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [list(h) for h in message.get("headers", ())]}
        try:
            await backplane.send_to(reply_to, {"type": "signalr.stream", "i": rid, "m": message})
        except BackplaneError:
            gone.set()

    try:
        await serve_connection_request(handler, scope, receive, send)
    except Exception:
        logger.exception("Forwarded request failed")
    finally:
        _disconnects.pop(rid, None)


async def _refuse(backplane: Backplane, reply_to: str, rid: str) -> None:
    """Answer 401 to a forwarded request whose identity did not verify."""
    body = b"Forwarded request refused: no valid identity."
    headers = [
        [b"content-type", b"text/plain; charset=utf-8"],
        [b"content-length", b"%d" % len(body)],
    ]
    for message in (
        {"type": "http.response.start", "status": 401, "headers": headers},
        {"type": "http.response.body", "body": body},
    ):
        await backplane.send_to(reply_to, {"type": "signalr.stream", "i": rid, "m": message})


def _warn_refused() -> None:
    """One WARNING per WARN_EVERY seconds: whoever writes to the layer cannot flood the log."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY:
        _last_warning = now
        logger.warning("Refused a forwarded request without a valid identity")
